# tests/systemd/lib.sh - the harness of the tests that run repoflow under a
# real systemd, as a deployment runs it: the built Debian package installed
# with apt-get, its units started by systemd, nginx with the shipped
# snippet, the logs in journald.
#
# A test script sources this file, calls sd_boot, and then writes tests as
# in git's t/ (and tests/t/lib.sh):
#
#   test_expect_success 'title' '
#           in_ns systemctl is-active repoflow-api.socket &&
#           more commands
#   '
#   test_done
#
# sd_boot starts boot.sh as PID 1 of private PID, mount, cgroup, UTS and
# network namespaces; boot.sh puts an overlay over `/` and execs systemd, so
# everything the booted system writes vanishes with it and the host's
# files are never touched (the design notes' TESTING.md has the
# recipe). in_ns runs a command inside, as root, in /srv/rftest: that
# directory is $SHARE on the host, bind-mounted, the one place both sides
# see. The network namespace is private too, so nginx's port and the
# namespace's loopback belong to this test alone: curl runs inside.
#
# The system is powered off at the end (test_done), on any exit (a trap),
# and by a watchdog after TEST_TIMEOUT seconds (default 900). Output is TAP
# on stdout; everything else goes to stderr (the .log file). On failure
# the booted system's journal is kept in $TRASH/journal.txt and its last
# lines are shown.
#
# The package: $REPOFLOW_DEB, else the newest $top_builddir/deb/repoflow_*.deb
# (what `make check-systemd` builds). Where unshare is not permitted every
# test is skipped (TAP SKIP), which tools/test counts as a failure when CI
# is set.

case "${0##*/}" in
s[0-9]*.sh) ;;
*) echo "Bail out! lib.sh must be sourced by a tests/systemd/sNNNN-*.sh script"; exit 1 ;;
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
export LC_ALL=C TZ=UTC

# The namespace's side of things.
SD_SHARE=/srv/rftest # $SHARE, inside
SD_PORT=8080	     # nginx's port inside the namespace (its loopback is ours alone)
BASE=http://127.0.0.1:$SD_PORT
SD_PID=		     # systemd, PID 1 inside, as the host sees it
SD_CGROUP=	     # the test's own cgroup on the host, the namespace's cgroup root
SD_CGROUP_MOUNT=     # a cgroup2 mount made for it (when the host has none)
UNSHARE_PID=
WATCHDOG_PID=

# The TAP stream: a test's own output goes to stderr, so a bail-out from
# inside a test still needs the original stdout.
exec {TAP_FD}>&1

bail_out()
{
	echo "Bail out! $TEST_NAME: $*" >&$TAP_FD
	_sd_cleanup
	[ -z "${TRASH:-}" ] || echo "# kept the trash directory: $TRASH" >&$TAP_FD
	exit 1
}

say() { printf '# %s\n' "$*"; }

# The throwaway directory on the host; $SHARE inside it is /srv/rftest inside.
TRASH=$(mktemp -d "${TMPDIR:-/tmp}/repoflow-sd.XXXXXX") || {
	echo "Bail out! cannot create a trash directory"
	exit 1
}
SHARE=$TRASH/share
mkdir -p "$SHARE/.api" "$TRASH/root" && chmod 0755 "$TRASH" "$SHARE" ||
	bail_out "cannot populate $TRASH"
cd "$TRASH" || bail_out "cannot cd to $TRASH"
export HOME=$TRASH RF_GIT_HOME=$TRASH

# --- TAP ------------------------------------------------------------------------

_test_run()
{
	local title=$1 body=$2
	test_count=$((test_count + 1))
	echo "--- test $test_count: $title" >&2
	[ -z "$test_verbose" ] || printf '%s\n' "$body" | sed 's/^/  > /' >&2
	eval "$body" >&2
}

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
		[ -z "$test_immediate" ] || test_done
	fi
}

# test_skip_all REASON: this script cannot run here; one TAP SKIP, exit 0.
test_skip_all()
{
	echo "1..0 # SKIP $*"
	_sd_cleanup
	cd / && rm -rf "$TRASH"
	exit 0
}

test_done()
{
	if [ "$test_failures" -ne 0 ] && [ -n "$SD_PID" ]; then
		in_ns journalctl -b --no-pager -o short-precise >"$TRASH/journal.txt" 2>&1
		{
			echo "--- failed units:"
			in_ns systemctl --failed --no-legend --no-pager
			echo "--- the last 150 lines of the journal ($TRASH/journal.txt has it all):"
			tail -n 150 "$TRASH/journal.txt"
		} >&2
	fi
	_sd_cleanup
	echo "1..$test_count"
	if [ "$test_failures" -eq 0 ] && [ "$test_count" -gt 0 ]; then
		cd / && rm -rf "$TRASH"
		exit 0
	fi
	echo "# failed $test_failures among $test_count test(s)"
	echo "# kept the trash directory: $TRASH"
	exit 1
}

# --- assertions (quiet on success, explain on failure) ------------------------

# test_expect_code CODE CMD...: CMD exits with CODE; its stderr is left in ./err.
test_expect_code()
{
	local want=$1 got
	shift
	"$@" 2>err
	got=$?
	cat err >&2
	test_eq "$want" "$got" "exit status of $*"
}

# wait_until SECONDS CMD...: run CMD every 0.1 s until it succeeds; fail
# (saying what) when it has not within SECONDS.
wait_until()
{
	local deadline=$((SECONDS + $1))
	shift
	while ! "$@" >/dev/null 2>&1; do
		if [ $SECONDS -ge $deadline ]; then
			echo "still not true after the wait: $*" >&2
			return 1
		fi
		sleep 0.1
	done
}

# --- the namespace --------------------------------------------------------------

# in_ns CMD...: run CMD inside, as root, in /srv/rftest, with a clean
# environment (nothing of the host's leaks in).
in_ns()
{
	[ -n "$SD_PID" ] || { echo "in_ns: no system is booted" >&2; return 1; }
	nsenter -t "$SD_PID" -m -p -C -u -n -- \
		env -i -C "$SD_SHARE" PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		HOME=/root LC_ALL=C.UTF-8 TZ=UTC TERM=dumb SYSTEMD_PAGER= SYSTEMD_COLORS=0 \
		DEBIAN_FRONTEND=noninteractive "$@"
}

# in_sh 'SCRIPT': a bash script inside.
in_sh() { in_ns bash -c "$1"; }

# Whether namespaces can be made here at all (else the script skips).
_sd_can_unshare()
{
	[ "$(id -u)" = 0 ] || return 1
	command -v unshare >/dev/null && command -v nsenter >/dev/null || return 1
	[ -x /lib/systemd/systemd ] || return 1
	unshare --pid --fork --mount --cgroup --uts --net --propagation private true \
		>/dev/null 2>&1
}

# _sd_make_cgroup: a cgroup of this test's own in the host's cgroup2
# hierarchy, for the namespace's systemd to take as its root. Without it the
# cgroup namespace's root would be the host's, shared by every system booted
# this way: two tests at once would then manage the same cgroups (the same
# system.slice/repoflow-worker.service), and one's `systemctl kill` would
# reach into the other's.
_sd_make_cgroup()
{
	local root
	root=$(awk '{ for (i = 7; i < NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") print $5; break } }' \
		/proc/self/mountinfo | head -n 1)
	if [ -z "$root" ]; then
		SD_CGROUP_MOUNT=$TRASH/cgroup2
		mkdir -p "$SD_CGROUP_MOUNT" && mount -t cgroup2 cgroup2 "$SD_CGROUP_MOUNT" || return 1
		root=$SD_CGROUP_MOUNT
	fi
	SD_CGROUP=$root/${TRASH##*/}
	mkdir "$SD_CGROUP"
}

# _sd_remove_cgroup: once the namespace is gone, its cgroups are empty; remove them.
_sd_remove_cgroup()
{
	if [ -n "$SD_CGROUP" ] && [ -d "$SD_CGROUP" ]; then
		find "$SD_CGROUP" -depth -type d -exec rmdir {} + 2>/dev/null ||
			echo "could not remove the cgroup $SD_CGROUP" >&2
	fi
	SD_CGROUP=
	if [ -n "$SD_CGROUP_MOUNT" ]; then
		umount "$SD_CGROUP_MOUNT" && rmdir "$SD_CGROUP_MOUNT"
		SD_CGROUP_MOUNT=
	fi
}

# The pid of the process boot.sh became (systemd), as the host sees it.
_sd_find_pid()
{
	local child
	child=$(cat "/proc/$UNSHARE_PID/task/$UNSHARE_PID/children" 2>/dev/null) || return 1
	child=${child%% *}
	[ -n "$child" ] || return 1
	[ "$(cat "/proc/$child/comm" 2>/dev/null)" = systemd ] || return 1
	SD_PID=$child
}

# sd_boot: boot the system and wait until it runs. Skips the whole script
# where unshare is not permitted; bails out when the boot fails.
sd_boot()
{
	local state deadline
	_sd_can_unshare || test_skip_all "cannot boot systemd in namespaces here (needs root, a permitted unshare, nsenter and /lib/systemd/systemd)"
	_sd_make_cgroup || bail_out "cannot make a cgroup for the namespace"
	# The shell moves itself into the cgroup, then becomes unshare.
	setsid sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$SD_CGROUP" \
		unshare --pid --fork --mount --cgroup --uts --net --propagation private \
		"$top_srcdir/tests/systemd/boot.sh" "$TRASH/root" "$SHARE" \
		</dev/null >"$TRASH/boot.log" 2>&1 &
	UNSHARE_PID=$!
	deadline=$((SECONDS + 30))
	until _sd_find_pid; do
		if ! kill -0 "$UNSHARE_PID" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
			cat "$TRASH/boot.log" >&2
			bail_out "systemd did not start in the namespace"
		fi
		sleep 0.1
	done
	# systemctl needs PID 1's private socket, made early in the boot.
	until nsenter -t "$SD_PID" -m test -S /run/systemd/private 2>/dev/null; do
		if ! kill -0 "$UNSHARE_PID" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
			cat "$TRASH/boot.log" >&2
			bail_out "systemd did not come up in the namespace"
		fi
		sleep 0.1
	done
	# "degraded" is fine when only units unrelated to repoflow failed (a
	# container lacks some hardware); the list goes to the log.
	state=$(timeout 120 nsenter -t "$SD_PID" -m -p -C -u -n systemctl is-system-running --wait 2>&1)
	case "$state" in
	running) ;;
	degraded)
		say "the booted system is degraded; failed units: $(in_ns systemctl --failed --no-legend --plain | awk '{print $1}' | tr '\n' ' ')"
		;;
	*)
		in_ns journalctl -b --no-pager | tail -n 60 >&2
		bail_out "the booted system is '$state'"
		;;
	esac
	# A container image's policy-rc.d (Docker's says "exit 101") forbids
	# maintainer scripts to start services; no real machine has one, and
	# with it the package's sockets would never start. Only the overlay
	# loses it.
	in_ns rm -f /usr/sbin/policy-rc.d
	say "systemd booted in a namespace (host pid $SD_PID) in $TRASH"
}

# sd_poweroff: power the system off and wait for it; SIGKILL to its PID 1
# (which ends every process of the namespace) when it does not go.
sd_poweroff()
{
	local i
	[ -n "$UNSHARE_PID" ] || return 0
	if [ -n "$SD_PID" ]; then
		timeout 10 nsenter -t "$SD_PID" -m -p -C -u -n systemctl poweroff >/dev/null 2>&1
	fi
	for i in $(seq 1 300); do
		kill -0 "$UNSHARE_PID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$UNSHARE_PID" 2>/dev/null; then
		echo "the system did not power off in 30 s; killing its PID 1" >&2
		[ -z "$SD_PID" ] || kill -KILL "$SD_PID" 2>/dev/null
	fi
	wait "$UNSHARE_PID" 2>/dev/null
	UNSHARE_PID=
	SD_PID=
	_sd_remove_cgroup
}

_sd_cleanup()
{
	sd_poweroff
	_sd_remove_cgroup
	if [ -n "$WATCHDOG_PID" ]; then
		kill -TERM "$WATCHDOG_PID" 2>/dev/null
		wait "$WATCHDOG_PID" 2>/dev/null
		WATCHDOG_PID=
	fi
}

trap '_sd_cleanup' EXIT
trap 'bail_out "interrupted or timed out"' INT TERM

# No script may hang `make check-systemd`: after TEST_TIMEOUT seconds the
# script gets SIGTERM, and its trap powers the system off.
TEST_TIMEOUT=${TEST_TIMEOUT:-900}
(
	exec </dev/null >/dev/null 2>&1
	sleep "$TEST_TIMEOUT" &
	sp=$!
	trap 'kill $sp 2>/dev/null; exit 0' TERM
	wait $sp && kill -TERM $$
) &
WATCHDOG_PID=$!

# --- the package and the service --------------------------------------------------

# The package under test.
sd_deb()
{
	local d
	if [ -n "${REPOFLOW_DEB:-}" ]; then
		[ -f "$REPOFLOW_DEB" ] || return 1
		printf '%s\n' "$REPOFLOW_DEB"
		return 0
	fi
	d=$(ls -t "$top_builddir"/deb/repoflow_*.deb 2>/dev/null | head -n 1)
	[ -n "$d" ] && printf '%s\n' "$d"
}

# sd_install: apt-get install ./repoflow_*.deb inside, as an operator would.
sd_install()
{
	local deb
	deb=$(sd_deb) || bail_out "no package: set REPOFLOW_DEB or run 'make check-systemd' (it builds one)"
	cp "$deb" "$SHARE/" || return 1
	DEB_FILE=${deb##*/}
	in_ns apt-get install -y -q --no-install-recommends "./$DEB_FILE" >&2
}

# sd_conf KEY=VALUE...: set keys in /etc/repoflow/repoflow.conf (later
# lines win), for the services' next start.
sd_conf()
{
	local kv
	for kv in "$@"; do
		in_sh "printf '%s = %s\n' '${kv%%=*}' '${kv#*=}' >>/etc/repoflow/repoflow.conf" || return 1
	done
}

# sd_nginx: a site on port 8080 that includes the shipped snippet, the way
# the snippet's own comment tells an operator to.
sd_nginx()
{
	cat >"$SHARE/repoflow-site" <<-EOF
	server {
		listen 127.0.0.1:$SD_PORT;
		server_name localhost;
		include snippets/repoflow.conf;
	}
	EOF
	in_ns cp "$SD_SHARE/repoflow-site" /etc/nginx/sites-enabled/repoflow-test &&
	in_ns nginx -t >&2 &&
	in_ns systemctl reload-or-restart nginx.service &&
	wait_until 20 api_health
}

api_health() { in_ns curl -sf --max-time 5 "$BASE/v1/health" >/dev/null; }

# sd_token: ADMIN_TOKEN, made with repoflowctl as an operator would.
sd_token()
{
	ADMIN_TOKEN=$(in_ns repoflowctl token create "admin-$RANDOM" --admin) &&
	[ -n "$ADMIN_TOKEN" ]
}

# sd_setup [KEY=VALUE...]: install, configure, nginx, token: the stack an
# operator has after following the documentation.
sd_setup()
{
	sd_install || return 1
	[ $# -eq 0 ] || sd_conf "$@" || return 1
	sd_nginx && sd_token
}

# make_remote NAME: $SHARE/remotes/NAME.git (main and the stack feat-1 <-
# feat-2 <- feat-3), owned by the worker's user, whose libgit2 refuses a
# repository someone else owns. Inside it is /srv/rftest/remotes/NAME.git.
make_remote()
{
	mkdir -p "$SHARE/remotes" "$TRASH/work" &&
	rf_make_stack_remote "$SHARE/remotes/$1.git" "$TRASH/work/$1" &&
	in_ns chown -R repoflow:repoflow "$SD_SHARE/remotes/$1.git"
}

# make_big_remote NAME MIB: like make_remote, plus a commit on main adding
# MIB MiB of incompressible blobs: a fetch of it takes seconds, an honest
# slow job for tests that act while a job runs.
make_big_remote()
{
	local name=$1 mib=$2 i
	mkdir -p "$SHARE/remotes" "$TRASH/work" &&
	rf_make_stack_remote "$SHARE/remotes/$name.git" "$TRASH/work/$name" &&
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
	} | rf_git -c core.compression=0 -c pack.compression=0 \
		--git-dir="$SHARE/remotes/$name.git" fast-import --quiet &&
	in_ns chown -R repoflow:repoflow "$SD_SHARE/remotes/$name.git"
}

# --- HTTP, through nginx, inside ------------------------------------------------

# api METHOD PATH [curl args...]: a request with $ADMIN_TOKEN (TOKEN= for
# none); $RESP_STATUS, and the headers and body in $RESP_HEADERS and
# $RESP_BODY (on the host).
RESP_HEADERS=$SHARE/.api/headers
RESP_BODY=$SHARE/.api/body
api()
{
	local method=$1 path=$2 tok
	shift 2
	tok=${TOKEN-${ADMIN_TOKEN:-}}
	local -a auth=()
	[ -n "$tok" ] && auth=(-H "Authorization: Bearer $tok")
	: >"$RESP_HEADERS"
	: >"$RESP_BODY"
	RESP_STATUS=$(in_ns curl -sS --max-time 30 -X "$method" "${auth[@]}" \
		-D "$SD_SHARE/.api/headers" -o "$SD_SHARE/.api/body" -w '%{http_code}' \
		"$@" "$BASE$path") || {
		echo "curl $method $path failed" >&2
		RESP_STATUS=
		return 1
	}
}

api_json()
{
	local method=$1 path=$2 body=$3
	shift 3
	api "$method" "$path" -H 'Content-Type: application/json' --data-binary "$body" "$@"
}

add_repo()
{
	local url=${2:-file://$SD_SHARE/remotes/$1.git}
	api_json POST /v1/repos "$(jq -cn --arg n "$1" --arg u "$url" '{name: $n, remote_url: $u, trunk: "main"}')" &&
	expect_status 201
}

# post_action REPO JSON: POST an action; JOB_ID is the job's id.
post_action()
{
	JOB_ID=
	api_json POST "/v1/repos/$1/actions" "$2" &&
	JOB_ID=$(json '.id // empty' 2>/dev/null)
}

# job_field REPO ID FILTER
job_field()
{
	in_ns curl -sS --max-time 10 -H "Authorization: Bearer $ADMIN_TOKEN" \
		"$BASE/v1/repos/$1/jobs/$2" | jq -r "$3"
}

# wait_job REPO ID STATUS [TIMEOUT_S]: until the job has STATUS; fails
# (showing the job) at another final status or after the timeout.
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
		sleep 0.1
	done
}

# unit_state UNIT: what systemctl is-active says (it exits non-zero unless active).
unit_state() { in_ns systemctl is-active "$1" 2>/dev/null; true; }
