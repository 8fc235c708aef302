#!/bin/bash
# A push that lands *inside* the job's own push (WORKFLOWS.md, the frame,
# step 3, and the rule at its top: "the remote ends in the state that git
# rebase run by a careful person would have produced, or it does not change
# at all"). The remote is served by `git daemon`; its pre-receive hook, on
# the job's push, lets a person push a new commit to feat-2 first. The
# job's lease was right when it negotiated, so the server itself refuses
# feat-2's update (its old value no longer matches); libgit2 cannot ask for
# an atomic push, so the server may apply the job's other refs.
#   - the job must not end `completed`, nor report feat-2 as pushed;
#   - the remote must end consistent: either the job's retry converges to
#     what `git rebase --onto` gives with the new commit, or the job ends in
#     error with the remote as the person left it (nothing of the job's).
. "${top_srcdir:-$(dirname "$0")/../..}/tests/t/lib.sh"
. "$top_srcdir/tests/t/lib-stack.sh"

start_stack --conf=retry_base_ms=500 --conf=retry_max_ms=1000

STACK="feat-1:main feat-2:feat-1 feat-3:feat-2"

test_expect_success 'setup: git daemon; a tracked stack reached through git://; the trunk moves' '
	start_git_daemon &&
	make_stack_remote s8b &&
	install_pre_receive s8b &&
	add_repo s8b "git://127.0.0.1:$DAEMON_PORT/s8b.git" &&
	register_stack s8b $STACK &&
	M0=$(rev s8b main) && B1=$(rev s8b feat-1) && B2=$(rev s8b feat-2) &&
	trunk_gains s8b &&
	commit_on s8b feat-2 racer.txt "pushed during the push\n" "Pushed during the push" "Racer" "racer@example.com" &&
	RACER=$(pgit s8b rev-parse feat-2) &&
	oracle_with_racer s8b "$M0" "$B1" "$B2" &&
	snap_remote s8b before &&
	sed "s|^$B2\trefs/heads/feat-2\$|$RACER\trefs/heads/feat-2|" s8b.before.refs >s8b.raced.refs
'

test_expect_success 'the server rejects feat-2: the attempt is not a success, feat-2 not reported pushed' '
	echo s8b >"$TRASH/push-race.armed" &&
	post_action s8b "{\"kind\": \"restack_repo\"}" &&
	expect_status 202 && J=$JOB_ID &&
	deadline=$((SECONDS + 60)) &&
	while :; do
		job_field s8b "$J" . >first.json &&
		jq -e ".status == \"completed\" or .status == \"error\" or .status == \"canceled\"
			or (.status == \"queued\" and .attempt >= 1)" first.json >/dev/null && break
		test $SECONDS -lt $deadline || { cat first.json >&2; return 1; }
		sleep 0.05
	done &&
	jq . first.json >&2 &&
	grep -q "^rc=0$" "$TRASH/push-race.fired" &&
	test_eq "$RACER" "$(rev s8b feat-2)" "feat-2 on the remote (the racer'"'"'s commit)" &&
	jq -e ".attempt == 1 and .status != \"completed\" and .error != null" first.json &&
	jq -e "[.result.updated[]? | select(.branch == \"feat-2\" and .pushed == true)] | length == 0" first.json
'

test_expect_success 'the remote ends consistent: converged by a retry, or as the person left it' '
	if jq -e ".status == \"queued\"" first.json >/dev/null; then
		wait_job s8b "$J" completed 60 &&
		job_field s8b "$J" . >job.json &&
		expect_job ".attempt >= 2" true &&
		check_stack s8b $STACK &&
		expect_projection_settled s8b $STACK
	else
		say "the job ended in $(jq -r .status first.json) ($(jq -r .error.type first.json)); the remote must hold what the person left" >&2 &&
		expect_remote_unchanged s8b raced
	fi
'

test_expect_success 'whatever the first job left, a new restack_repo repairs the stack' '
	run_job s8b "{\"kind\": \"restack_repo\"}" completed &&
	check_stack s8b $STACK &&
	expect_projection_settled s8b $STACK
'

test_done
