#!/bin/bash
# Scenario 8 of WORKFLOWS.md: someone pushes to feat-2 between the job's
# fetch and its push. The remote is served by `git daemon` (git://), so it
# runs git's own upload-pack and receive-pack:
#
#  - the race: upload-pack's uploadpack.packObjectsHook runs while the
#    job's fetch is being served, after the remote's refs were advertised
#    (the leases the job holds). Armed once, it lets the person push a new
#    commit to feat-2 before the pack is sent. The job computes on the old
#    feat-2 and must find, when it pushes, that feat-2 is no longer what it
#    leased: nothing is pushed (a pre-receive hook logs every push that
#    reaches the remote), the job is retried (remote_moved), and the retry
#    converges to what `git rebase --onto` gives with the new commit.
# (t0175 lands the push inside the job's own push instead.)
. "${top_srcdir:-$(dirname "$0")/../..}/tests/t/lib.sh"
. "$top_srcdir/tests/t/lib-stack.sh"

start_stack --conf=retry_base_ms=2500 --conf=retry_max_ms=2500

STACK="feat-1:main feat-2:feat-1 feat-3:feat-2"

cat >"$TRASH/fetch-race-hook" <<HOOK
#!/bin/sh
# uploadpack.packObjectsHook: the arguments are pack-objects' command line.
# Armed by \$TRASH/fetch-race.armed (which names the repo): the person pushes
# feat-2 first, once.
if mv "$TRASH/fetch-race.armed" "$TRASH/fetch-race.fired" 2>/dev/null; then
	n=\$(cat "$TRASH/fetch-race.fired")
	env -i PATH="\$PATH" HOME="$TRASH" GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null \\
		git -C "$TRASH/work/\$n" push -q origin feat-2 >>"$TRASH/log/race.log" 2>&1 </dev/null
	echo "rc=\$?" >>"$TRASH/fetch-race.fired"
fi
exec "\$@"
HOOK
chmod +x "$TRASH/fetch-race-hook"
printf '[uploadpack]\n\tpackObjectsHook = %s\n' "$TRASH/fetch-race-hook" >"$TRASH/daemon.gitconfig"

test_expect_success 'setup: git daemon; a tracked stack reached through git://' '
	start_git_daemon &&
	make_stack_remote s8 &&
	install_pre_receive s8 &&
	add_repo s8 "git://127.0.0.1:$DAEMON_PORT/s8.git" &&
	register_stack s8 $STACK &&
	M0=$(rev s8 main) && B1=$(rev s8 feat-1) && B2=$(rev s8 feat-2) &&
	trunk_gains s8 &&
	commit_on s8 feat-2 racer.txt "pushed during the job\n" "Pushed during the job" "Racer" "racer@example.com" &&
	RACER=$(pgit s8 rev-parse feat-2) &&
	test "$(rev s8 feat-2)" = "$B2" &&
	oracle_with_racer s8 "$M0" "$B1" "$B2"
'

test_expect_success 'a push lands between the fetch and the push: the lease refuses, nothing is pushed' '
	snap_remote s8 before &&
	N=$(push_lines s8) &&
	echo s8 >"$TRASH/fetch-race.armed" &&
	post_action s8 "{\"kind\": \"restack_repo\"}" &&
	expect_status 202 && J8=$JOB_ID &&
	wait_retry s8 "$J8" 60 &&
	grep -q "^rc=0$" "$TRASH/fetch-race.fired" &&
	jq -e ".error.type == \"urn:repoflow:problem:remote_moved\" and .error.retryable == true and .attempt == 1" retry.json &&
	sed "s|^$B2\trefs/heads/feat-2\$|$RACER\trefs/heads/feat-2|" s8.before.refs >s8.raced.refs &&
	! test_cmp s8.before.refs s8.raced.refs 2>/dev/null &&
	expect_remote_unchanged s8 raced &&
	pushes_since s8 "$N" >pushes.first &&
	printf "push\n%s %s refs/heads/feat-2\n" "$B2" "$RACER" >expect &&
	test_cmp expect pushes.first
'

test_expect_success 'the retry converges: the stack as git rebase --onto gives it, with the new commit' '
	wait_job s8 "$J8" completed 60 &&
	api GET "/v1/repos/s8/jobs/$J8" && cp "$RESP_BODY" job.json &&
	expect_job .attempt 2 &&
	expect_remote_moved s8 raced job.json feat-1 feat-2 feat-3 &&
	check_stack s8 $STACK &&
	git --git-dir="$(remote_of s8)" log --format=%s feat-1..feat-2 >f2.log &&
	grep -qx "Pushed during the job" f2.log &&
	expect_projection_settled s8 $STACK
'

test_expect_success 'exactly one push by the service reached the remote, on the raced values' '
	N2=$((N + 2)) &&
	pushes_since s8 "$N2" >pushes.retry &&
	test_eq 1 "$(grep -c "^push$" pushes.retry)" "pushes after the race" &&
	for b in feat-1 feat-2 feat-3; do
		old=$(awk -v r="refs/heads/$b" "\$2 == r { print \$1 }" s8.raced.refs) &&
		grep -qx "$old $(rev s8 $b) refs/heads/$b" pushes.retry || {
			echo "no update $old -> $(rev s8 $b) of $b in:" >&2; cat pushes.retry >&2; return 1; }
	done &&
	test_eq 4 "$(wc -l <pushes.retry)" "lines of the push"
'

test_expect_success 'the job'"'"'s events show the failed first attempt, then the success' '
	all_events s8 >events &&
	jq -s -r "[.[] | select(.type == \"job.updated\" and .id == $J8) | .data
		| select(.status == \"queued\" and .attempt == 1 and .error != null) | .error.type] | unique | join(\" \")" events >types &&
	echo "urn:repoflow:problem:remote_moved" >expect &&
	test_cmp expect types
'

test_done
