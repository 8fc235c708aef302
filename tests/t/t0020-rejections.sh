#!/bin/bash
# Every row of API.md's error table, through nginx. Each rejected request
# must answer application/problem+json with the right status and change
# nothing: the same row counts of jobs, events, repos, branches and tokens
# before and after, and no wake-up (a wake-sink stands where the worker
# listens and counts the datagrams it gets).
. "${top_srcdir:-$(dirname "$0")/../..}/tests/t/lib.sh"

start_stack --worker=sink --conf=busy_timeout_ms=300

# rejected STATUS [SLUG] -- METHOD PATH [curl args]: the request gets the
# problem STATUS (of type SLUG, a regex, when given) and nothing changed.
rejected()
{
	local status=$1 slug=
	shift
	if [ "$1" != -- ]; then
		slug=$1
		shift
	fi
	shift
	snapshot r &&
	api "$@" &&
	expect_problem "$status" ${slug:+"$slug"} &&
	expect_unchanged r
}

# rejected_action STATUS BODY [FIELD]: POST BODY (application/json) as an
# action on alpha; STATUS and, when given, errors[] names FIELD.
rejected_action()
{
	rejected "$1" -- POST /v1/repos/alpha/actions -H "Content-Type: application/json" \
		--data-binary "$2" &&
	if [ $# -ge 3 ]; then
		expect_error_field "$3"
	fi
}

test_expect_success 'setup: two repos, tokens, a queued job; wake-ups are counted' '
	make_remote alpha &&
	make_remote beta &&
	add_repo alpha &&
	add_repo beta &&
	ALPHA_TOKEN=$(ctl token create alpha-bot --repo alpha) &&
	BETA_TOKEN=$(ctl token create beta-bot --repo beta) &&
	test -n "$ALPHA_TOKEN" && test -n "$BETA_TOKEN" &&
	test_eq 0 "$(wake_count)" "wake-ups before any action" &&
	post_action alpha "{\"kind\": \"sync_repo\"}" &&
	expect_status 202 &&
	ALPHA_JOB=$JOB_ID &&
	test_eq 1 "$(wake_count)" "wake-ups after one action" &&
	test_eq 1 "$(count jobs)" jobs
'

# --- 400: not JSON, not an object, a NUL byte ---------------------------------

test_expect_success '400: malformed JSON' '
	rejected_action 400 "{\"kind\": \"sync_repo\""
'
test_expect_success '400: JSON followed by garbage' '
	rejected_action 400 "{\"kind\": \"sync_repo\"} trailing"
'
test_expect_success '400: empty body' '
	rejected 400 -- POST /v1/repos/alpha/actions -H "Content-Type: application/json" --data-binary ""
'
for doc in '[]' '"sync_repo"' '42' 'null' 'true' '[{"kind": "sync_repo"}]'; do
	test_expect_success "400: body is JSON but not an object: $doc" '
		rejected_action 400 "$doc"
	'
done
test_expect_success '400: a NUL byte after the object' '
	printf "{\"kind\": \"sync_repo\"}\0" >nul1.json &&
	rejected 400 -- POST /v1/repos/alpha/actions -H "Content-Type: application/json" --data-binary @nul1.json
'
test_expect_success '400: a NUL byte inside a string' '
	printf "{\"kind\": \"rebase_branch\", \"branch\": \"feat\0-1\"}" >nul2.json &&
	rejected 400 -- POST /v1/repos/alpha/actions -H "Content-Type: application/json" --data-binary @nul2.json
'
test_expect_success '400: a raw control byte inside a string is not JSON' '
	printf "{\"kind\": \"rebase_branch\", \"branch\": \"feat\001x\"}" >ctl.json &&
	rejected 400 -- POST /v1/repos/alpha/actions -H "Content-Type: application/json" --data-binary @ctl.json
'

# --- 415: Content-Type --------------------------------------------------------

test_expect_success '415: text/plain body' '
	rejected 415 -- POST /v1/repos/alpha/actions -H "Content-Type: text/plain" \
		--data-binary "{\"kind\": \"sync_repo\", \"options\": {\"dry_run\": true}}"
'
test_expect_success '415: no Content-Type' '
	rejected 415 -- POST /v1/repos/alpha/actions -H "Content-Type:" \
		--data-binary "{\"kind\": \"sync_repo\", \"options\": {\"dry_run\": true}}"
'
test_expect_success '415: a form post' '
	rejected 415 -- POST /v1/repos/alpha/actions \
		--data "{\"kind\": \"sync_repo\", \"options\": {\"dry_run\": true}}"
'
test_expect_success '415: application/jsonx is not application/json' '
	rejected 415 -- POST /v1/repos/alpha/actions -H "Content-Type: application/jsonx" \
		--data-binary "{\"kind\": \"sync_repo\", \"options\": {\"dry_run\": true}}"
'
test_expect_success '415: POST /v1/repos without a JSON body' '
	rejected 415 -- POST /v1/repos -H "Content-Type: text/plain" \
		--data-binary "{\"name\": \"gamma\", \"remote_url\": \"/tmp/x.git\"}"
'

# --- 413: body over the limit -------------------------------------------------

test_expect_success '413: a 1 MiB body' '
	{
		printf "{\"kind\": \"sync_repo\", \"pad\": \"" &&
		head -c 1048576 /dev/zero | tr "\0" a &&
		printf "\"}"
	} >big.json &&
	test_ge "$(wc -c <big.json)" 1048576 "body size" &&
	rejected 413 -- POST /v1/repos/alpha/actions -H "Content-Type: application/json" --data-binary @big.json
'
# padded_body SIZE: an action of exactly SIZE bytes, padded by member "pad".
padded_body()
{
	local head='{"kind": "sync_repo", "pad": "' tail='"}'
	printf '%s' "$head"
	head -c $(($1 - ${#head} - ${#tail})) /dev/zero | tr '\0' a
	printf '%s' "$tail"
}

test_expect_success '413: one byte over 64 KiB' '
	padded_body 65537 >limit1.json &&
	test_eq 65537 "$(wc -c <limit1.json)" "body size" &&
	rejected 413 -- POST /v1/repos/alpha/actions -H "Content-Type: application/json" --data-binary @limit1.json
'
test_expect_success 'a body of exactly 64 KiB is read (422 for its unknown field, not 413)' '
	padded_body 65536 >limit0.json &&
	test_eq 65536 "$(wc -c <limit0.json)" "body size" &&
	rejected 422 -- POST /v1/repos/alpha/actions -H "Content-Type: application/json" --data-binary @limit0.json &&
	expect_error_field pad
'

# --- 404 ----------------------------------------------------------------------

test_expect_success '404: action on an unknown repo' '
	rejected 404 -- POST /v1/repos/nope/actions -H "Content-Type: application/json" \
		--data-binary "{\"kind\": \"sync_repo\"}"
'
test_expect_success '404: unknown repo' '
	rejected 404 -- GET /v1/repos/nope
'
test_expect_success '404: unknown job' '
	rejected 404 -- GET /v1/repos/alpha/jobs/999999
'
test_expect_success '404: a job asked for under another repo' '
	rejected 404 -- GET "/v1/repos/beta/jobs/$ALPHA_JOB"
'
test_expect_success '404: cancel of an unknown job' '
	rejected 404 -- POST /v1/repos/alpha/jobs/999999/cancel
'
test_expect_success '404: a job id that is not a number' '
	rejected 404 -- GET /v1/repos/alpha/jobs/abc
'
test_expect_success '404: an unknown path under /v1/' '
	rejected 404 -- GET /v1/nothing-here
'
test_expect_success '404: events of an unknown repo' '
	rejected 404 -- GET "/v1/repos/nope/events?after=0"
'

# --- 422: fields --------------------------------------------------------------

test_expect_success '422: kind missing' '
	rejected_action 422 "{}" kind
'
test_expect_success '422: kind of the wrong type' '
	rejected_action 422 "{\"kind\": 5}" kind
'
test_expect_success '422: unknown kind' '
	rejected_action 422 "{\"kind\": \"explode_repo\"}" kind
'
test_expect_success '422: branch missing where required' '
	rejected_action 422 "{\"kind\": \"rebase_branch\"}" branch
'
test_expect_success '422: branch of the wrong type' '
	rejected_action 422 "{\"kind\": \"rebase_branch\", \"branch\": 42}" branch
'
test_expect_success '422: branch where the kind takes none' '
	rejected_action 422 "{\"kind\": \"sync_repo\", \"branch\": \"feat-1\"}" branch
'
test_expect_success '422: parent missing for reparent_branch' '
	rejected_action 422 "{\"kind\": \"reparent_branch\", \"branch\": \"feat-2\"}" parent
'
test_expect_success '422: parent equal to branch' '
	rejected_action 422 "{\"kind\": \"reparent_branch\", \"branch\": \"feat-2\", \"parent\": \"feat-2\"}" parent
'
test_expect_success '422: parent of the wrong type' '
	rejected_action 422 "{\"kind\": \"register_existing_branch\", \"branch\": \"feat-2\", \"parent\": [\"main\"]}" parent
'
test_expect_success '422: invalid parent name' '
	rejected_action 422 "{\"kind\": \"reparent_branch\", \"branch\": \"feat-2\", \"parent\": \"ma..in\"}" parent
'
test_expect_success '422: unknown option' '
	rejected_action 422 "{\"kind\": \"sync_repo\", \"options\": {\"bogus\": true}}" &&
	expect_json "[.errors[]?.field | select(test(\"^options\"))] | length > 0" true
'
test_expect_success '422: option of the wrong type' '
	rejected_action 422 "{\"kind\": \"sync_repo\", \"options\": {\"dry_run\": \"yes\"}}" &&
	expect_json "[.errors[]?.field | select(test(\"^options\"))] | length > 0" true
'
test_expect_success '422: options not an object' '
	rejected_action 422 "{\"kind\": \"sync_repo\", \"options\": [\"dry_run\"]}" &&
	expect_json "[.errors[]?.field | select(test(\"^options\"))] | length > 0" true
'
test_expect_success '422: on_conflict of an unknown value' '
	rejected_action 422 "{\"kind\": \"restack_repo\", \"options\": {\"on_conflict\": \"explode\"}}" &&
	expect_json "[.errors[]?.field | select(test(\"^options\"))] | length > 0" true
'
test_expect_success '422: restack is an option of sync_repo only' '
	rejected_action 422 "{\"kind\": \"restack_subtree\", \"branch\": \"feat-1\", \"options\": {\"restack\": false}}" &&
	expect_json "[.errors[]?.field | select(test(\"^options\"))] | length > 0" true
'
test_expect_success '422: an unknown top-level member' '
	rejected_action 422 "{\"kind\": \"sync_repo\", \"force\": true}" force
'
test_expect_success '422: every problem of a request is listed' '
	rejected_action 422 "{\"kind\": \"rebase_branch\", \"branch\": \"a..b\", \"extra\": 1}" branch &&
	expect_error_field extra
'

# Bad branch names: git check-ref-format --branch refuses each of them (or
# our own rules do: at most 255 bytes, no leading "-").
long300=$(printf 'b%.0s' $(seq 1 300))
long256=$(printf 'c%.0s' $(seq 1 256))
ctrl1=$(printf 'feat\001x')
ctrl2=$(printf 'feat\177x')
ctrl3=$(printf 'feat\tx')
for bad in 'feat..x' 'feat@{1}' '-feat' "$ctrl1" "$ctrl2" "$ctrl3" "$long300" "$long256" \
	'' 'feat x' 'feat~1' 'feat^2' 'feat:x' 'feat?' 'feat*' 'feat[1' 'feat\x' \
	'feat.lock' 'a/b.lock/c' 'feat/' '/feat' 'a//b' 'feat.' '.feat' 'a/.b' '@' 'HEAD'; do
	shown=$(printf '%s' "$bad" | head -c 40 | od -An -c | tr -s ' \n' ' ')
	test_expect_success "422: bad branch name (${#bad} bytes:$shown)" '
		body=$(jq -cn --arg b "$bad" "{kind: \"rebase_branch\", branch: \$b}") &&
		rejected_action 422 "$body" branch
	'
done

test_expect_success 'the same names are refused by git check-ref-format --branch (except our own rules)' '
	for bad in "feat..x" "feat@{1}" "$ctrl1" "feat x" "feat~1" "feat:x" "feat.lock" "a//b" ".feat"; do
		if git check-ref-format --branch "$bad" >/dev/null 2>&1; then
			echo "git accepts branch name <$bad>" >&2
			return 1
		fi
	done
'

test_expect_success 'good unusual branch names are accepted (255 bytes, unicode, dots, slashes)' '
	long255=$(printf "d%.0s" $(seq 1 255)) &&
	for good in "$long255" "ünïcödé" "a.b/c-d_e" "feat@x" "x/y/z"; do
		git check-ref-format --branch "$good" >/dev/null || return 1
		jobs_before=$(count jobs) &&
		post_action alpha "$(jq -cn --arg b "$good" "{kind: \"rebase_branch\", branch: \$b}")" &&
		expect_status 202 &&
		expect_json .branch "$good" &&
		test_eq $((jobs_before + 1)) "$(count jobs)" "jobs after <$good>" || return 1
	done
'

test_expect_success '422: POST /v1/repos with an invalid name' '
	rejected 422 -- POST /v1/repos -H "Content-Type: application/json" \
		--data-binary "{\"name\": \"Bad Name\", \"remote_url\": \"/tmp/x.git\"}" &&
	expect_error_field name
'
test_expect_success '422: POST /v1/repos with a 65-byte name' '
	name=$(printf "r%.0s" $(seq 1 65)) &&
	rejected 422 -- POST /v1/repos -H "Content-Type: application/json" \
		--data-binary "{\"name\": \"$name\", \"remote_url\": \"/tmp/x.git\"}" &&
	expect_error_field name
'
test_expect_success '422: POST /v1/repos without remote_url' '
	rejected 422 -- POST /v1/repos -H "Content-Type: application/json" \
		--data-binary "{\"name\": \"gamma\"}" &&
	expect_error_field remote_url
'
test_expect_success '422: POST /v1/repos with an invalid trunk' '
	rejected 422 -- POST /v1/repos -H "Content-Type: application/json" \
		--data-binary "{\"name\": \"gamma\", \"remote_url\": \"/tmp/x.git\", \"trunk\": \"-main\"}" &&
	expect_error_field trunk
'

# --- 401 and 403: tokens --------------------------------------------------------

test_expect_success '401: no token, with WWW-Authenticate: Bearer' '
	TOKEN= rejected 401 -- POST /v1/repos/alpha/actions -H "Content-Type: application/json" \
		--data-binary "{\"kind\": \"sync_repo\", \"options\": {\"dry_run\": true}}" &&
	expect_header WWW-Authenticate "^Bearer"
'
test_expect_success '401: no token on a read' '
	TOKEN= rejected 401 -- GET "/v1/repos/alpha/jobs/$ALPHA_JOB" &&
	expect_header WWW-Authenticate "^Bearer"
'
test_expect_success '401: an unknown token' '
	TOKEN=not-a-real-token rejected 401 -- POST /v1/repos/alpha/actions -H "Content-Type: application/json" \
		--data-binary "{\"kind\": \"sync_repo\", \"options\": {\"dry_run\": true}}" &&
	expect_header WWW-Authenticate "^Bearer"
'
test_expect_success '401: a token that differs from a real one in its last byte' '
	fake=${ADMIN_TOKEN%?}$( [ "${ADMIN_TOKEN: -1}" = A ] && echo B || echo A) &&
	TOKEN=$fake rejected 401 -- GET /v1/repos
'
test_expect_success '401: another scheme than Bearer' '
	TOKEN= rejected 401 -- GET /v1/repos -H "Authorization: Basic $(printf admin:x | base64)" &&
	expect_header WWW-Authenticate "^Bearer"
'
test_expect_success '401: a revoked token' '
	REVOKED=$(ctl token create soon-gone --repo alpha) &&
	TOKEN=$REVOKED api GET /v1/repos/alpha &&
	expect_status 200 &&
	ctl token revoke soon-gone &&
	TOKEN=$REVOKED rejected 401 -- GET /v1/repos/alpha
'
test_expect_success '401 comes before validation: no token and a broken body' '
	TOKEN= rejected 401 -- POST /v1/repos/alpha/actions -H "Content-Type: application/json" \
		--data-binary "{not json"
'
test_expect_success '403: a repo token on another repo' '
	TOKEN=$ALPHA_TOKEN rejected 403 -- POST /v1/repos/beta/actions -H "Content-Type: application/json" \
		--data-binary "{\"kind\": \"sync_repo\"}"
'
test_expect_success '403: a repo token reading another repo' '
	TOKEN=$BETA_TOKEN rejected 403 -- GET "/v1/repos/alpha/jobs/$ALPHA_JOB"
'
test_expect_success '403: a repo token cancelling a job of another repo' '
	TOKEN=$BETA_TOKEN rejected 403 -- POST "/v1/repos/alpha/jobs/$ALPHA_JOB/cancel"
'
test_expect_success '403: a repo token on an admin endpoint' '
	TOKEN=$ALPHA_TOKEN rejected 403 -- POST /v1/repos -H "Content-Type: application/json" \
		--data-binary "{\"name\": \"gamma\", \"remote_url\": \"/tmp/x.git\"}"
'
test_expect_success '403: a repo token deleting its own repo (admin only)' '
	TOKEN=$ALPHA_TOKEN rejected 403 -- DELETE /v1/repos/alpha
'

# --- 405 with Allow --------------------------------------------------------------

test_expect_success '405: GET on actions, Allow: POST' '
	rejected 405 -- GET /v1/repos/alpha/actions &&
	expect_header Allow "(^|[ ,])POST([ ,]|\$)"
'
test_expect_success '405: PUT on actions' '
	rejected 405 -- PUT /v1/repos/alpha/actions -H "Content-Type: application/json" \
		--data-binary "{\"kind\": \"sync_repo\"}" &&
	expect_header Allow "(^|[ ,])POST([ ,]|\$)"
'
test_expect_success '405: DELETE on /v1/health, Allow: GET' '
	TOKEN= rejected 405 -- DELETE /v1/health &&
	expect_header Allow "(^|[ ,])GET([ ,]|\$)"
'
test_expect_success '405: POST on a job' '
	rejected 405 -- POST "/v1/repos/alpha/jobs/$ALPHA_JOB" -H "Content-Type: application/json" --data-binary "{}" &&
	expect_header Allow "(^|[ ,])GET([ ,]|\$)"
'
test_expect_success '405: GET on cancel' '
	rejected 405 -- GET "/v1/repos/alpha/jobs/$ALPHA_JOB/cancel" &&
	expect_header Allow "(^|[ ,])POST([ ,]|\$)"
'
test_expect_success '405: PATCH on /v1/repos' '
	rejected 405 -- PATCH /v1/repos -H "Content-Type: application/json" --data-binary "{}" &&
	expect_header Allow "GET" &&
	expect_header Allow "POST"
'

# --- 503: the database busy past its timeout ----------------------------------

test_expect_success '503 with Retry-After while another process holds the write lock' '
	rm -f locked release &&
	snapshot busy &&
	{ sqlite3 "$DB" "BEGIN IMMEDIATE;" ".shell touch locked" \
		".shell i=0; while [ ! -e release ] && [ \$i -lt 600 ]; do sleep 0.05; i=\$((i + 1)); done" \
		"ROLLBACK;" >lock.out 2>&1 & } &&
	LOCK_PID=$! &&
	rf_wait_file locked 10 $LOCK_PID &&
	api_json POST /v1/repos/alpha/actions "{\"kind\": \"sync_repo\", \"options\": {\"push\": false}}";
	touch release && wait $LOCK_PID &&
	expect_problem 503 &&
	expect_header Retry-After "^[0-9]+\$" &&
	expect_unchanged busy
'

# --- and a good request after all that: the counters do move ------------------

test_expect_success 'control: a valid request (charset parameter allowed) counts and wakes' '
	snapshot ok &&
	api POST /v1/repos/alpha/actions -H "Content-Type: application/json; charset=utf-8" \
		--data-binary "{\"kind\": \"sync_repo\", \"options\": {\"push\": false}}" &&
	expect_status 202 &&
	test_eq $(( $(snap_get ok jobs) + 1 )) "$(count jobs)" "jobs" &&
	test_gt "$(count events)" "$(snap_get ok events)" "events" &&
	test_eq $(( $(snap_get ok wakeups) + 1 )) "$(wake_count)" "wake-ups"
'

test_done
