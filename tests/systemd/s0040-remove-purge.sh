#!/bin/bash
# s0040-remove-purge.sh - the package's life cycle as Debian's policy has
# it: `apt-get remove` takes the programs and units away and keeps the
# state (database, mirrors, configuration), so that installing again picks
# up where it was; `apt-get purge` removes the state too.
. "$(dirname "$0")/lib.sh"

sd_boot

STATE=/var/lib/repoflow
ETC=/etc/repoflow

test_expect_success 'install, a repo, a job: there is state' '
	sd_setup &&
	make_remote web &&
	add_repo web &&
	post_action web "{\"kind\": \"sync_repo\"}" &&
	expect_status 202 &&
	KEPT=$JOB_ID &&
	wait_job web "$KEPT" completed 60 &&
	in_ns test -s $STATE/repoflow.db &&
	in_ns test -d $STATE/repos/web.git &&
	in_ns test -f $ETC/repoflow.conf
'

test_expect_success 'apt-get remove: programs and units gone, nothing listens, state kept' '
	in_ns rm -f /etc/nginx/sites-enabled/repoflow-test &&
	in_ns systemctl reload nginx.service &&
	in_ns apt-get remove -y -q repoflow >&2 &&
	test_eq "deinstall ok config-files" "$(in_ns dpkg-query -W -f="\${Status}" repoflow)" "package status" &&
	! in_ns test -e /usr/bin/repoflowctl &&
	for u in repoflow-api.socket repoflow-worker.socket repoflow-worker.timer repoflow-api.service repoflow-worker.service; do
		test_eq inactive "$(unit_state $u)" "$u after remove" &&
		test_eq not-found "$(in_ns systemctl show -p LoadState --value $u)" "$u unit file" || return 1
	done &&
	in_ns test -s $STATE/repoflow.db &&
	in_ns test -d $STATE/repos/web.git &&
	in_ns test -f $ETC/repoflow.conf &&
	in_ns getent passwd repoflow >/dev/null
'

test_expect_success 'installing again picks the state up: the same job, the same token' '
	in_ns apt-get install -y -q --no-install-recommends "./$DEB_FILE" >&2 &&
	sd_nginx &&
	api GET /v1/repos/web/jobs/$KEPT &&
	expect_status 200 &&
	expect_json .status completed &&
	post_action web "{\"kind\": \"sync_repo\"}" &&
	expect_status 202 &&
	wait_job web "$JOB_ID" completed 60
'

test_expect_success 'apt-get purge: the state and the configuration are gone too' '
	in_ns rm -f /etc/nginx/sites-enabled/repoflow-test &&
	in_ns systemctl reload nginx.service &&
	in_ns apt-get purge -y -q repoflow >&2 &&
	! in_ns dpkg -s repoflow >/dev/null 2>&1 &&
	! in_ns test -e $STATE &&
	! in_ns test -e $ETC &&
	! in_ns test -e /etc/nginx/snippets/repoflow.conf &&
	! in_ns test -e /etc/nginx/conf.d/repoflow-http.conf &&
	in_sh "! ls /etc/systemd/system/*.wants/ 2>/dev/null | grep -q repoflow" &&
	in_ns nginx -t >&2 &&
	test_eq active "$(unit_state nginx.service)" "nginx after the purge"
'

test_done
