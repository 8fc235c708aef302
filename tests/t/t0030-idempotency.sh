#!/bin/bash
# Idempotency-Key: a replay returns the job the key first created; another
# request under the same key is refused; concurrent requests with one key
# make exactly one job.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/t/lib.sh"

start_stack --worker=activate

SYNC='{"kind": "sync_repo"}'
DRY='{"kind": "sync_repo", "options": {"dry_run": true}}'

# concurrent N KEY BODY: N requests at once; responses in conc.N.{code,body}.
concurrent()
{
	local n=$1 key=$2 body=$3 i
	local -a pids=()
	rm -f conc.*
	for i in $(seq 1 "$n"); do
		curl -sS --max-time 30 -o "conc.$i.body" -w '%{http_code}\n' \
			-H "Authorization: Bearer $ADMIN_TOKEN" -H "Content-Type: application/json" \
			${key:+-H "Idempotency-Key: $key"} --data-binary "$body" \
			"$BASE/v1/repos/alpha/actions" >"conc.$i.code" 2>"conc.$i.err" &
		pids+=($!)
	done
	for i in "${pids[@]}"; do
		wait "$i" || return 1
	done
}

test_expect_success 'setup' '
	make_remote alpha &&
	add_repo alpha &&
	OTHER_TOKEN=$(ctl token create alpha-bot --repo alpha) &&
	test -n "$OTHER_TOKEN"
'

test_expect_success 'the same key twice gives one job' '
	jobs0=$(count jobs) &&
	post_action alpha "$SYNC" -H "Idempotency-Key: key-one" &&
	expect_status 202 &&
	FIRST=$JOB_ID &&
	expect_header Location "^/v1/repos/alpha/jobs/$FIRST\$" &&
	post_action alpha "$SYNC" -H "Idempotency-Key: key-one" &&
	expect_status 202 &&
	test_eq "$FIRST" "$JOB_ID" "job id of the replay" &&
	expect_header Location "^/v1/repos/alpha/jobs/$FIRST\$" &&
	test_eq $((jobs0 + 1)) "$(count jobs)" jobs
'

test_expect_success 'a replay after the job finished returns it as it is now' '
	wait_job alpha "$FIRST" completed 60 &&
	snapshot replay &&
	post_action alpha "$SYNC" -H "Idempotency-Key: key-one" &&
	expect_status 202 &&
	test_eq "$FIRST" "$JOB_ID" "job id of the replay" &&
	expect_json .status completed &&
	expect_unchanged replay
'

test_expect_success 'without the key the same request makes a new job (nothing queued to dedupe)' '
	jobs0=$(count jobs) &&
	post_action alpha "$SYNC" &&
	expect_status 202 &&
	test "$JOB_ID" != "$FIRST" &&
	test_eq $((jobs0 + 1)) "$(count jobs)" jobs &&
	wait_job alpha "$JOB_ID" completed 60
'

test_expect_success 'a quoted key is the same key' '
	snapshot quoted &&
	post_action alpha "$SYNC" -H "Idempotency-Key: \"key-one\"" &&
	expect_status 202 &&
	test_eq "$FIRST" "$JOB_ID" "job id" &&
	expect_unchanged quoted
'

test_expect_success 'the same key with another body is 422 and changes nothing' '
	snapshot other &&
	api_json POST /v1/repos/alpha/actions "$DRY" -H "Idempotency-Key: key-one" &&
	expect_problem 422 &&
	expect_unchanged other
'

test_expect_success 'the same key with another kind is 422' '
	snapshot kind &&
	api_json POST /v1/repos/alpha/actions "{\"kind\": \"rebase_branch\", \"branch\": \"feat-1\"}" \
		-H "Idempotency-Key: key-one" &&
	expect_problem 422 &&
	expect_unchanged kind
'

test_expect_success 'the same request spelled differently (member order, defaults) is the same request' '
	post_action alpha "{\"options\": {\"dry_run\": true, \"push\": true}, \"kind\": \"sync_repo\"}" \
		-H "Idempotency-Key: key-two" &&
	expect_status 202 &&
	TWO=$JOB_ID &&
	snapshot spelled &&
	post_action alpha "$DRY" -H "Idempotency-Key: key-two" &&
	expect_status 202 &&
	test_eq "$TWO" "$JOB_ID" "job id" &&
	expect_unchanged spelled &&
	wait_job alpha "$TWO" completed 60
'

test_expect_success 'a key is scoped to its token' '
	jobs0=$(count jobs) &&
	TOKEN=$OTHER_TOKEN post_action alpha "$SYNC" -H "Idempotency-Key: key-one" &&
	expect_status 202 &&
	test "$JOB_ID" != "$FIRST" &&
	test_eq $((jobs0 + 1)) "$(count jobs)" jobs &&
	wait_job alpha "$JOB_ID" completed 60
'

test_expect_success 'a key over 255 bytes is refused and changes nothing' '
	long=$(printf "k%.0s" $(seq 1 256)) &&
	snapshot long &&
	api_json POST /v1/repos/alpha/actions "$SYNC" -H "Idempotency-Key: $long" &&
	case "$RESP_STATUS" in 400 | 422) ;; *) expect_status 422 ;; esac &&
	expect_problem "$RESP_STATUS" &&
	expect_unchanged long
'

test_expect_success 'a key of 255 bytes is fine' '
	long=$(printf "k%.0s" $(seq 1 255)) &&
	post_action alpha "$SYNC" -H "Idempotency-Key: $long" &&
	expect_status 202 &&
	wait_job alpha "$JOB_ID" completed 60
'

test_expect_success '16 concurrent identical requests with one key make exactly one job' '
	jobs0=$(count jobs) &&
	concurrent 16 key-concurrent "$SYNC" &&
	cat conc.*.code | sort | uniq -c >&2 &&
	test_eq 1 "$(jq -s "[.[] | .id // empty] | unique | length" conc.*.body)" "distinct job ids" &&
	ok=$(grep -l -x 202 conc.*.code | wc -l) &&
	test_ge "$ok" 1 "202 answers" &&
	test_eq 16 "$(grep -x -c -E "202|409" conc.*.code | awk -F: "{ s += \$2 } END { print s }")" "202 or 409 answers" &&
	test_eq $((jobs0 + 1)) "$(count jobs)" jobs &&
	CONC=$(jq -s -r "[.[] | .id // empty][0]" conc.*.body) &&
	wait_job alpha "$CONC" completed 60 &&
	post_action alpha "$SYNC" -H "Idempotency-Key: key-concurrent" &&
	expect_status 202 &&
	test_eq "$CONC" "$JOB_ID" "job id of a later replay" &&
	test_eq $((jobs0 + 1)) "$(count jobs)" jobs
'

test_expect_success 'control: 16 concurrent different requests make 16 jobs' '
	jobs0=$(count jobs) &&
	rm -f conc.* &&
	pids= &&
	for i in $(seq 1 16); do
		curl -sS --max-time 30 -o "conc.$i.body" -w "%{http_code}\n" \
			-H "Authorization: Bearer $ADMIN_TOKEN" -H "Content-Type: application/json" \
			-H "Idempotency-Key: key-many-$i" \
			--data-binary "{\"kind\": \"rebase_branch\", \"branch\": \"topic-$i\"}" \
			"$BASE/v1/repos/alpha/actions" >"conc.$i.code" &
		pids="$pids $!"
	done &&
	for p in $pids; do wait $p || return 1; done &&
	test_eq 16 "$(cat conc.*.code | grep -c -x 202)" "202 answers" &&
	test_eq 16 "$(jq -s "[.[].id] | unique | length" conc.*.body)" "distinct job ids" &&
	test_eq $((jobs0 + 16)) "$(count jobs)" jobs
'

test_done
