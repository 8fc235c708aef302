#!/bin/bash
# The worker: repos in parallel, one repo's jobs in order, idle exit and
# re-activation by the next wake-up, retries with backoff after a transient
# failure, and recovery of a job whose worker was killed mid-run.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/t/lib.sh"

start_stack --worker=activate --conf=worker_threads=4 --conf=idle_exit_s=2 \
	--conf=retry_base_ms=300 --conf=retry_max_ms=5000 --conf=max_attempts=6

# job_json REPO ID > FILE
job_json() { api GET "/v1/repos/$1/jobs/$2" && expect_status 200 && cp "$RESP_BODY" "$3"; }

# wait_until TIMEOUT_S COMMAND...: poll COMMAND every 50 ms.
wait_until()
{
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		[ $SECONDS -lt $deadline ] || { echo "timed out waiting for: $*" >&2; return 1; }
		sleep 0.05
	done
}

no_worker() { test -z "$(worker_children)"; }
job_is() { test "$(job_field "$1" "$2" "$3")" = "$4"; }

# job_statuses REPO ID: the job's status changes as its events tell them,
# "status/attempt" words, repeats folded.
job_statuses()
{
	api GET "/v1/repos/$1/events?after=0&limit=1000" &&
	json "[.events[] | select(.type == \"job.updated\" and .id == $2) | \"\(.data.status)/\(.data.attempt)\"]
		| reduce .[] as \$s ([]; if (.[-1] // \"\") == \$s then . else . + [\$s] end) | join(\" \")"
}

test_expect_success 'setup: remotes, two of them big' '
	make_remote alpha &&
	make_big_remote big1 16 &&
	make_big_remote big2 16 &&
	add_repo alpha &&
	add_repo big1 "file://$TRASH/remotes/big1.git" &&
	add_repo big2 "file://$TRASH/remotes/big2.git"
'

test_expect_success 'jobs of two repos run in parallel' '
	post_action big1 "{\"kind\": \"sync_repo\"}" && expect_status 202 && J1=$JOB_ID &&
	post_action big2 "{\"kind\": \"sync_repo\"}" && expect_status 202 && J2=$JOB_ID &&
	wait_job big1 "$J1" completed 120 &&
	wait_job big2 "$J2" completed 120 &&
	job_json big1 "$J1" j1.json &&
	job_json big2 "$J2" j2.json &&
	jq -s -r ".[] | \"\(.id) \(.started_at) \(.finished_at)\"" j1.json j2.json >&2 &&
	jq -e -s ".[0].started_at < .[1].finished_at and .[1].started_at < .[0].finished_at" j1.json j2.json
'

test_expect_success 'the clones really happened (the projection matches the remotes)' '
	for r in big1 big2; do
		api GET "/v1/repos/$r/branches" &&
		json ".branches[] | \"\(.remote_head) \(.name)\"" | sort -k 2 >actual &&
		ls_remote_heads "$TRASH/remotes/$r.git" >expect &&
		test_cmp expect actual || return 1
	done
'

test_expect_success 'jobs of one repo run one at a time, in order' '
	ids= &&
	for body in "{\"kind\": \"sync_repo\"}" \
		"{\"kind\": \"sync_repo\", \"options\": {\"dry_run\": true}}" \
		"{\"kind\": \"sync_repo\", \"options\": {\"restack\": false}}" \
		"{\"kind\": \"sync_repo\", \"options\": {\"push\": false}}"; do
		post_action big1 "$body" && expect_status 202 || return 1
		ids="$ids $JOB_ID"
	done &&
	for id in $ids; do
		wait_job big1 "$id" completed 120 || return 1
	done &&
	for id in $ids; do
		job_json big1 "$id" "order.$id.json" || return 1
	done &&
	jq -s -r ".[] | \"\(.id) \(.started_at) \(.finished_at)\"" $(for id in $ids; do echo "order.$id.json"; done) >order.txt &&
	cat order.txt >&2 &&
	awk "NR > 1 && \$2 < prev_finish { bad = 1; print \"job \" \$1 \" started before job \" prev \" finished\" > \"/dev/stderr\" }
		{ prev = \$1; prev_finish = \$3 } END { exit bad }" order.txt &&
	sort -k 2 order.txt | cut -d " " -f 1 >by_start &&
	cut -d " " -f 1 order.txt >by_id &&
	test_cmp by_id by_start
'

test_expect_success 'the worker exits when idle' '
	wait_until 20 no_worker &&
	rf_alive "$WORKER_PID" &&
	sleep 1 &&
	test -z "$(worker_children)"
'

test_expect_success 'a job enqueued after the idle exit wakes a new worker' '
	test -z "$(worker_children)" &&
	post_action alpha "{\"kind\": \"sync_repo\"}" &&
	expect_status 202 &&
	wait_job alpha "$JOB_ID" completed 60 &&
	api GET /v1/repos/alpha/branches &&
	json ".branches[] | \"\(.remote_head) \(.name)\"" | sort -k 2 >actual &&
	ls_remote_heads "$TRASH/remotes/alpha.git" >expect &&
	test_cmp expect actual
'

test_expect_success 'wake-ups at about the idle exit are not lost' '
	for pause in 1.5 1.8 1.9 2.0 2.1; do
		wait_until 20 no_worker &&
		post_action alpha "{\"kind\": \"sync_repo\", \"options\": {\"dry_run\": true}}" &&
		wait_job alpha "$JOB_ID" completed 30 &&
		sleep "$pause" &&
		post_action alpha "{\"kind\": \"sync_repo\"}" &&
		wait_job alpha "$JOB_ID" completed 30 || return 1
	done
'

test_expect_success 'a transient failure (remote gone for a while) is retried with backoff, then succeeds' '
	make_remote flaky &&
	add_repo flaky "file://$TRASH/remotes/flaky.git" &&
	mv remotes/flaky.git remotes/flaky.git.away &&
	post_action flaky "{\"kind\": \"sync_repo\"}" &&
	expect_status 202 &&
	FLAKY=$JOB_ID &&
	wait_until 30 job_is flaky "$FLAKY" ".attempt >= 2 and .status == \"queued\"" true &&
	mv remotes/flaky.git.away remotes/flaky.git &&
	wait_job flaky "$FLAKY" completed 60 &&
	job_json flaky "$FLAKY" flaky.json &&
	jq -e ".attempt >= 3 and .error == null" flaky.json &&
	api GET /v1/repos/flaky/branches &&
	json ".branches[] | \"\(.remote_head) \(.name)\"" | sort -k 2 >actual &&
	ls_remote_heads "$TRASH/remotes/flaky.git" >expect &&
	test_cmp expect actual
'

test_expect_success 'the retries waited, each longer than the one before' '
	api GET "/v1/repos/flaky/events?after=0&limit=1000" &&
	json "[.events[] | select(.type == \"job.updated\" and .id == $FLAKY) | {at, status: .data.status, attempt: .data.attempt, run_at: .data.run_at, updated_at: .data.updated_at}]" >flaky-events.json &&
	jq -c ".[]" flaky-events.json >&2 &&
	jq -r "def ms: sub(\"Z\$\"; \"\") | split(\".\") | ((.[0] + \"Z\" | fromdate) * 1000 + (.[1] | tonumber));
		[.[] | select(.status == \"running\") | {attempt, at: (.at | ms)}]
		| group_by(.attempt) | map(min_by(.at)) | sort_by(.attempt)
		| [range(1; length) as \$i | .[\$i].at - .[\$i - 1].at] | .[]" \
		flaky-events.json >gaps &&
	cat gaps >&2 &&
	test_ge "$(wc -l <gaps)" 2 "retries seen" &&
	first=$(sed -n 1p gaps) && second=$(sed -n 2p gaps) &&
	test_ge "$first" 150 "first retry delay (ms, base 300)" &&
	test_gt "$second" "$first" "second retry delay (ms)" &&
	jq -e "[.[] | select(.status == \"queued\" and .attempt >= 1)] | length >= 2" flaky-events.json &&
	jq -e "[.[] | select(.status == \"queued\" and .attempt >= 1) | .run_at > .updated_at] | all" flaky-events.json
'

test_expect_success 'a worker killed with SIGKILL mid-job leaves a running row' '
	stop_worker &&
	make_big_remote big3 24 &&
	add_repo big3 "file://$TRASH/remotes/big3.git" &&
	start_worker foreground &&
	post_action big3 "{\"kind\": \"sync_repo\"}" &&
	expect_status 202 &&
	KILLED=$JOB_ID &&
	wait_job big3 "$KILLED" running 60 &&
	sleep 0.3 &&
	kill_worker &&
	sleep 1 &&
	job_json big3 "$KILLED" killed.json &&
	jq -e ".status == \"running\" and .attempt == 1 and .finished_at == null" killed.json
'

test_expect_success 'the next worker requeues it and finishes it' '
	start_worker foreground &&
	wait_job big3 "$KILLED" completed 120 &&
	job_json big3 "$KILLED" recovered.json &&
	jq -e ".attempt == 2 and .error == null" recovered.json &&
	job_statuses big3 "$KILLED" >statuses &&
	cat statuses >&2 &&
	test_match "running/1 queued/1 running/2( running/2)* completed/2\$" "$(cat statuses)" "status sequence" &&
	api GET /v1/repos/big3/branches &&
	json ".branches[] | \"\(.remote_head) \(.name)\"" | sort -k 2 >actual &&
	ls_remote_heads "$TRASH/remotes/big3.git" >expect &&
	test_cmp expect actual
'

test_expect_success 'only one worker per database: a second one does not stay' '
	rf_alive "$WORKER_PID" &&
	{ "$top_builddir/repoflow-worker" --config "$CONF" --foreground >second.out 2>&1 </dev/null & } &&
	SECOND=$! &&
	wait_until 10 eval "! rf_alive $SECOND" &&
	{ wait $SECOND; echo "second worker exited with $?" >&2; } &&
	rf_alive "$WORKER_PID" &&
	post_action alpha "{\"kind\": \"sync_repo\"}" &&
	wait_job alpha "$JOB_ID" completed 30
'

test_done
