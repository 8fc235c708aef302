#!/bin/bash
# The stack comes up behind a real nginx and /v1/health answers.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/t/lib.sh"

start_stack --worker=sink

test_expect_success 'GET /v1/health needs no token and says ok' '
	TOKEN= api GET /v1/health &&
	expect_status 200 &&
	expect_header Content-Type "^application/json" &&
	expect_json .status ok &&
	expect_json .db ok &&
	expect_json .queue.queued 0 &&
	expect_json .queue.running 0 &&
	expect_json ".queue.oldest_queued_age_s | type" number &&
	expect_json ".worker | type" object
'

test_expect_success 'health counts a queued job' '
	make_remote alpha &&
	add_repo alpha &&
	post_action alpha "{\"kind\": \"sync_repo\"}" &&
	expect_status 202 &&
	TOKEN= api GET /v1/health &&
	expect_status 200 &&
	expect_json .queue.queued 1 &&
	expect_json .queue.running 0 &&
	expect_json ".queue.oldest_queued_age_s >= 0" true
'

test_expect_success 'the dashboard directory is served at /' '
	code=$(curl -s -o /dev/null -w "%{http_code}" "$BASE/does-not-exist.html") &&
	test_eq 404 "$code" "status of a missing static file" &&
	if [ -f "$top_srcdir/web/index.html" ]; then
		curl -sS -f "$BASE/" >index.out &&
		cmp index.out "$top_srcdir/web/index.html"
	fi
'

test_expect_success 'the API runs as a CGI program without a server' '
	REQUEST_METHOD=GET REQUEST_URI=/v1/health SCRIPT_NAME= PATH_INFO=/v1/health \
		QUERY_STRING= "$top_builddir/repoflow-api" --config "$CONF" </dev/null >cgi.out 2>cgi.err &&
	status=$(sed -n "s/^Status: *\([0-9]*\).*/\1/ip" cgi.out) &&
	test_eq 200 "${status:-200}" "CGI status" &&
	sed "1,/^\r\{0,1\}$/d" cgi.out >cgi.body &&
	jq -e ".status == \"ok\"" cgi.body
'

test_done
