#!/bin/bash
# s0020-idle-exit.sh - the worker under socket activation: it exits when
# idle (systemctl is-active says inactive), the next action starts it
# again, and a wake-up sent while it is stopping is not lost, whether it is
# stopping because it was idle or because systemd stopped it mid-job.
#
# "Not lost" means the job runs within seconds: a wake-up that was lost
# would leave it queued until repoflow-worker.timer fires. The timer, the
# backstop for exactly that, is stopped here, so that only the socket can
# start the worker and a lost wake-up shows as a job that never runs.
. "$(dirname "$0")/lib.sh"

sd_boot

IDLE_S=2
MID_IDLE=$(sed -n 's/^#define LOG_MID_IDLE_EXIT *"\(.*\)"/\1/p' "$top_srcdir/src/lib/log.h")

worker_state() { unit_state repoflow-worker.service; }
worker_inactive() { test "$(worker_state)" = inactive; }
# The worker's starts so far this boot (each one logs "Started as ...").
worker_starts()
{
	in_ns journalctl -b -u repoflow-worker.service -o cat --no-pager |
		grep -c "^Started as "
}

test_expect_success 'install, idle_exit_s='$IDLE_S', nginx, token, a remote; no timer' '
	sd_setup idle_exit_s=$IDLE_S &&
	in_ns systemctl stop repoflow-worker.timer &&
	make_remote web &&
	add_repo web
'

test_expect_success 'the worker, started by the socket, exits when idle' '
	post_action web "{\"kind\": \"sync_repo\"}" &&
	expect_status 202 &&
	wait_job web "$JOB_ID" completed 60 &&
	wait_until $((IDLE_S + 10)) worker_inactive &&
	test_eq inactive "$(worker_state)" "worker after the idle time" &&
	test_eq "Result=success" "$(in_ns systemctl show -p Result repoflow-worker.service)" &&
	test_eq active "$(unit_state repoflow-worker.socket)" "the socket, still listening" &&
	in_ns journalctl -b -u repoflow-worker.service MESSAGE_ID=$MID_IDLE -o cat --no-pager >idle.log &&
	grep -q "Idle for $IDLE_S s" idle.log &&
	test_eq 1 "$(worker_starts)" "worker starts"
'

test_expect_success 'the next action starts it again' '
	post_action web "{\"kind\": \"sync_repo\"}" &&
	expect_status 202 &&
	wait_job web "$JOB_ID" completed 30 &&
	test_eq 2 "$(worker_starts)" "worker starts" &&
	wait_until $((IDLE_S + 10)) worker_inactive
'

# Each round posts an action at a chosen offset from the moment the worker
# should exit (the last job's finished_at + idle_exit_s), sweeping across
# it: before the exit (the running worker takes it), around the exit (the
# drain, the last look at the queue, exiting, systemd taking the socket
# back), and after it (systemd starts a new worker). Whatever the moment,
# the job must complete within 10 s. The sweep runs inside, in one script,
# so that nothing but curl stands between the clock and the request.
cat >"$SHARE/sweep.sh" <<'EOF'
#!/bin/bash
# sweep.sh BASE TOKEN IDLE_MS: post, wait, and post again at offsets around the idle exit.
base=$1 tok=$2 idle_ms=$3
auth="Authorization: Bearer $tok"
post() { curl -sS --max-time 10 -H "$auth" -H 'Content-Type: application/json' \
	--data-binary '{"kind": "sync_repo"}' "$base/v1/repos/web/actions" | jq -r .id; }
job() { curl -sS --max-time 10 -H "$auth" "$base/v1/repos/web/jobs/$1"; }
# wait_done ID: until completed (prints finished_at in ms); fails after 10 s.
wait_done()
{
	local deadline=$((SECONDS + 10)) j
	while [ $SECONDS -lt $deadline ]; do
		j=$(job "$1")
		if [ "$(jq -r .status <<<"$j")" = completed ]; then
			date -d "$(jq -r .finished_at <<<"$j")" +%s%3N
			return 0
		fi
		sleep 0.02
	done
	echo "job $1 did not complete within 10 s: $(job "$1")" >&2
	return 1
}
id=$(post) && fin=$(wait_done "$id") || exit 1
for off in -400 -250 -150 -100 -60 -30 -10 0 10 20 30 45 60 80 100 130 170 220 300 450 700; do
	target=$((fin + idle_ms + off))
	now=$(date +%s%3N)
	[ "$target" -le "$now" ] || sleep "$(awk "BEGIN { print ($target - $now) / 1000 }")"
	id=$(post) && fin=$(wait_done "$id") || { echo "round at offset $off ms: lost"; exit 1; }
	echo "offset $off ms: job $id completed"
done
EOF

test_expect_success 'a wake-up sent around the idle exit is never lost' '
	wait_until 20 worker_inactive &&
	before=$(worker_starts) &&
	in_ns bash "$SD_SHARE/sweep.sh" "$BASE" "$ADMIN_TOKEN" $((IDLE_S * 1000)) >sweep.out &&
	cat sweep.out >&2 &&
	test_eq 21 "$(grep -c completed sweep.out)" "rounds" &&
	after=$(worker_starts) &&
	say "the sweep started the worker $((after - before)) time(s) in 21 rounds" &&
	test_ge $((after - before)) 3 "new workers during the sweep"
'

test_expect_success 'a wake-up sent while systemd stops the worker mid-job is not lost' '
	make_big_remote big 48 &&
	add_repo big &&
	post_action big "{\"kind\": \"sync_repo\"}" &&
	expect_status 202 &&
	BIG=$JOB_ID &&
	wait_job big "$BIG" running 60 &&
	in_ns systemctl stop --no-block repoflow-worker.service &&
	wait_until 10 test "$(worker_state)" = deactivating &&
	post_action web "{\"kind\": \"sync_repo\"}" &&
	expect_status 202 &&
	DURING=$JOB_ID &&
	test_eq deactivating "$(worker_state)" "worker when the wake-up was sent" &&
	wait_job web "$DURING" completed 30 &&
	wait_job big "$BIG" completed 120 &&
	test_eq 2 "$(job_field big $BIG .attempt)" "attempts of the stopped job"
'

test_done
