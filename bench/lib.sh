# bench/lib.sh - what the benchmark scripts share: the build to measure,
# the private stack from tools/lib/stack.sh, wrk runs and their parsing.
# Sourced by bash; every script prints its figures next to the ceiling or
# target it is compared with, measured in the same run.

RF_SRCDIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RF_BUILDDIR=${RF_BUILDDIR:-$RF_SRCDIR/build/normal}
. "$RF_SRCDIR/tools/lib/stack.sh"

[ -x "$RF_BUILDDIR/repoflow-api" ] || {
	echo "bench: no build in $RF_BUILDDIR (run tools/test, or set RF_BUILDDIR)" >&2
	exit 1
}
command -v wrk >/dev/null || { echo "bench: wrk is not installed (apt-get install wrk)" >&2; exit 1; }

BENCH_DIR=$(mktemp -d /tmp/repoflow-bench.XXXXXX)
BENCH_PIDS=()
bench_cleanup()
{
	local i
	for ((i = ${#BENCH_PIDS[@]} - 1; i >= 0; i--)); do
		rf_stop "${BENCH_PIDS[$i]}" 5
	done
	[ -n "${BENCH_KEEP:-}" ] || rm -rf "$BENCH_DIR"
}
trap bench_cleanup EXIT

# bench_wrk OUT_PREFIX CONNS SECONDS SCRIPT URL: run wrk and leave
# requests/s in WRK_RPS, p99 latency (ms) in WRK_P99, non-2xx count in WRK_BAD.
bench_wrk()
{
	local out=$1 conns=$2 secs=$3 script=$4 url=$5 threads=2
	[ "$conns" -lt 2 ] && threads=1
	wrk -t"$threads" -c"$conns" -d"${secs}s" --latency -s "$script" "$url" >"$out.wrk" 2>&1 || {
		cat "$out.wrk" >&2
		return 1
	}
	WRK_RPS=$(awk '/^Requests\/sec:/ { print $2 }' "$out.wrk")
	WRK_P99=$(awk '$1 == "99%" { v = $2; if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 }
		else if (v ~ /ms$/) { sub(/ms$/, "", v) } else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1000 }
		print v }' "$out.wrk")
	WRK_AVG=$(awk '$1 == "Latency" { v = $2; if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 }
		else if (v ~ /ms$/) { sub(/ms$/, "", v) } else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1000 }
		print v; exit }' "$out.wrk")
	WRK_BAD=$(awk '/Non-2xx or 3xx responses:/ { print $5 }' "$out.wrk")
	WRK_BAD=${WRK_BAD:-0}
}

# bench_rss_kb PID: resident set size in KiB.
bench_rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# bench_ratio A B: A / B with three decimals.
bench_ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }'; }

# bench_verdict NAME VALUE OP LIMIT: print a line and remember a miss.
BENCH_MISSES=0
bench_verdict()
{
	local name=$1 value=$2 op=$3 limit=$4 ok
	ok=$(awk -v v="$value" -v l="$limit" -v op="$op" 'BEGIN {
		if (op == "<=") print (v <= l) ? 1 : 0; else print (v >= l) ? 1 : 0 }')
	if [ "$ok" = 1 ]; then
		printf '%-44s %12s   target %s %s   MET\n' "$name" "$value" "$op" "$limit"
	else
		printf '%-44s %12s   target %s %s   MISSED\n' "$name" "$value" "$op" "$limit"
		BENCH_MISSES=$((BENCH_MISSES + 1))
	fi
}

# bench_stack [key=value...]: config, API, a wake-sink in the worker's place
# (so the accept path is measured alone), nginx. Sets CONF, BASE, API_PID,
# ADMIN_TOKEN.
bench_stack()
{
	CONF=$BENCH_DIR/repoflow.conf
	rf_write_conf "$CONF" "$BENCH_DIR" "$@"
	mkdir -p "$BENCH_DIR/log"
	"$RF_BUILDDIR/tests/helpers/wake-sink" "$(rf_conf_get "$CONF" wake_socket)" \
		"$BENCH_DIR/wakes" >>"$BENCH_DIR/log/wake-sink.log" 2>&1 &
	BENCH_PIDS+=($!)
	rf_start_api "$CONF" "$BENCH_DIR/log/api.log" || { echo "bench: API did not start" >&2; exit 1; }
	API_PID=$RF_PID
	BENCH_PIDS+=("$API_PID")
	rf_start_web "$BENCH_DIR" "$CONF" "$BENCH_DIR/log" "$RF_SRCDIR/web" ||
		{ echo "bench: nginx did not start" >&2; exit 1; }
	BENCH_PIDS+=("$RF_PID")
	NGINX_PID=$RF_PID
	BASE=http://127.0.0.1:$RF_PORT
	ADMIN_TOKEN=$("$RF_BUILDDIR/repoflowctl" --config "$CONF" token create bench-admin --admin 2>/dev/null)
}

# bench_repo NAME URL: register a repo through the API.
bench_repo()
{
	curl -sf -o /dev/null -X POST -H "Authorization: Bearer $ADMIN_TOKEN" \
		-H 'Content-Type: application/json' \
		-d "{\"name\":\"$1\",\"remote_url\":\"$2\",\"trunk\":\"main\"}" "$BASE/v1/repos"
}
