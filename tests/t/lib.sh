# tests/t/lib.sh - the harness of the end-to-end tests, in the style of
# git's t/test-lib.sh. A test script sources it, then:
#
#   test_expect_success 'title' '
#           commands &&
#           more commands
#   '
#   test_done
#
# Each script gets a throwaway directory ($TRASH, also the cwd and $HOME),
# removed when every test passed and kept (its path printed) otherwise.
# start_stack starts a private nginx + repoflow-api + worker there; stop_stack
# (also run at exit) stops what it started, by pid. Output is TAP on stdout;
# what the tested commands print goes to stderr (the .log file), so it can
# never be taken for a TAP line.
#
# Environment: top_srcdir and top_builddir (absolute; `make check` exports
# them). When run by hand from the source tree they default to it; set
# top_builddir to a separate build directory otherwise. -v (or TEST_VERBOSE=1)
# echoes each test's commands; -i stops at the first failure.

case "${0##*/}" in
t[0-9]*.sh) ;;
*) echo "Bail out! lib.sh must be sourced by a tests/t/tNNNN-*.sh script" ; exit 1 ;;
esac

: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
export top_srcdir top_builddir
RF_SRCDIR=$top_srcdir
RF_BUILDDIR=$top_builddir
. "$top_srcdir/tools/lib/stack.sh"
. "$top_srcdir/tests/lib-assert.sh"

TEST_NAME=${0##*/}
TEST_NAME=${TEST_NAME%.sh}
test_count=0
test_failures=0
test_verbose=${TEST_VERBOSE:-}
test_immediate=
for arg in "$@"; do
	case "$arg" in
	-v | --verbose) test_verbose=1 ;;
	-i | --immediate) test_immediate=1 ;;
	esac
done

# A fixed identity and time for everything the git CLI does in the tests.
export GIT_AUTHOR_NAME="A U Thor" GIT_AUTHOR_EMAIL="author@example.com"
export GIT_COMMITTER_NAME="C O Mitter" GIT_COMMITTER_EMAIL="committer@example.com"
export GIT_AUTHOR_DATE="1700000000 +0000" GIT_COMMITTER_DATE="1700000000 +0000"
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export LC_ALL=C TZ=UTC
unset REPOFLOW_CONFIG

# Sanitizer builds: stop at the first report, and say where it came from.
export ASAN_OPTIONS="${ASAN_OPTIONS:-halt_on_error=1:abort_on_error=0:detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"

bail_out()
{
	echo "Bail out! $TEST_NAME: $*"
	_test_cleanup
	exit 1
}

# The throwaway directory.
TRASH=$(mktemp -d "${TMPDIR:-/tmp}/repoflow-t.XXXXXX") || {
	echo "Bail out! cannot create a trash directory"
	exit 1
}
mkdir -p "$TRASH/log" "$TRASH/.api" || bail_out "cannot populate $TRASH"
export HOME=$TRASH RF_GIT_HOME=$TRASH
cd "$TRASH" || bail_out "cannot cd to $TRASH"

# What start_stack started, by role; stop_stack stops them in reverse.
STACK_PIDS=()
STACK_ROLES=()
STACK_STARTED=
WORKER_PID=
WORKER_MODE=
WATCHDOG_PID=

_stack_add() { STACK_PIDS+=("$2"); STACK_ROLES+=("$1"); }

_test_cleanup()
{
	stop_stack
	if [ -n "$WATCHDOG_PID" ]; then
		kill -TERM "$WATCHDOG_PID" 2>/dev/null
		wait "$WATCHDOG_PID" 2>/dev/null
		WATCHDOG_PID=
	fi
}

trap '_test_cleanup' EXIT
trap 'echo "Bail out! $TEST_NAME: interrupted"; _test_cleanup; exit 1' INT TERM

# A watchdog: no script may hang `make check`. It holds none of our
# output descriptors (the TAP driver waits for them to close).
TEST_TIMEOUT=${TEST_TIMEOUT:-300}
(
	exec </dev/null >/dev/null 2>&1
	sleep "$TEST_TIMEOUT" &
	sp=$!
	trap 'kill $sp 2>/dev/null; exit 0' TERM
	wait $sp && kill -TERM $$
) &
WATCHDOG_PID=$!

say() { printf '# %s\n' "$*"; }

# --- the test functions -----------------------------------------------------

_test_run()
{
	local title=$1 body=$2 ok
	# Something outside this script emptying its directory (a clean-up of
	# /tmp by another program) would make every later test fail
	# mysteriously: say so once and stop.
	[ -d "$TRASH/.api" ] || bail_out "$TRASH was emptied by another program"
	test_count=$((test_count + 1))
	echo "--- test $test_count: $title" >&2
	if [ -n "$test_verbose" ]; then
		printf '%s\n' "$body" | sed 's/^/  > /' >&2
	fi
	# Like git: eval in this shell, so a test can set variables for the
	# next one. Its stdout goes to the log, never into the TAP stream.
	eval "$body" >&2
	ok=$?
	return $ok
}

# A title as a TAP description: one line, "#" escaped (it starts a directive).
_tap_title() { printf '%s' "$1" | tr '\n' ' ' | sed 's/#/\\#/g'; }

test_expect_success()
{
	[ $# -eq 2 ] || bail_out "test_expect_success needs 2 arguments"
	if _test_run "$1" "$2"; then
		echo "ok $test_count - $(_tap_title "$1")"
	else
		test_failures=$((test_failures + 1))
		echo "not ok $test_count - $(_tap_title "$1")"
		printf '%s\n' "$2" | sed 's/^/#\t/'
		if [ -n "$test_immediate" ]; then
			test_done
		fi
	fi
}

# test_skip 'title' 'reason': a test that cannot run here, reported as SKIP.
test_skip()
{
	test_count=$((test_count + 1))
	echo "ok $test_count - $(_tap_title "$1") # SKIP $2"
}

# Adds a last test: the servers this script started wrote no sanitizer
# report and did not crash.
_test_server_logs()
{
	local f bad=
	[ -n "$STACK_STARTED" ] || return 0
	for f in "$TRASH"/log/*.log; do
		[ -f "$f" ] || continue
		if grep -E -q 'ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:|Segmentation fault|SUMMARY: UndefinedBehaviorSanitizer' "$f"; then
			bad="$bad ${f##*/}"
			{
				echo "--- sanitizer report in $f:"
				grep -E -A 30 'ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:|Segmentation fault' "$f" | head -n 80
			} >&2
		fi
	done
	test_count=$((test_count + 1))
	if [ -z "$bad" ]; then
		echo "ok $test_count - servers logged no sanitizer report or crash"
	else
		test_failures=$((test_failures + 1))
		echo "not ok $test_count - servers logged no sanitizer report or crash (see$bad)"
	fi
}

_test_dump_logs()
{
	local f
	for f in "$TRASH"/log/*.log; do
		[ -s "$f" ] || continue
		echo "--- last lines of $f:"
		tail -n 40 "$f"
	done >&2
}

test_done()
{
	stop_stack
	_test_server_logs
	echo "1..$test_count"
	if [ "$test_failures" -eq 0 ] && [ "$test_count" -gt 0 ]; then
		_test_cleanup
		cd / && rm -rf "$TRASH"
		exit 0
	fi
	_test_dump_logs
	echo "# failed $test_failures among $test_count test(s)"
	echo "# kept the trash directory: $TRASH"
	_test_cleanup
	exit 1
}

# --- assertions (quiet on success, explain on failure) ----------------------

# --- HTTP -------------------------------------------------------------------

# api METHOD PATH [curl args...]
# Sends a request to $BASE through nginx with the bearer token $TOKEN
# (default $ADMIN_TOKEN; set TOKEN= for none) and records the response:
# $RESP_STATUS, the headers in $TRASH/.api/headers, the body in
# $TRASH/.api/body. Returns 0 when a response came, whatever its status.
RESP_STATUS=
RESP_HEADERS=$TRASH/.api/headers
RESP_BODY=$TRASH/.api/body
api()
{
	local method=$1 path=$2 tok
	shift 2
	tok=${TOKEN-${ADMIN_TOKEN:-}}
	local -a auth=()
	[ -n "$tok" ] && auth=(-H "Authorization: Bearer $tok")
	: >"$RESP_HEADERS"
	: >"$RESP_BODY"
	RESP_STATUS=$(curl -sS --max-time 30 -X "$method" "${auth[@]}" \
		-D "$RESP_HEADERS" -o "$RESP_BODY" -w '%{http_code}' "$@" "$BASE$path") || {
		echo "curl $method $path failed" >&2
		RESP_STATUS=
		return 1
	}
	{
		echo "> $method $path -> $RESP_STATUS"
		head -c 2000 "$RESP_BODY"
		echo
	} >>"$TRASH/log/http.log"
}

# api_json METHOD PATH JSON [curl args...]: api with a JSON body.
api_json()
{
	local method=$1 path=$2 body=$3
	shift 3
	api "$method" "$path" -H 'Content-Type: application/json' --data-binary "$body" "$@"
}

# header NAME: the value of a response header (last one, no CR).
# expect_problem STATUS [SLUG-REGEX]: an RFC 9457 problem with that status.
expect_problem()
{
	expect_status "$1" &&
	expect_header Content-Type '^application/problem\+json' &&
	expect_json '.status' "$1" &&
	expect_json '.type | test("^urn:repoflow:problem:[a-z0-9_]+$")' true &&
	expect_json '.title | type == "string" and length > 0' true &&
	if [ $# -ge 2 ]; then
		test_match "^urn:repoflow:problem:($2)\$" "$(json .type)" "problem type"
	fi
}

# expect_error_field NAME: the problem's errors[] names field NAME.
expect_error_field()
{
	expect_json "[.errors[]?.field] | index(\"$1\") != null" true
}

# --- the stack --------------------------------------------------------------

ctl() { "$RF_BUILDDIR/repoflowctl" --config "$CONF" "$@"; }

# count TABLE: the row count of TABLE (jobs, events, repos, branches, tokens).
count() { ctl count "$1"; }

# wake_count: the wake-ups received by the wake-sink (--worker=sink).
wake_count()
{
	if [ -f "$TRASH/wake-sink.out" ]; then
		wc -l <"$TRASH/wake-sink.out" | tr -d ' '
	else
		echo 0
	fi
}

# snapshot NAME / expect_unchanged NAME: the row counts that a rejected
# request must not change (jobs, events, repos, branches, tokens, and tasks
# once that table exists) and the
# number of wake-ups the sink saw.
snapshot()
{
	local t n
	{
		for t in jobs events repos branches tokens; do
			printf '%s %s\n' "$t" "$(count "$t")"
		done
		# The tasks table arrives with the tasks issue; count it once it exists.
		if n=$(count tasks 2>/dev/null); then
			printf 'tasks %s\n' "$n"
		fi
		printf 'wakeups %s\n' "$(wake_count)"
	} >"$TRASH/.api/snapshot-$1"
}
# snap_get NAME KEY: one number of a snapshot.
snap_get() { sed -n "s/^$2 //p" "$TRASH/.api/snapshot-$1"; }
expect_unchanged()
{
	snapshot "$1.after" &&
	test_cmp "$TRASH/.api/snapshot-$1" "$TRASH/.api/snapshot-$1.after"
}

# start_stack [--worker=activate|foreground|sink|none] [--conf key=value]...
# Writes $CONF, migrates, creates the admin token, starts the worker (by
# default under tools/socket-activate), the API and nginx on a free port,
# and waits for /v1/health. Exports BASE, ADMIN_TOKEN, CONF, DB.
start_stack()
{
	local mode=activate arg
	local -a extra=()
	for arg in "$@"; do
		case "$arg" in
		--worker=*) mode=${arg#--worker=} ;;
		--conf=*) extra+=("${arg#--conf=}") ;;
		*) bail_out "start_stack: unknown argument $arg" ;;
		esac
	done
	local p
	for p in repoflow-api repoflow-worker repoflowctl tools/socket-activate tests/helpers/wake-sink; do
		[ -x "$RF_BUILDDIR/$p" ] || bail_out "not built: $RF_BUILDDIR/$p"
	done
	command -v nginx >/dev/null || bail_out "nginx is not installed"

	CONF=$TRASH/repoflow.conf
	DB=$TRASH/repoflow.db
	rf_write_conf "$CONF" "$TRASH" \
		api_threads=8 worker_threads=4 idle_exit_s=2 lease_s=10 \
		retry_base_ms=200 retry_max_ms=2000 busy_timeout_ms=2000 \
		"${extra[@]}" || bail_out "cannot write $CONF"
	export CONF DB
	STACK_STARTED=1

	ctl migrate >>"$TRASH/log/ctl.log" 2>&1 || bail_out "repoflowctl migrate failed: $(tail -n 5 "$TRASH/log/ctl.log")"
	ADMIN_TOKEN=$(ctl token create admin --admin 2>>"$TRASH/log/ctl.log") &&
		[ -n "$ADMIN_TOKEN" ] || bail_out "repoflowctl token create failed: $(tail -n 5 "$TRASH/log/ctl.log")"
	export ADMIN_TOKEN

	start_worker "$mode"

	rf_start_api "$CONF" "$TRASH/log/api.log" || {
		_test_dump_logs
		bail_out "repoflow-api did not start"
	}
	_stack_add api "$RF_PID"
	API_PID=$RF_PID

	rf_start_web "$TRASH" "$CONF" "$TRASH/log" "$top_srcdir/web" || {
		_test_dump_logs
		bail_out "nginx did not answer /v1/health"
	}
	_stack_add nginx "$RF_PID"
	NGINX_PID=$RF_PID
	PORT=$RF_PORT
	BASE=http://127.0.0.1:$PORT
	export BASE PORT
	say "stack on $BASE (worker: $mode) in $TRASH"
}

# start_worker activate|foreground|sink|none: (re)start the worker side.
start_worker()
{
	WORKER_MODE=$1
	WORKER_PID=
	case "$1" in
	activate)
		rf_start_worker_activated "$CONF" "$TRASH/log/worker.log" ||
			bail_out "tools/socket-activate did not bind the wake socket"
		;;
	foreground)
		rf_start_worker_foreground "$CONF" "$TRASH/log/worker.log"
		;;
	sink)
		local sock
		sock=$(rf_conf_get "$CONF" wake_socket)
		"$RF_BUILDDIR/tests/helpers/wake-sink" "$sock" "$TRASH/wake-sink.out" \
			>"$TRASH/.api/wake-sink.ready" 2>>"$TRASH/log/wake-sink.log" </dev/null &
		RF_PID=$!
		rf_wait_file "$sock" 10 "$RF_PID" || bail_out "wake-sink did not bind $sock"
		;;
	none)
		return 0
		;;
	*)
		bail_out "start_worker: unknown mode $1"
		;;
	esac
	WORKER_PID=$RF_PID
	_stack_add "worker-$1" "$RF_PID"
}

# stop_worker: stop what start_worker started (SIGTERM).
stop_worker()
{
	[ -n "$WORKER_PID" ] || return 0
	rf_stop "$WORKER_PID"
	WORKER_PID=
}

# kill_worker: SIGKILL the process that runs jobs (a foreground worker, or
# the child of tools/socket-activate), as a crash would.
kill_worker()
{
	local pid=$WORKER_PID
	if [ "$WORKER_MODE" = activate ]; then
		pid=$(rf_children "$WORKER_PID" | head -n 1)
	fi
	[ -n "$pid" ] || { echo "kill_worker: no worker process" >&2; return 1; }
	kill -KILL "$pid" || return 1
	if [ "$pid" = "$WORKER_PID" ]; then
		wait "$pid" 2>/dev/null
		WORKER_PID=
	fi
	return 0
}

# worker_children: the worker processes tools/socket-activate runs now.
worker_children() { rf_children "$WORKER_PID"; }

stop_stack()
{
	local i
	for ((i = ${#STACK_PIDS[@]} - 1; i >= 0; i--)); do
		rf_stop "${STACK_PIDS[$i]}"
	done
	STACK_PIDS=()
	STACK_ROLES=()
	WORKER_PID=
}

# --- git remotes ------------------------------------------------------------

# make_remote NAME: $TRASH/remotes/NAME.git with main and the stack
# feat-1 <- feat-2 <- feat-3; prints nothing. The scratch clone stays in
# $TRASH/work/NAME for tests that push more.
make_remote()
{
	mkdir -p "$TRASH/remotes" "$TRASH/work" &&
	rf_make_stack_remote "$TRASH/remotes/$1.git" "$TRASH/work/$1"
}

# make_big_remote NAME MIB: like make_remote, plus a commit on main adding
# MIB MiB of incompressible blobs (1 MiB each), written straight into the
# bare remote with git fast-import. Cloning it through a transport (register
# it as file://$TRASH/remotes/NAME.git; a plain path may be cloned by
# copying files) takes seconds, as libgit2 packs it: the slow, honest job for
# tests that act while a job runs.
make_big_remote()
{
	local name=$1 mib=$2 i
	make_remote "$name" &&
	{
		for i in $(seq 1 "$mib"); do
			printf 'blob\nmark :%d\ndata 1048576\n' "$i"
			head -c 1048576 /dev/urandom
			printf '\n'
		done
		printf 'commit refs/heads/main\nmark :%d\n' $((mib + 1))
		printf 'author A U Thor <author@example.com> 1700000600 +0000\n'
		printf 'committer C O Mitter <committer@example.com> 1700000600 +0000\n'
		printf 'data 14\nAdd big blobs\nfrom refs/heads/main^0\n'
		for i in $(seq 1 "$mib"); do
			printf 'M 100644 :%d blobs/b%d\n' "$i" "$i"
		done
	} | git -c core.compression=0 -c pack.compression=0 \
		--git-dir="$TRASH/remotes/$name.git" fast-import --quiet
}

# add_repo NAME [REMOTE_URL] [TRUNK]: register a repo through the API.
add_repo()
{
	local url=${2:-$TRASH/remotes/$1.git}
	api_json POST /v1/repos "$(jq -cn --arg n "$1" --arg u "$url" --arg t "${3:-main}" \
		'{name: $n, remote_url: $u, trunk: $t}')" &&
	expect_status 201
}

# post_action REPO JSON [curl args]: POST an action; JOB_ID is the job's id.
post_action()
{
	local repo=$1 body=$2
	shift 2
	JOB_ID=
	api_json POST "/v1/repos/$repo/actions" "$body" "$@" &&
	JOB_ID=$(json '.id // empty' 2>/dev/null)
}

# job_field REPO ID FILTER: a field of the job as GET returns it.
job_field()
{
	curl -sS --max-time 10 -H "Authorization: Bearer $ADMIN_TOKEN" \
		"$BASE/v1/repos/$1/jobs/$2" | jq -r "$3"
}

# wait_job REPO ID STATUS [TIMEOUT_S]: wait until the job has STATUS; fails
# (showing the job) when it reaches another final status or times out.
wait_job()
{
	local repo=$1 id=$2 want=$3 deadline=$((SECONDS + ${4:-60})) st
	while :; do
		st=$(job_field "$repo" "$id" .status) || st=
		[ "$st" = "$want" ] && return 0
		case "$st" in
		completed | error | canceled)
			echo "job $id is $st, not $want:" >&2
			job_field "$repo" "$id" . >&2
			return 1
			;;
		esac
		if [ $SECONDS -ge $deadline ]; then
			echo "job $id still '$st' after ${4:-60}s (wanted $want):" >&2
			job_field "$repo" "$id" . >&2
			return 1
		fi
		sleep 0.05
	done
}

# ls_remote_heads BARE: "<sha> <branch>" per branch of a remote, sorted.
ls_remote_heads()
{
	git ls-remote --heads "$1" | sed 's|\trefs/heads/| |' | sort -k 2
}
