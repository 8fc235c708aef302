#!/bin/bash
# tests/browser/run.sh - the dashboard's browser tests: a private stack
# (nginx serving web/ at / and the API at /v1/, repoflow-api, the worker
# under tools/socket-activate) in a throwaway directory, git remotes made
# with the git CLI and served by `git daemon`, and headless Chromium
# (Debian's /usr/bin/chromium) driven by playwright-core from npm.
#
#   tests/browser/run.sh [-v]
#
# Output is TAP on stdout ("ok N - ..." / "not ok N - ...", then "1..N");
# the exit status is non-zero when a test failed or the suite could not
# start. A screenshot of each test's final state (and of any failure) is
# kept in $BROWSER_ARTIFACTS (default tests/browser/artifacts/, git-ignored).
#
# Environment:
#   top_builddir   the build tree with repoflow-api, repoflow-worker,
#                  repoflowctl and tools/socket-activate (default build/normal)
#   CHROMIUM       the browser (default /usr/bin/chromium)
#   BROWSER_ARTIFACTS  where the screenshots go
#   BROWSER_TIMEOUT    seconds before the whole suite is stopped (default 300)
#   BROWSER_KEEP=1     keep the throwaway directory even when all passed
# Needs: node (>= 20) and npm, the Debian packages chromium, nginx, git,
# curl, jq; `npm ci` in tests/browser (run here when node_modules is missing).
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
top_srcdir=$(cd "$HERE/../.." && pwd)
: "${top_builddir:=$top_srcdir/build/normal}"
top_builddir=$(cd "$top_builddir" 2>/dev/null && pwd) || {
	echo "Bail out! no build tree at $top_builddir (set top_builddir)"
	exit 1
}
export top_srcdir top_builddir
RF_SRCDIR=$top_srcdir
RF_BUILDDIR=$top_builddir
. "$top_srcdir/tools/lib/stack.sh"

CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
ARTIFACTS=${BROWSER_ARTIFACTS:-$HERE/artifacts}
VERBOSE=
[ "${1:-}" = -v ] && VERBOSE=1

bail_out()
{
	echo "Bail out! $*"
	[ -n "${TRASH:-}" ] && [ -d "$TRASH/log" ] && for f in "$TRASH"/log/{fixture,ctl,api,worker,nginx-error,git-daemon}.log; do
		[ -s "$f" ] && { echo "# --- last lines of $f"; tail -n 20 "$f" | sed 's/^/# /'; }
	done
	cleanup
	exit 1
}

# --- what the suite needs -----------------------------------------------------

for p in repoflow-api repoflow-worker repoflowctl tools/socket-activate; do
	[ -x "$top_builddir/$p" ] || bail_out "not built: $top_builddir/$p"
done
for c in node npm nginx git curl jq; do
	command -v "$c" >/dev/null || bail_out "$c is not installed"
done
[ -x "$CHROMIUM" ] || bail_out "no browser at $CHROMIUM (apt-get install chromium)"
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' ||
	bail_out "node $(node --version) is too old (need 20 or later)"
if [ ! -f "$HERE/node_modules/playwright-core/package.json" ]; then
	echo "# installing playwright-core (npm ci in tests/browser)"
	(cd "$HERE" && npm ci --no-audit --no-fund) >&2 || bail_out "npm ci in tests/browser failed"
fi

# --- the throwaway directory and the stack ------------------------------------------

TRASH=$(mktemp -d "${TMPDIR:-/tmp}/repoflow-browser.XXXXXX") || bail_out "cannot create a directory"
mkdir -p "$TRASH/log" "$ARTIFACTS" || bail_out "cannot populate $TRASH"
rm -f "$ARTIFACTS"/*.png "$ARTIFACTS"/*.txt
export TRASH HOME=$TRASH RF_GIT_HOME=$TRASH
cd "$TRASH" || bail_out "cannot cd to $TRASH"

PIDS=()
NODE_PID=
WATCHDOG_PID=
cleanup()
{
	local i
	if [ -n "$NODE_PID" ]; then
		# playwright closes its browser on SIGTERM.
		kill -TERM "$NODE_PID" 2>/dev/null
		wait "$NODE_PID" 2>/dev/null
		NODE_PID=
	fi
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		rf_stop "${PIDS[$i]}"
	done
	PIDS=()
	if [ -n "$WATCHDOG_PID" ]; then
		kill -TERM "$WATCHDOG_PID" 2>/dev/null
		wait "$WATCHDOG_PID" 2>/dev/null
		WATCHDOG_PID=
	fi
}
trap cleanup EXIT
trap 'echo "Bail out! interrupted"; cleanup; exit 1' INT TERM

# No run may hang its caller.
TIMEOUT=${BROWSER_TIMEOUT:-300}
(
	exec </dev/null >/dev/null 2>&1
	sleep "$TIMEOUT" &
	sp=$!
	trap 'kill $sp 2>/dev/null; exit 0' TERM
	wait $sp && kill -TERM $$
) &
WATCHDOG_PID=$!

started=$SECONDS
CONF=$TRASH/repoflow.conf
rf_write_conf "$CONF" "$TRASH" \
	api_threads=8 worker_threads=4 idle_exit_s=5 lease_s=30 \
	retry_base_ms=200 retry_max_ms=2000 busy_timeout_ms=2000 ||
	bail_out "cannot write $CONF"
ctl() { "$top_builddir/repoflowctl" --config "$CONF" "$@"; }
ctl migrate >>"$TRASH/log/ctl.log" 2>&1 || bail_out "repoflowctl migrate failed"
TOKEN=$(ctl token create browser --admin 2>>"$TRASH/log/ctl.log") && [ -n "$TOKEN" ] ||
	bail_out "repoflowctl token create failed"
export TOKEN

rf_start_worker_activated "$CONF" "$TRASH/log/worker.log" || bail_out "the worker's socket activator did not start"
PIDS+=("$RF_PID")
rf_start_api "$CONF" "$TRASH/log/api.log" || bail_out "repoflow-api did not start"
PIDS+=("$RF_PID")
rf_start_web "$TRASH" "$CONF" "$TRASH/log" "$top_srcdir/web" || bail_out "nginx did not answer /v1/health"
PIDS+=("$RF_PID")
BASE=http://127.0.0.1:$RF_PORT
export BASE
echo "# stack on $BASE in $TRASH"

# The remotes: git daemon, so that pushes run the remote's hooks.
mkdir -p "$TRASH/remotes"
: >"$TRASH/daemon.gitconfig"
DAEMON_PORT=
for _ in 1 2 3 4 5; do
	port=$(rf_pick_port) || break
	GIT_CONFIG_GLOBAL=$TRASH/daemon.gitconfig git daemon --reuseaddr --listen=127.0.0.1 \
		--port="$port" --base-path="$TRASH/remotes" --export-all \
		--enable=receive-pack --informative-errors \
		>>"$TRASH/log/git-daemon.log" 2>&1 </dev/null &
	pid=$!
	deadline=$((SECONDS + 10))
	while rf_alive "$pid" && [ $SECONDS -lt $deadline ] && ! rf_port_in_use "$port"; do
		sleep 0.05
	done
	if rf_alive "$pid" && rf_port_in_use "$port"; then
		PIDS+=("$pid")
		DAEMON_PORT=$port
		break
	fi
	rf_stop "$pid" 2
done
[ -n "$DAEMON_PORT" ] || bail_out "git daemon did not start"
export DAEMON_PORT

# --- the repos the tests act on --------------------------------------------------------

. "$HERE/fixture.sh"
{
	# restack: feat-1 needs a restack; an untracked branch whose name is HTML.
	fx_repo restack && fx_push_branch restack '<b>bold</b>' main && fx_trunk_moves restack &&
	# reload: feat-1 needs a restack (restack all, reloaded mid-job).
	fx_repo reload && fx_trunk_moves reload &&
	# conflict: restacking feat-1 stops on lines.txt.
	fx_repo conflict && fx_conflict conflict &&
	# cancel: restack all runs (slowly) while a sync waits behind it.
	fx_repo cancel && fx_trunk_moves cancel &&
	# keys: a settled stack, reparented by keyboard.
	fx_repo keys &&
	# tasks: a branch the remote has and the projection has not.
	fx_repo tasks && fx_push_branch tasks remote-only feat-1 &&
	# reconnect: the trunk moves while the browser is offline.
	fx_repo reconnect
} || bail_out "setting up the repos failed (see $TRASH/log/fixture.log)"
echo "# repos ready after $((SECONDS - started)) s"

# --- the browser --------------------------------------------------------------------------

export CHROMIUM ARTIFACTS FIXTURE=$HERE/fixture.sh BROWSER_VERBOSE=$VERBOSE
node "$HERE/dashboard.test.mjs" &
NODE_PID=$!
wait "$NODE_PID"
rc=$?
NODE_PID=
echo "# browser suite took $((SECONDS - started)) s; screenshots in $ARTIFACTS"

cleanup
if [ "$rc" -ne 0 ]; then
	# The servers' own logs (not the access log: its URLs carry the token).
	for f in "$TRASH"/log/{fixture,api,worker,nginx-error,git-daemon}.log; do
		[ -s "$f" ] || continue
		echo "# --- last lines of $f"
		tail -n 15 "$f" | sed 's/^/# /'
	done
	echo "# kept the test directory: $TRASH"
	exit 1
fi
if [ -n "${BROWSER_KEEP:-}" ]; then
	echo "# kept the test directory: $TRASH"
else
	cd / && rm -rf "$TRASH"
fi
exit 0
