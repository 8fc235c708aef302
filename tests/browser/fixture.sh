# tests/browser/fixture.sh - the git remotes and repos the browser tests
# act on, made with the git CLI (the helpers of tests/t/lib-stack.sh) and
# the API (curl). Sourced by run.sh; the test program also runs it as
#
#   bash fixture.sh COMMAND ARGS...
#
# for steps it takes in the middle of a test (see the commands at the end).
#
# Needs: TRASH (the test directory), BASE (the stack's URL), TOKEN (an
# admin token), DAEMON_PORT (the git daemon serving $TRASH/remotes) and
# top_srcdir.

# The git identity and configuration of tests/t/lib.sh.
export GIT_AUTHOR_NAME="A U Thor" GIT_AUTHOR_EMAIL="author@example.com"
export GIT_COMMITTER_NAME="C O Mitter" GIT_COMMITTER_EMAIL="committer@example.com"
export GIT_AUTHOR_DATE="1700000000 +0000" GIT_COMMITTER_DATE="1700000000 +0000"
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export LC_ALL=C TZ=UTC

. "$top_srcdir/tests/t/lib-stack.sh"

# lib-stack.sh's clock restarts in every process; keep it in a file so
# that commits made by separate runs of this script never share a time.
if [ -f "$TRASH/.clock" ]; then
	STACK_CLOCK=$(cat "$TRASH/.clock")
fi
fx_save_clock() { printf '%s\n' "$STACK_CLOCK" >"$TRASH/.clock"; }

fx_log() { printf '%s\n' "$*" >>"$TRASH/log/fixture.log"; }

# fx_api METHOD PATH [JSON]: the response body on stdout; fails on >= 400.
fx_api()
{
	local method=$1 path=$2 body=${3-}
	local -a data=()
	[ -n "$body" ] && data=(-H 'Content-Type: application/json' --data-binary "$body")
	curl -sS --fail-with-body --max-time 30 -X "$method" -H "Authorization: Bearer $TOKEN" \
		"${data[@]}" "$BASE$path"
}

# fx_job REPO JSON [WANT] [TIMEOUT_S]: post an action and wait until its job
# is final; fails unless it ends WANT (default completed).
fx_job()
{
	local repo=$1 body=$2 want=${3:-completed} deadline=$((SECONDS + ${4:-60})) id st
	id=$(fx_api POST "/v1/repos/$repo/actions" "$body" | jq -r '.id // empty') && [ -n "$id" ] || {
		fx_log "posting $body to $repo failed"
		return 1
	}
	while :; do
		st=$(fx_api GET "/v1/repos/$repo/jobs/$id" | jq -r .status) || st=
		case "$st" in
		completed | error | canceled)
			[ "$st" = "$want" ] && return 0
			fx_log "job $id of $repo ($body) ended $st, not $want:"
			fx_api GET "/v1/repos/$repo/jobs/$id" >>"$TRASH/log/fixture.log"
			return 1
			;;
		esac
		[ $SECONDS -lt $deadline ] || { fx_log "job $id of $repo still $st"; return 1; }
		sleep 0.1
	done
}

# fx_slow_hook NAME: the remote's pre-receive hook sleeps for as many
# seconds as $TRASH/slow/NAME says, when that file exists: a real remote
# that takes a moment to accept a push, so a job stays `running` long
# enough to be watched (and reloaded) in the browser.
fx_slow_hook()
{
	mkdir -p "$TRASH/slow" &&
	cat >"$(remote_of "$1")/hooks/pre-receive" <<HOOK &&
#!/bin/sh
cat >/dev/null
if [ -f "$TRASH/slow/$1" ]; then
	sleep "\$(cat "$TRASH/slow/$1")"
fi
exit 0
HOOK
	chmod +x "$(remote_of "$1")/hooks/pre-receive"
}

# fx_repo NAME: a remote with main and the stack feat-1 <- feat-2 <- feat-3
# (lib-stack.sh's make_stack_remote), served by the git daemon, registered
# as repo NAME through git://, synced, and the stack tracked.
fx_repo()
{
	local n=$1 pair
	make_stack_remote "$n" >>"$TRASH/log/fixture.log" 2>&1 &&
	fx_slow_hook "$n" &&
	fx_api POST /v1/repos "$(jq -cn --arg n "$n" --arg u "git://127.0.0.1:$DAEMON_PORT/$n.git" \
		'{name: $n, remote_url: $u, trunk: "main"}')" >/dev/null &&
	fx_job "$n" '{"kind": "sync_repo"}' &&
	for pair in feat-1:main feat-2:feat-1 feat-3:feat-2; do
		fx_job "$n" "$(jq -cn --arg b "${pair%%:*}" --arg p "${pair#*:}" \
			'{kind: "register_existing_branch", branch: $b, parent: $p}')" || return 1
	done
	fx_save_clock
}

# fx_trunk_moves NAME: the trunk gains commits (lib-stack.sh's trunk_gains)
# and a sync sees them, so feat-1 needs a restack.
fx_trunk_moves()
{
	trunk_gains "$1" >>"$TRASH/log/fixture.log" 2>&1 &&
	fx_job "$1" '{"kind": "sync_repo", "options": {"restack": false}}' &&
	fx_save_clock
}

# fx_conflict NAME: the trunk edits line 2 of lines.txt, as feat-1 does,
# and a sync sees it: restacking feat-1 stops on a conflict in lines.txt.
fx_conflict()
{
	edit_line "$1" main lines.txt 2 'line 2, as the trunk wants it' 'Trunk: line 2' >>"$TRASH/log/fixture.log" 2>&1 &&
	push_branches "$1" main >>"$TRASH/log/fixture.log" 2>&1 &&
	fx_job "$1" '{"kind": "sync_repo", "options": {"restack": false}}' &&
	fx_save_clock
}

# fx_push_branch NAME BRANCH FROM: the person pushes a new branch with one
# commit; no sync follows, so only the remote has it.
fx_push_branch()
{
	new_branch "$1" "$2" "$3" &&
	commit_on "$1" "$2" "$2.txt" "work on $2\n" "Start $2" &&
	push_branches "$1" "$2" >>"$TRASH/log/fixture.log" 2>&1 &&
	fx_save_clock
}

# As a command: bash fixture.sh COMMAND ARGS... (COMMAND without fx_).
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -u
	cmd=${1:?usage: fixture.sh COMMAND ARGS...}
	shift
	case "$cmd" in
	repo | trunk_moves | conflict | push_branch | job) "fx_$cmd" "$@" ;;
	*) echo "fixture.sh: unknown command $cmd" >&2; exit 2 ;;
	esac
fi
