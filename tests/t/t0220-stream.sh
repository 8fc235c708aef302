#!/bin/bash
# The live event stream (GET /v1/repos/{repo}/events/stream): the API
# authorises the subscriber (a bearer header, or ?access_token= for
# EventSource) and hands it to nginx's nchan with X-Accel-Redirect; the API
# and the worker publish every event they commit, in seq order. A client
# that disconnects and resumes - with nchan's Last-Event-ID, or by reading
# events?after= from SQLite once the stream is open - sees every event
# exactly once; and streams hold no FastCGI thread.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/t/lib.sh"

start_stack

STREAM_PIDS=()
declare -A STREAM_PID_OF

# stream_open NAME REPO [curl args...]: follow the repo's stream into
# NAME.out in the background; returns once it is open. stream_close NAME
# disconnects it.
stream_open()
{
	local name=$1 repo=$2 i
	shift 2
	: >"$name.out"
	curl -sSN --max-time 120 -H "Accept: text/event-stream" \
		-H "Authorization: Bearer $ADMIN_TOKEN" "$@" \
		"$BASE/v1/repos/$repo/events/stream" >"$name.out" 2>"$name.err" &
	STREAM_PID_OF[$name]=$!
	STREAM_PIDS+=($!)
	for i in $(seq 1 100); do
		grep -q "^: hi" "$name.out" && return 0
		sleep 0.05
	done
	echo "stream $name did not open:" >&2
	cat "$name.out" "$name.err" >&2
	return 1
}

# stream_close NAME: disconnect a stream client.
stream_close()
{
	local pid=${STREAM_PID_OF[$1]:-}
	[ -n "$pid" ] || return 0
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	unset "STREAM_PID_OF[$1]"
	return 0
}

# stream_seqs NAME: the seq of each event NAME received, one a line.
stream_seqs() { sed -n 's/^data: //p' "$1.out" | jq -r .seq; }
# stream_last_id NAME: the SSE id of the last event NAME received.
stream_last_id() { sed -n 's/^id: //p' "$1.out" | tail -n 1; }

# wait_stream NAME SEQ: until NAME received the event SEQ.
wait_stream()
{
	local i
	for i in $(seq 1 200); do
		stream_seqs "$1" | grep -qx "$2" && return 0
		sleep 0.05
	done
	echo "stream $1 never got event $2; it has:" >&2
	stream_seqs "$1" | tail -n 5 >&2
	return 1
}

# db_seqs REPO AFTER: the seqs of the repo's events after AFTER, from SQLite.
db_seqs()
{
	sqlite3 "$DB" "SELECT e.seq FROM events e JOIN repos r ON r.id = e.repo_id
		WHERE r.name = '$1' AND e.seq > $2 ORDER BY e.seq"
}

# actions REPO N TAG: N distinct rebase_branch actions (one event each).
actions()
{
	local i
	for i in $(seq 1 "$2"); do
		post_action "$1" "{\"kind\": \"rebase_branch\", \"branch\": \"$3-$i\"}" &&
		expect_status 202 >/dev/null || return 1
	done
}

last_seq() { db_seqs "$1" 0 | tail -n 1; }

test_expect_success 'setup: two repos' '
	make_remote live &&
	make_remote quiet &&
	add_repo live &&
	add_repo quiet &&
	stop_worker
'

test_expect_success 'no token 401, an unknown one 401, another repo'"'"'s 403, an unknown repo 404' '
	TOKEN= api GET /v1/repos/live/events/stream -H "Accept: text/event-stream" &&
	expect_problem 401 &&
	TOKEN= api GET "/v1/repos/live/events/stream?access_token=nope" -H "Accept: text/event-stream" &&
	expect_problem 401 &&
	QUIET_TOKEN=$(ctl token create quiet-only --repo quiet 2>>"$TRASH/log/ctl.log") &&
	TOKEN=$QUIET_TOKEN api GET /v1/repos/live/events/stream &&
	expect_problem 403 &&
	api GET /v1/repos/nosuch/events/stream &&
	expect_problem 404
'

test_expect_success 'the stream is text/event-stream; ?access_token= works where no header can be sent' '
	curl -sS -i -N --max-time 1 -H "Accept: text/event-stream" \
		"$BASE/v1/repos/live/events/stream?access_token=$ADMIN_TOKEN" >open.out 2>/dev/null;
	tr -d "\r" <open.out >open.txt &&
	grep -q "^HTTP/1.1 200" open.txt &&
	grep -qi "^Content-Type: text/event-stream" open.txt &&
	grep -q "^: hi" open.txt
'

test_expect_success 'the access log does not show the token of ?access_token=' '
	! grep -F "$ADMIN_TOKEN" "$TRASH/log/nginx-access.log" &&
	grep -q "access_token=(hidden)" "$TRASH/log/nginx-access.log"
'

test_expect_success 'a stream carries each new event of its repo, as events?after= has it, in order' '
	stream_open a live &&
	stream_open q quiet &&
	start=$(last_seq live) &&
	actions live 20 a &&
	actions quiet 2 q &&
	wait_stream a "$(last_seq live)" &&
	stream_seqs a >a.seqs &&
	db_seqs live "$start" >a.expect &&
	test_cmp a.expect a.seqs &&
	api GET "/v1/repos/live/events?after=$start&limit=1000" &&
	json -c ".events[]" >a.api &&
	sed -n "s/^data: //p" a.out | jq -c . >a.data &&
	test_cmp a.api a.data &&
	wait_stream q "$(last_seq quiet)" &&
	test_eq 2 "$(stream_seqs q | wc -l)" "the other repo'"'"'s stream saw only its own"
'

test_expect_success 'disconnect, then resume with Last-Event-ID: every event once' '
	actions live 5 b &&
	wait_stream a "$(last_seq live)" &&
	stream_close a &&
	resume_id=$(stream_last_id a) &&
	test_match "^[0-9]+:[0-9]+" "$resume_id" "an nchan message id" &&
	actions live 7 c &&
	stream_open b live -H "Last-Event-ID: $resume_id" &&
	actions live 3 d &&
	wait_stream b "$(last_seq live)" &&
	{ stream_seqs a; stream_seqs b; } >ab.seqs &&
	db_seqs live "$start" >ab.expect &&
	test_cmp ab.expect ab.seqs
'

test_expect_success 'resume with ?last_event_id= (for clients that cannot set the header)' '
	stream_close b &&
	resume_id=$(stream_last_id b) &&
	before=$(last_seq live) &&
	actions live 4 e &&
	stream_open c live --get --data-urlencode "last_event_id=$resume_id" &&
	wait_stream c "$(last_seq live)" &&
	stream_seqs c >c.seqs &&
	db_seqs live "$before" >c.expect &&
	test_cmp c.expect c.seqs &&
	stream_close c
'

test_expect_success 'resume the way API.md says: open the stream, read events?after= from SQLite, drop what is seen' '
	seen=$(last_seq live) &&
	actions live 6 f &&
	stream_open d live &&
	actions live 4 g &&
	api GET "/v1/repos/live/events?after=$seen&limit=1000" &&
	json ".events[].seq" >d.poll &&
	wait_stream d "$(last_seq live)" &&
	{ cat d.poll; stream_seqs d; } | awk -v last="$seen" "\$1 > last { last = \$1; print }" >d.seqs &&
	db_seqs live "$seen" >d.expect &&
	test_cmp d.expect d.seqs &&
	stream_close d
'

test_expect_success 'under concurrent writers, a client that drops and resumes midway still sees each event once' '
	start=$(last_seq live) &&
	stream_open e live &&
	writers=() &&
	for w in 1 2 3 4; do
		( for i in $(seq 1 50); do
			curl -sS -o /dev/null --max-time 10 -H "Authorization: Bearer $ADMIN_TOKEN" \
				-H "Content-Type: application/json" \
				--data-binary "{\"kind\": \"rebase_branch\", \"branch\": \"w$w-$i\"}" \
				"$BASE/v1/repos/live/actions" || exit 1
		  done ) &
		writers+=($!)
	done &&
	for i in $(seq 1 100); do
		[ "$(stream_seqs e | wc -l)" -ge 20 ] && break
		sleep 0.02
	done &&
	stream_close e &&
	test_gt "$(stream_seqs e | wc -l)" 0 "events before the drop" &&
	stream_open f live -H "Last-Event-ID: $(stream_last_id e)" &&
	for pid in "${writers[@]}"; do
		wait "$pid" || return 1
	done &&
	wait_stream f "$(last_seq live)" &&
	{ stream_seqs e; stream_seqs f; } >ef.seqs &&
	db_seqs live "$start" >ef.expect &&
	test_eq 200 "$(wc -l <ef.expect)" events &&
	test_cmp ef.expect ef.seqs
'

test_expect_success 'the worker publishes too: a job'"'"'s events from queued to completed, in order' '
	start_worker activate &&
	start=$(last_seq quiet) &&
	stream_open w quiet &&
	post_action quiet "{\"kind\": \"sync_repo\"}" &&
	wait_job quiet "$JOB_ID" completed &&
	wait_stream w "$(last_seq quiet)" &&
	stream_seqs w >w.seqs &&
	db_seqs quiet "$start" >w.expect &&
	test_cmp w.expect w.seqs &&
	sed -n "s/^data: //p" w.out |
		jq -r "select(.type == \"job.updated\" and .id == $JOB_ID) | .data.status" | uniq >w.status &&
	printf "queued\nrunning\ncompleted\n" >w.status.expect &&
	test_cmp w.status.expect w.status &&
	sed -n "s/^data: //p" w.out | jq -r .type | sort -u >w.types &&
	grep -qx branch.updated w.types &&
	grep -qx repo.updated w.types
'

test_expect_success 'streams hold no FastCGI thread: 3x api_threads open streams, and the API still answers' '
	for i in $(seq 1 24); do
		stream_open "many$i" quiet || return 1
	done &&
	api GET /v1/repos/quiet/jobs &&
	expect_status 200 &&
	post_action quiet "{\"kind\": \"rebase_branch\", \"branch\": \"many\"}" &&
	expect_status 202 &&
	wait_stream many24 "$(last_seq quiet)" &&
	wait_stream many1 "$(last_seq quiet)"
'

test_expect_success 'without events_publish_socket the stream answers 503 and points to polling' '
	sed "/^events_publish_socket/d" "$CONF" >nostream.conf &&
	REQUEST_METHOD=GET REQUEST_URI=/v1/repos/live/events/stream \
		HTTP_AUTHORIZATION="Bearer $ADMIN_TOKEN" \
		"$RF_BUILDDIR/repoflow-api" --config nostream.conf >cgi.out &&
	grep -q "^Status: 503" cgi.out &&
	grep -q "stream_unavailable" cgi.out &&
	grep -q "events?after=" cgi.out
'

for pid in "${STREAM_PIDS[@]}"; do
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
done
test_done
