#!/bin/bash
# s0030-crash-restart.sh - what systemd does to repoflow and repoflow
# survives: the worker killed with SIGKILL in the middle of a job (the job
# is requeued and completes once systemd has brought the worker back), and
# the API restarted under a stream of requests (every request that got a
# 202 has its job in the database afterwards).
. "$(dirname "$0")/lib.sh"

sd_boot

MID_ORPHAN=$(sed -n 's/^#define LOG_MID_JOB_ORPHAN *"\(.*\)"/\1/p' "$top_srcdir/src/lib/log.h")

test_expect_success 'install, nginx, token, a small and a big remote' '
	sd_setup &&
	make_remote web &&
	add_repo web &&
	make_big_remote big 64 &&
	add_repo big
'

test_expect_success 'systemctl kill -s KILL mid-job: the job is requeued and completes after the restart' '
	post_action big "{\"kind\": \"sync_repo\"}" &&
	expect_status 202 &&
	BIG=$JOB_ID &&
	wait_job big "$BIG" running 60 &&
	sleep 0.5 &&
	test_eq running "$(job_field big $BIG .status)" "the job when the worker is killed" &&
	pid=$(in_ns systemctl show -p MainPID --value repoflow-worker.service) &&
	in_ns systemctl kill -s KILL repoflow-worker.service &&
	wait_job big "$BIG" completed 180 &&
	test_eq 2 "$(job_field big $BIG .attempt)" "attempts" &&
	test_eq null "$(job_field big $BIG .error)" "error" &&
	test_ge "$(in_ns systemctl show -p NRestarts --value repoflow-worker.service)" 1 "NRestarts" &&
	test "$(in_ns systemctl show -p MainPID --value repoflow-worker.service)" != "$pid" &&
	in_ns journalctl -b JOB_ID=$BIG REPO=big MESSAGE_ID=$MID_ORPHAN -o cat --no-pager >orphan.log &&
	cat orphan.log >&2 &&
	test -s orphan.log &&
	test_eq active "$(unit_state repoflow-worker.socket)" "the socket after the crash"
'

test_expect_success 'the branches the requeued job fetched are the remote'"'"'s' '
	api GET /v1/repos/big/branches &&
	expect_status 200 &&
	json ".branches[] | \"\(.remote_head) \(.name)\"" | sort -k 2 >actual &&
	in_ns runuser -u repoflow -- env HOME=/nonexistent git ls-remote --heads "$SD_SHARE/remotes/big.git" | sed "s|\trefs/heads/| |" | sort -k 2 >expect &&
	test_cmp expect actual
'

# The stream: POSTs one after another for DURATION seconds, a little under
# nginx's rate limit for one address, each line "STATUS ID" (ID empty when
# the response had none).
cat >"$SHARE/stream.sh" <<'EOF'
#!/bin/bash
# stream.sh BASE TOKEN DURATION OUT
base=$1 tok=$2 end=$((SECONDS + $3)) out=$4 i=0
: >"$out"
while [ $SECONDS -lt $end ]; do
	i=$((i + 1))
	body=$(printf '{"kind": "sync_repo", "options": {"dry_run": %s}}' $([ $((i % 2)) = 0 ] && echo true || echo false))
	resp=$(curl -sS --max-time 40 -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
		-H "Idempotency-Key: stream-$i" --data-binary "$body" -w '\n%{http_code}' \
		"$base/v1/repos/web/actions" 2>&1)
	code=${resp##*$'\n'}
	printf '%s %s\n' "$code" "$(printf '%s' "${resp%$'\n'*}" | jq -r '.id // empty' 2>/dev/null)" >>"$out"
	sleep 0.08
done
EOF

test_expect_success 'systemctl restart repoflow-api under a stream of requests loses no accepted job' '
	in_ns bash "$SD_SHARE/stream.sh" "$BASE" "$ADMIN_TOKEN" 8 "$SD_SHARE/stream.out" &
	stream=$! &&
	sleep 1 &&
	for i in 1 2 3; do
		in_ns systemctl restart repoflow-api.service || return 1
		sleep 1.5
	done &&
	wait $stream &&
	cut -d" " -f1 "$SHARE/stream.out" | sort | uniq -c >codes &&
	cat codes >&2 &&
	say "responses during the restarts: $(tr -s " \n" " " <codes)" &&
	accepted=$(grep -c "^202 [0-9]" "$SHARE/stream.out") &&
	test_ge "$accepted" 30 "accepted requests" &&
	test_eq 0 "$(grep -c "^202 \$" "$SHARE/stream.out")" "202s without an id" &&
	grep "^202 " "$SHARE/stream.out" | cut -d" " -f2 | sort -u >ids &&
	in_ns sqlite3 /var/lib/repoflow/repoflow.db "SELECT id FROM jobs" | sort -u >all-ids &&
	comm -23 ids all-ids >lost &&
	test_eq 0 "$(wc -l <lost)" "accepted jobs missing from the database" &&
	test_eq active "$(unit_state repoflow-api.socket)" "the API socket"
'

test_done
