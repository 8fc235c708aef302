#!/bin/bash
# s0010-install.sh - the package installed with apt-get under a real
# systemd: sockets and timer enabled, nginx with the shipped snippet, a token
# from repoflowctl, an action through nginx that starts the worker by its
# socket, the job's journal lines with their fields (journalctl, the API's
# log endpoint, repoflowctl logs), job retry, bash completion, and
# repoflowctl doctor on a healthy install and on a socket with the wrong
# permissions.
. "$(dirname "$0")/lib.sh"

sd_boot

MID_ACCEPTED=$(sed -n 's/^#define LOG_MID_JOB_ACCEPTED *"\(.*\)"/\1/p' "$top_srcdir/src/lib/log.h")
MID_STARTED=$(sed -n 's/^#define LOG_MID_JOB_STARTED *"\(.*\)"/\1/p' "$top_srcdir/src/lib/log.h")
MID_DONE=$(sed -n 's/^#define LOG_MID_JOB_DONE *"\(.*\)"/\1/p' "$top_srcdir/src/lib/log.h")

test_expect_success 'apt-get install ./repoflow_*.deb: sockets and timer enabled and listening' '
	sd_install &&
	for u in repoflow-api.socket repoflow-worker.socket repoflow-worker.timer; do
		test_eq enabled "$(in_ns systemctl is-enabled $u)" "$u enabled" &&
		test_eq active "$(unit_state $u)" "$u active" || return 1
	done &&
	in_ns test -S /run/repoflow/api.sock &&
	in_ns test -S /run/repoflow/wake.sock &&
	test_eq inactive "$(unit_state repoflow-worker.service)" "worker before any job"
'

test_expect_success 'nginx serves the API with the shipped snippet; repoflowctl makes a token' '
	sd_nginx &&
	sd_token &&
	api GET /v1/repos && expect_status 200 &&
	TOKEN=not-a-token api GET /v1/repos && expect_status 401
'

test_expect_success 'an action through nginx is accepted, the socket starts the worker, the job completes' '
	make_remote web &&
	add_repo web &&
	post_action web "{\"kind\": \"sync_repo\"}" &&
	expect_status 202 &&
	SYNC=$JOB_ID &&
	wait_job web "$SYNC" completed 60 &&
	post_action web "{\"kind\": \"register_existing_branch\", \"branch\": \"feat-1\"}" &&
	expect_status 202 &&
	REG=$JOB_ID &&
	wait_job web "$REG" completed 60 &&
	in_ns journalctl -b -u repoflow-worker.service --no-pager -o cat >worker.log &&
	grep "socket-activated" worker.log
'

# systemd writes JOB_ID= too, in its own messages about unit jobs (its job
# numbers, not ours): journalctl JOB_ID=N shows those beside repoflow'"'"'s, and
# repoflow'"'"'s own are the ones with REPO=. (The API and repoflowctl logs
# match REPO= as well.)
test_expect_success 'journalctl JOB_ID= shows the job lines with JOB_ID, REPO, JOB_KIND, BRANCH' '
	in_ns journalctl -b JOB_ID=$REG -o json --no-pager >reg-all.json &&
	jq -c "select(.REPO != null)" reg-all.json >reg.json &&
	test_eq "$(jq -c "select(._SYSTEMD_UNIT // \"\" | startswith(\"repoflow\"))" reg-all.json | wc -l)" \
		"$(wc -l <reg.json)" "lines from repoflow units" &&
	jq -s length reg.json >n && test_ge "$(cat n)" 3 "lines of job $REG" &&
	jq -s -e "all(.[]; .JOB_ID == \"$REG\" and .REPO == \"web\" and
		.JOB_KIND == \"register_existing_branch\" and .BRANCH == \"feat-1\")" reg.json &&
	jq -s -r "[.[] | .MESSAGE_ID // empty] | join(\" \")" reg.json >mids &&
	for m in $MID_ACCEPTED $MID_STARTED $MID_DONE; do
		grep -q "$m" mids || { echo "no line with MESSAGE_ID=$m" >&2; return 1; }
	done &&
	jq -s -e "any(.[]; .MESSAGE_ID == \"$MID_ACCEPTED\" and ._SYSTEMD_UNIT == \"repoflow-api.service\")" reg.json &&
	jq -s -e "any(.[]; .MESSAGE_ID == \"$MID_DONE\" and ._SYSTEMD_UNIT == \"repoflow-worker.service\")" reg.json &&
	in_ns journalctl -b JOB_ID=$SYNC REPO=web -o json --no-pager >sync.json &&
	jq -s -e "length >= 3 and all(.[]; .JOB_ID == \"$SYNC\" and .REPO == \"web\" and
		.JOB_KIND == \"sync_repo\" and has(\"BRANCH\"))" sync.json
'

test_expect_success 'journalctl -x explains the lifecycle lines from the shipped catalog' '
	in_ns journalctl -b -x --no-pager JOB_ID=$REG MESSAGE_ID=$MID_DONE >x.txt &&
	cat x.txt >&2 &&
	grep -q "^░░ " x.txt
'

test_expect_success 'GET .../jobs/ID/log returns the same lines as ndjson' '
	api GET /v1/repos/web/jobs/$REG/log &&
	expect_status 200 &&
	expect_header Content-Type "^application/x-ndjson" &&
	cp "$RESP_BODY" reg.ndjson &&
	test_eq "$(jq -s length reg.json)" "$(jq -s length reg.ndjson)" "lines" &&
	jq -s -e "all(.[]; .job_id == $REG and .repo == \"web\" and .job_kind == \"register_existing_branch\"
		and .branch == \"feat-1\" and (.at | test(\"^[0-9-]{10}T[0-9:.]{12}Z\$\"))
		and (.priority | type == \"string\") and (.message | length > 0))" reg.ndjson &&
	jq -s -r ".[].MESSAGE" reg.json >expect &&
	jq -s -r ".[].message" reg.ndjson >actual &&
	test_cmp expect actual &&
	jq -s -e "[.[] | .message_id // empty] | index(\"$MID_DONE\") != null" reg.ndjson &&
	! grep -q -i "_cmdline\|_exe\|_pid\|cursor" reg.ndjson
'

test_expect_success 'the log endpoint: text/plain, limit and the next page, 404, repo scope' '
	api GET /v1/repos/web/jobs/$REG/log -H "Accept: text/plain" &&
	expect_status 200 &&
	expect_header Content-Type "^text/plain" &&
	test_eq "$(wc -l <reg.json)" "$(wc -l <"$RESP_BODY")" "text lines" &&
	head -n 1 "$RESP_BODY" >first &&
	test_match "^[0-9-]{10}T[0-9:.]{12}Z info repoflow-api: " "$(cat first)" "first text line" &&
	api GET "/v1/repos/web/jobs/$REG/log?limit=1" &&
	expect_status 200 &&
	test_eq 1 "$(wc -l <"$RESP_BODY")" "lines with limit=1" &&
	next=$(header Link | sed -n "s/^<\(.*\)>; rel=\"next\"\$/\1/p") &&
	test -n "$next" &&
	api GET "$next" &&
	expect_status 200 &&
	test_eq "$(sed -n 2p reg.ndjson | jq -r .message)" "$(head -n 1 "$RESP_BODY" | jq -r .message)" "the next page starts at line 2" &&
	api GET /v1/repos/web/jobs/999999/log &&
	expect_status 404 &&
	api_json POST /v1/repos "{\"name\": \"other\", \"remote_url\": \"file:///nonexistent\", \"trunk\": \"main\"}" &&
	expect_status 201 &&
	OTHER_TOKEN=$(in_ns repoflowctl token create other-only --repo other) &&
	TOKEN=$OTHER_TOKEN api GET /v1/repos/web/jobs/$REG/log &&
	expect_status 403 &&
	TOKEN=$OTHER_TOKEN api GET /v1/repos/other/jobs/$REG/log &&
	expect_status 404 &&
	api DELETE /v1/repos/other &&
	expect_status 204
'

test_expect_success 'repoflowctl logs prints the lines; --json as the endpoint; --follow ends with the job' '
	in_ns repoflowctl logs $REG >ctl.txt &&
	test_eq "$(wc -l <reg.json)" "$(wc -l <ctl.txt)" "repoflowctl logs lines" &&
	in_ns repoflowctl --json logs $REG >ctl.ndjson &&
	test_cmp reg.ndjson ctl.ndjson &&
	post_action web "{\"kind\": \"sync_repo\", \"options\": {\"restack\": false}}" &&
	expect_status 202 &&
	FOLLOWED=$JOB_ID &&
	in_ns timeout 90 repoflowctl logs --follow $FOLLOWED >follow.txt &&
	cat follow.txt >&2 &&
	grep -q "repoflow-api: Accepted" follow.txt &&
	grep -q "repoflow-worker: " follow.txt &&
	test_eq completed "$(job_field web $FOLLOWED .status)" "status after --follow ended"
'

test_expect_success 'repoflowctl job retry queues a new job with the same kind and branch' '
	in_ns repoflowctl --json job retry $REG >retry.json &&
	RETRY=$(jq -r .id retry.json) &&
	jq -e ".kind == \"register_existing_branch\" and .branch == \"feat-1\" and .id != $REG" retry.json &&
	wait_job web "$RETRY" completed 60 &&
	in_ns journalctl -b JOB_ID=$RETRY REPO=web -o cat --no-pager >retry.log &&
	head -n 1 retry.log | grep "^Accepted register_existing_branch job $RETRY: a retry of job $REG\$" &&
	grep -q "^Started register_existing_branch" retry.log &&
	test_expect_code 1 in_ns repoflowctl job retry 999999 &&
	grep -q "no job 999999" err
'

test_expect_success 'bash completion is installed and completes verbs and job ids' '
	in_sh "test -f \$(pkg-config --variable=completionsdir bash-completion 2>/dev/null || echo /usr/share/bash-completion/completions)/repoflowctl" &&
	in_sh ". /usr/share/bash-completion/completions/repoflowctl &&
		COMP_WORDS=(repoflowctl jo); COMP_CWORD=1; _repoflowctl; echo \${COMPREPLY[*]}" >c1 &&
	test_eq job "$(cat c1)" "completion of jo" &&
	in_sh ". /usr/share/bash-completion/completions/repoflowctl &&
		COMP_WORDS=(repoflowctl job retry \"\"); COMP_CWORD=3; _repoflowctl; echo \${COMPREPLY[*]}" >c2 &&
	test_match "(^| )$REG( |\$)" "$(cat c2)" "job ids offered"
'

test_expect_success 'repoflowctl doctor passes on the healthy install' '
	in_ns repoflowctl doctor >doctor.txt 2>&1
	rc=$?
	cat doctor.txt >&2 &&
	test_eq 0 "$rc" "doctor exit status" &&
	! grep -q "^FAIL" doctor.txt &&
	grep -q "^ok    remote web:" doctor.txt &&
	in_ns repoflowctl --json doctor >doctor.json &&
	jq -e ".ok == true and .failed == 0 and (.checks | length) > 10" doctor.json
'

test_expect_success 'doctor names a remote the worker cannot reach' '
	in_ns repoflowctl repo add gone file:///srv/rftest/remotes/gone.git &&
	test_expect_code 1 in_ns repoflowctl doctor >doctor-remote.txt &&
	cat doctor-remote.txt >&2 &&
	grep "^FAIL  remote gone: file:///srv/rftest/remotes/gone.git, as repoflow: " doctor-remote.txt &&
	test_eq 1 "$(grep -c "^FAIL" doctor-remote.txt)" "failed checks" &&
	in_ns repoflowctl repo remove gone
'

# socket_mode MODE: give repoflow-api.socket a drop-in with SocketMode=MODE
# (none when MODE is empty) and recreate the socket with it.
socket_mode()
{
	if [ -n "$1" ]; then
		in_sh "mkdir -p /etc/systemd/system/repoflow-api.socket.d &&
			printf '[Socket]\nSocketMode=%s\n' $1 >/etc/systemd/system/repoflow-api.socket.d/mode.conf"
	else
		in_ns rm -rf /etc/systemd/system/repoflow-api.socket.d
	fi &&
	in_ns systemctl daemon-reload &&
	in_ns systemctl stop repoflow-api.service repoflow-api.socket &&
	in_ns systemctl start repoflow-api.socket
}

test_expect_success 'doctor names the fault when nginx may not connect to the API socket' '
	socket_mode 0600 &&
	api GET /v1/health &&
	test_match "^50[23]$" "$RESP_STATUS" "nginx cannot reach the API" &&
	in_ns repoflowctl doctor >doctor-0600.txt 2>&1
	rc=$?
	cat doctor-0600.txt >&2 &&
	test_eq 1 "$rc" "doctor exit status" &&
	grep "^FAIL  api socket (nginx): /run/repoflow/api.sock (0600 root:www-data): www-data may not write" doctor-0600.txt &&
	grep -A1 "^FAIL  api socket (nginx)" doctor-0600.txt | grep -q "SocketMode=0660" &&
	test_eq 1 "$(grep -c "^FAIL" doctor-0600.txt)" "failed checks"
'

test_expect_success 'doctor names the fault when every user may connect to the API socket' '
	socket_mode 0666 &&
	in_ns repoflowctl doctor >doctor-0666.txt 2>&1
	rc=$?
	cat doctor-0666.txt >&2 &&
	test_eq 1 "$rc" "doctor exit status" &&
	grep "^FAIL  api socket: /run/repoflow/api.sock (0666 root:www-data): every user of the machine may write to it" doctor-0666.txt
'

test_expect_success 'with the drop-in gone, doctor passes and the API answers again' '
	socket_mode "" &&
	in_ns repoflowctl doctor >doctor-again.txt 2>&1 &&
	api GET /v1/health &&
	expect_status 200
'

test_done
