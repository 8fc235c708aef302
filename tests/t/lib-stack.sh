# tests/t/lib-stack.sh - helpers of the stack-workflow scenario tests
# (t01xx), sourced after lib.sh. They build stacks in a person's clone,
# run jobs through the API, and compare what repoflow pushed with what the
# git CLI gives for the same stack ("The git CLI as the oracle",
# TESTING.md): a scratch clone runs `git rebase --onto` branch by branch,
# and for every branch the commits above its parent must have the same
# trees, messages and authors (name, email, date), in the same order.
#
# Layout in $TRASH, for a repo NAME made by make_stack_remote NAME:
#   remotes/NAME.git   the bare remote the service pushes to
#   work/NAME          the person's clone (origin = the remote)
#   oracle/NAME        the scratch clone where the git CLI rebases
#   repos/NAME.git     the service's mirror (the worker's, read only here)

# Each commit a test makes gets its own author and committer date.
STACK_CLOCK=1700100000
tick()
{
	STACK_CLOCK=$((STACK_CLOCK + 60))
	export GIT_AUTHOR_DATE="$STACK_CLOCK +0000" GIT_COMMITTER_DATE="$STACK_CLOCK +0000"
}

remote_of() { printf '%s\n' "$TRASH/remotes/$1.git"; }
mirror_of() { printf '%s\n' "$TRASH/repos/$1.git"; }

# pgit NAME ARGS...: git in the person's clone of NAME.
pgit() { local n=$1; shift; git -C "$TRASH/work/$n" "$@"; }

# new_branch NAME BRANCH FROM: create BRANCH at FROM in the person's clone.
new_branch() { pgit "$1" checkout -q -B "$2" "$3"; }

# commit_on NAME BRANCH FILE TEXT MESSAGE [AUTHOR_NAME AUTHOR_EMAIL]:
# on BRANCH of the person's clone, write TEXT (printf %b) to FILE and commit
# with MESSAGE (which may hold several lines) and its own date. TEXT "-"
# removes FILE, TEXT "=" commits FILE as it is in the work tree; an empty
# FILE makes an empty commit.
commit_on()
{
	local n=$1 br=$2 file=$3 text=$4 msg=$5 an=${6:-$GIT_AUTHOR_NAME} ae=${7:-$GIT_AUTHOR_EMAIL}
	local dir=$TRASH/work/$n
	if [ "$(pgit "$n" symbolic-ref -q --short HEAD)" != "$br" ]; then
		pgit "$n" checkout -q "$br" || return 1
	fi
	if [ -z "$file" ]; then
		:
	elif [ "$text" = = ]; then
		pgit "$n" add -- "$file" || return 1
	elif [ "$text" = - ]; then
		pgit "$n" rm -q -- "$file" || return 1
	else
		mkdir -p "$(dirname "$dir/$file")" &&
		printf '%b' "$text" >"$dir/$file" &&
		pgit "$n" add -- "$file" || return 1
	fi
	tick
	printf '%s\n' "$msg" >"$TRASH/.msg"
	GIT_AUTHOR_NAME=$an GIT_AUTHOR_EMAIL=$ae pgit "$n" commit -q --allow-empty -F "$TRASH/.msg"
}

# edit_line NAME BRANCH FILE LINE TEXT MESSAGE [AUTHOR_NAME AUTHOR_EMAIL]:
# commit_on with line LINE of FILE (as BRANCH has it) replaced by TEXT.
edit_line()
{
	local n=$1 br=$2 file=$3 l=$4 t=$5
	shift 5
	if [ "$(pgit "$n" symbolic-ref -q --short HEAD)" != "$br" ]; then
		pgit "$n" checkout -q "$br" || return 1
	fi
	pgit "$n" show "$br:$file" | awk -v l="$l" -v t="$t" 'NR == l { $0 = t } { print }' >"$TRASH/.edit" &&
	cp "$TRASH/.edit" "$TRASH/work/$n/$file" &&
	commit_on "$n" "$br" "$file" = "$@"
}

# push_branches NAME BRANCH...: the person pushes (a + prefix forces).
push_branches() { local n=$1; shift; pgit "$n" push -q origin "$@"; }

# make_stack_remote NAME: $TRASH/remotes/NAME.git and the person's clone
# $TRASH/work/NAME: `main` (two commits; a README and a 10-line lines.txt)
# and the stack main <- feat-1 <- feat-2 <- feat-3, each stacked on the
# tip of the one below, with several commits, authors and multi-line
# messages:
#   feat-1: adds f1.txt; edits line 2 of lines.txt (by Ann Other)
#   feat-2: adds f2.txt; edits line 9 of lines.txt (a message with a body)
#   feat-3: adds f3.txt and deep/dir/f3b.txt (by Bob Third)
make_stack_remote()
{
	local n=$1 r
	r=$(remote_of "$n")
	mkdir -p "$TRASH/remotes" "$TRASH/work" &&
	git init -q --bare -b main "$r" &&
	git init -q -b main "$TRASH/work/$n" &&
	pgit "$n" remote add origin "$r" &&
	commit_on "$n" main README 'demo project\n' 'Initial commit' &&
	commit_on "$n" main lines.txt 'line 1\nline 2\nline 3\nline 4\nline 5\nline 6\nline 7\nline 8\nline 9\nline 10\n' 'Add lines.txt' &&
	new_branch "$n" feat-1 main &&
	commit_on "$n" feat-1 f1.txt 'feature 1\n' 'Add feature 1' &&
	edit_line "$n" feat-1 lines.txt 2 'line 2, as feat-1 wants it' 'feat-1: reword line 2

Line 2 said too little.
This says more.' 'Ann Other' 'ann@example.org' &&
	new_branch "$n" feat-2 feat-1 &&
	commit_on "$n" feat-2 f2.txt 'feature 2\n' 'Add feature 2' &&
	edit_line "$n" feat-2 lines.txt 9 'line 9, as feat-2 wants it' 'feat-2: reword line 9

Body of the message, with a trailer.

Signed-off-by: A U Thor <author@example.com>' &&
	new_branch "$n" feat-3 feat-2 &&
	commit_on "$n" feat-3 f3.txt 'feature 3\n' 'Add feature 3' 'Bob Third' 'bob@example.net' &&
	commit_on "$n" feat-3 deep/dir/f3b.txt 'more of feature 3\n' 'Add feature 3, part two' 'Bob Third' 'bob@example.net' &&
	push_branches "$n" main feat-1 feat-2 feat-3
}

# trunk_gains NAME: the person pushes three commits to main: line 5 of
# lines.txt, a new file in a new directory, an edit of README.
trunk_gains()
{
	local n=$1
	edit_line "$n" main lines.txt 5 'line 5, changed on the trunk' 'Trunk: line 5' 'Tru Nk' 'trunk@example.com' &&
	commit_on "$n" main trunk/new.txt 'new on the trunk\n' 'Trunk: add trunk/new.txt' &&
	commit_on "$n" main README 'demo project, now with a trunk change\n' 'Trunk: README' &&
	push_branches "$n" main
}

# rev NAME REF: the commit id of REF in the remote of NAME.
rev() { git --git-dir="$(remote_of "$1")" rev-parse --verify -q "$2^{commit}"; }

# snap_remote NAME FILE: the remote's refs as `git ls-remote` lists them.
snap_remote() { git ls-remote "$(remote_of "$1")" >"$1.$2.refs"; }

# expect_remote_unchanged NAME SNAP: the remote holds exactly the refs it
# held at snap_remote NAME SNAP.
expect_remote_unchanged()
{
	git ls-remote "$(remote_of "$1")" >"$1.$2.now" &&
	test_cmp "$1.$2.refs" "$1.$2.now"
}

# --- jobs -------------------------------------------------------------------

# run_job REPO JSON STATUS [TIMEOUT_S]: post the action, expect 202, wait
# until the job has STATUS; the job ends up in job.json (and job-ID.json),
# its id in JOB_ID.
run_job()
{
	local repo=$1 body=$2 want=$3 t=${4:-120}
	post_action "$repo" "$body" &&
	expect_status 202 &&
	test -n "$JOB_ID" &&
	wait_job "$repo" "$JOB_ID" "$want" "$t" &&
	api GET "/v1/repos/$repo/jobs/$JOB_ID" &&
	expect_status 200 &&
	cp "$RESP_BODY" job.json &&
	cp "$RESP_BODY" "job-$JOB_ID.json"
}

# jq_job FILTER [FILE]: jq -r FILTER of the last job (job.json).
jq_job() { jq -r "$1" <"${2:-job.json}"; }

# expect_job FILTER EXPECTED [FILE]: a field of the last job.
expect_job()
{
	local got
	got=$(jq -r "$1" <"${3:-job.json}") || return 1
	test_eq "$2" "$got" "job $1" || { jq . "${3:-job.json}" >&2; return 1; }
}

# expect_job_error SLUG RETRYABLE: the last job ended in error with that
# problem type.
expect_job_error()
{
	expect_job .status error &&
	expect_job .error.type "urn:repoflow:problem:$1" &&
	expect_job .error.retryable "$2" &&
	expect_job '.error.title | type == "string" and length > 0' true
}

# register NAME BRANCH [PARENT]: register_existing_branch through the API
# (parent given, or inferred when empty); the job must complete and report
# the branch as tracked (with PARENT when given).
register()
{
	local n=$1 br=$2 p=${3:-} body
	if [ -n "$p" ]; then
		body=$(jq -cn --arg b "$br" --arg p "$p" '{kind: "register_existing_branch", branch: $b, parent: $p}')
	else
		body=$(jq -cn --arg b "$br" '{kind: "register_existing_branch", branch: $b}')
	fi
	run_job "$n" "$body" completed &&
	expect_job "[.result.tracked[]? | select(.branch == \"$br\")] | length" 1 &&
	if [ -n "$p" ]; then
		expect_job ".result.tracked[] | select(.branch == \"$br\") | .parent" "$p"
	fi
}

# register_stack NAME BRANCH:PARENT...: register each, in order.
register_stack()
{
	local n=$1 pair
	shift
	for pair in "$@"; do
		register "$n" "${pair%%:*}" "${pair#*:}" || return 1
	done
}

# --- the projection ---------------------------------------------------------

# branches_json NAME FILE: GET /branches into FILE.
branches_json()
{
	api GET "/v1/repos/$1/branches" && expect_status 200 && cp "$RESP_BODY" "$2"
}

# branch_field NAME BRANCH FIELD: one field of a branch row (fresh GET).
branch_field()
{
	api GET "/v1/repos/$1/branches" >/dev/null &&
	json ".branches[] | select(.name == \"$2\") | .$3"
}

# expect_branch NAME BRANCH FIELD EXPECTED
expect_branch()
{
	local got
	got=$(branch_field "$1" "$2" "$3") || return 1
	test_eq "$4" "$got" "branch $2 .$3"
}

# expect_projection_settled NAME BRANCH:PARENT...: every branch is tracked,
# active, on PARENT, its base is the parent's head on the remote, its head
# and remote_head are the remote's, and it needs no restack.
expect_projection_settled()
{
	local n=$1 pair br p
	shift
	branches_json "$n" proj.json || return 1
	for pair in "$@"; do
		br=${pair%%:*} p=${pair#*:}
		jq -e --arg b "$br" --arg p "$p" --arg h "$(rev "$n" "refs/heads/$br")" \
			--arg base "$(rev "$n" "refs/heads/$p")" '
			.branches[] | select(.name == $b)
			| .tracked == true and .state == "active" and .parent == $p
			  and .base == $base and .head == $h and .remote_head == $h
			  and .needs_restack == false' proj.json >/dev/null || {
			echo "projection row of $br is not settled on $p" \
				"(want head $(rev "$n" "refs/heads/$br"), base $(rev "$n" "refs/heads/$p")):" >&2
			jq --arg b "$br" '.branches[] | select(.name == $b)' proj.json >&2
			return 1
		}
	done
}

# projection_digest NAME: what a job that moves nothing must leave as it
# was: each branch row but the trunk's (name, tracked, parent, base, head,
# state). Left out: sync times, and needs_restack and the trunk's head,
# which a job's fetch may rightly refresh (the trunk moved under the stack).
projection_digest()
{
	local trunk
	api GET "/v1/repos/$1" >/dev/null && trunk=$(json .trunk) &&
	api GET "/v1/repos/$1/branches" >/dev/null &&
	json --arg t "$trunk" '.branches[] | select(.name != $t)
		| [.name, .tracked, .parent, .base, .head, .state] | map(tostring) | join(" ")' | sort
}

# --- the oracle -------------------------------------------------------------

# oracle_init NAME: a scratch clone of the remote as it is now, with every
# remote branch as a local branch, where the git CLI rebases.
oracle_init()
{
	local d=$TRASH/oracle/$1
	rm -rf "$d" &&
	git init -q -b oracle-scratch "$d" &&
	git -C "$d" fetch -q "$(remote_of "$1")" '+refs/heads/*:refs/heads/*' &&
	git -C "$d" checkout -q --detach main
}

# ogit NAME ARGS...: git in the oracle clone.
ogit() { local n=$1; shift; git -C "$TRASH/oracle/$n" "$@"; }

# oracle_rebase NAME ONTO BASE BRANCH: `git rebase --onto ONTO BASE BRANCH`
# in the oracle clone; must succeed.
oracle_rebase()
{
	ogit "$1" rebase -q --onto "$2" "$3" "$4" >&2 || {
		echo "oracle: git rebase --onto $2 $3 $4 failed" >&2
		ogit "$1" status >&2
		ogit "$1" rebase --abort >/dev/null 2>&1
		return 1
	}
}

# oracle_restack NAME BRANCH:PARENT...: restack the branches in the given
# order (parents first), each onto its parent's current tip in the oracle,
# with the parent's tip *before* it was restacked as the base (the base
# repoflow recorded when the branch was registered on an unmoved parent).
oracle_restack()
{
	local n=$1 pair br p
	local -A before=()
	shift
	for pair in "$@"; do
		br=${pair%%:*} p=${pair#*:}
		before[$br]=$(ogit "$n" rev-parse "refs/heads/$br") || return 1
	done
	for pair in "$@"; do
		br=${pair%%:*} p=${pair#*:}
		oracle_rebase "$n" "$p" "${before[$p]:-$(ogit "$n" rev-parse "refs/heads/$p")}" "$br" || return 1
	done
	ogit "$n" checkout -q --detach main
}

# commit_seq GIT_DIR PARENT BRANCH: the commits of PARENT..BRANCH oldest
# first, one block each: parent count, tree, author name, email and date,
# the message. Commit ids and committers are left out: they differ.
commit_seq()
{
	git --git-dir="$1" log --reverse --topo-order --date=raw \
		--format='@@parents %P%ntree %T%nauthor %an <%ae> %ad%n%B%n.' "$2..$3" |
		awk '/^@@parents / { print "parents " (NF - 1); next } { print }'
}

# check_branch NAME BRANCH PARENT: on the remote, PARENT's tip is an
# ancestor of BRANCH, and the commits above it are those of the oracle.
check_branch()
{
	local n=$1 br=$2 p=$3 r
	r=$(remote_of "$n")
	git --git-dir="$r" merge-base --is-ancestor "refs/heads/$p" "refs/heads/$br" || {
		echo "remote: $p ($(rev "$n" "refs/heads/$p")) is not an ancestor of $br ($(rev "$n" "refs/heads/$br"))" >&2
		return 1
	}
	commit_seq "$TRASH/oracle/$n/.git" "refs/heads/$p" "refs/heads/$br" >"seq.$br.expect" &&
	commit_seq "$r" "refs/heads/$p" "refs/heads/$br" >"seq.$br.actual" &&
	test -s "seq.$br.expect" || { echo "oracle: $br has no commit above $p" >&2; return 1; }
	test_cmp "seq.$br.expect" "seq.$br.actual" || {
		echo "branch $br above $p differs from git rebase (expected -, got +)" >&2
		return 1
	}
}

# check_stack NAME BRANCH:PARENT...: check_branch for each, and the trunk
# and every other branch the oracle has are where the oracle has them
# when they were not rewritten.
check_stack()
{
	local n=$1 pair
	shift
	test_eq "$(ogit "$n" rev-parse refs/heads/main)" "$(rev "$n" refs/heads/main)" "trunk (never rewritten)" || return 1
	for pair in "$@"; do
		check_branch "$n" "${pair%%:*}" "${pair#*:}" || return 1
	done
}

# expected_refs NAME SNAP JOB_JSON: the refs of snapshot SNAP with each
# branch of the job's result.updated moved to its `new` (sorted as
# ls-remote sorts them).
expected_refs()
{
	local n=$1 snap=$2 job=$3
	jq -r '.result.updated[]? | "\(.branch) \(.new)"' "$job" >"$n.moves" &&
	awk 'NR == FNR { mv["refs/heads/" $1] = $2; next }
		{ split($0, f, "\t"); if (f[2] in mv) print mv[f[2]] "\t" f[2]; else print }' \
		"$n.moves" "$n.$snap.refs"
}

# expect_remote_moved NAME SNAP JOB_JSON BRANCH...: the remote holds
# exactly the refs of SNAP except that BRANCH... (and no other) moved to
# what the job reported, and the job reports each old head correctly and
# as pushed.
expect_remote_moved()
{
	local n=$1 snap=$2 job=$3 br
	shift 3
	jq -r '[.result.updated[]?.branch] | sort | .[]' "$job" >"$n.updated.actual" &&
	printf '%s\n' "$@" | sort >"$n.updated.expect" &&
	test_cmp "$n.updated.expect" "$n.updated.actual" || { echo "result.updated names other branches" >&2; return 1; }
	for br in "$@"; do
		jq -e --arg b "$br" \
			--arg old "$(awk -v r="refs/heads/$br" '$2 == r { print $1 }' "$n.$snap.refs")" '
			[.result.updated[] | select(.branch == $b)] | length == 1 and .[0].old == $old
			and .[0].new != $old and (.[0].new | test("^[0-9a-f]{40}$")) and .[0].pushed == true' \
			"$job" >/dev/null || {
			echo "result.updated entry of $br is wrong:" >&2
			jq --arg b "$br" '.result.updated[] | select(.branch == $b)' "$job" >&2
			return 1
		}
	done
	expected_refs "$n" "$snap" "$job" >"$n.refs.expect" &&
	git ls-remote "$(remote_of "$n")" >"$n.refs.actual" &&
	test_cmp "$n.refs.expect" "$n.refs.actual"
}

# expect_list FILTER WORD...: the job's FILTER (an array of strings) holds
# exactly WORD..., in any order.
expect_list()
{
	local f=$1
	shift
	jq -r "($f // []) | sort | .[]" job.json >list.actual &&
	if [ $# -gt 0 ]; then printf '%s\n' "$@" | sort; fi >list.expect &&
	test_cmp list.expect list.actual || { echo "job $f differs" >&2; return 1; }
}

# wait_retry REPO ID [TIMEOUT_S]: wait until the job's first attempt failed
# and it waits, queued, for its retry; the job is left in retry.json. Fails
# (showing the job) when it finishes first or times out.
wait_retry()
{
	local repo=$1 id=$2 deadline=$((SECONDS + ${3:-60}))
	while :; do
		curl -sS --max-time 10 -H "Authorization: Bearer $ADMIN_TOKEN" \
			"$BASE/v1/repos/$repo/jobs/$id" >retry.json || return 1
		jq -e '.status == "queued" and .attempt >= 1 and .error != null' retry.json >/dev/null && return 0
		case "$(jq -r .status retry.json)" in
		completed | error | canceled)
			echo "job $id finished before any retry:" >&2
			jq . retry.json >&2
			return 1
			;;
		esac
		if [ $SECONDS -ge $deadline ]; then
			echo "job $id was not waiting for a retry after ${3:-60}s:" >&2
			jq . retry.json >&2
			return 1
		fi
		sleep 0.05
	done
}

# person_sync NAME: the person's clone fetches, and each local branch is
# reset to the remote's (main checked out).
person_sync()
{
	local b
	pgit "$1" fetch -q --prune origin &&
	pgit "$1" checkout -q --detach &&
	for b in $(pgit "$1" for-each-ref --format='%(refname:strip=3)' refs/remotes/origin/); do
		[ "$b" = HEAD ] || pgit "$1" branch -q -f "$b" "origin/$b" || return 1
	done &&
	pgit "$1" checkout -q main
}

# start_git_daemon: a git daemon on a free loopback port serving
# $TRASH/remotes (fetch and push, git:// protocol), so that the remote runs
# git's own upload-pack and receive-pack, and with them hooks; a push to a
# plain path through libgit2 runs none. Its global config is
# $TRASH/daemon.gitconfig (write it first, or get an empty one). Sets
# DAEMON_PORT; stopped with the stack.
start_git_daemon()
{
	local i
	mkdir -p "$TRASH/remotes" &&
	[ -f "$TRASH/daemon.gitconfig" ] || : >"$TRASH/daemon.gitconfig"
	for i in 1 2 3 4 5; do
		DAEMON_PORT=$(rf_pick_port) || return 1
		GIT_CONFIG_GLOBAL=$TRASH/daemon.gitconfig git daemon --reuseaddr --listen=127.0.0.1 \
			--port="$DAEMON_PORT" --base-path="$TRASH/remotes" --export-all \
			--enable=receive-pack --informative-errors \
			>>"$TRASH/log/git-daemon.log" 2>&1 </dev/null &
		DAEMON_PID=$!
		_stack_add git-daemon "$DAEMON_PID"
		local deadline=$((SECONDS + 10))
		while rf_alive "$DAEMON_PID" && [ $SECONDS -lt $deadline ]; do
			rf_port_in_use "$DAEMON_PORT" && return 0
			sleep 0.05
		done
		rf_stop "$DAEMON_PID" 2
	done
	echo "git daemon did not start" >&2
	return 1
}

# all_events NAME: every event of the repo, one JSON object a line, paging
# through GET /events.
all_events()
{
	local after=0 last
	while :; do
		api GET "/v1/repos/$1/events?after=$after&limit=100" >/dev/null && expect_status 200 >/dev/null || return 1
		json -c '.events[]' || return 1
		last=$(json '.events[-1].seq // empty')
		[ -n "$last" ] || return 0
		after=$last
	done
}

# --- pushes that race the job (t0170, t0175) ---------------------------------

# install_pre_receive NAME: every push that reaches the remote is logged in
# NAME.pushes ("push" then its "old new ref" lines); when
# $TRASH/push-race.armed exists (it names the repo), the person pushes
# feat-2 from inside the hook, once.
install_pre_receive()
{
	cat >"$(remote_of "$1")/hooks/pre-receive" <<HOOK
#!/bin/sh
lines=\$(cat)
{ echo push; printf '%s\n' "\$lines"; } >>"$TRASH/$1.pushes"
if [ "\$(cat "$TRASH/push-race.armed" 2>/dev/null)" = "$1" ] &&
   mv "$TRASH/push-race.armed" "$TRASH/push-race.fired" 2>/dev/null; then
	env -i PATH="\$PATH" HOME="$TRASH" GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null \\
		git -C "$TRASH/work/$1" push -q origin feat-2 >>"$TRASH/log/race.log" 2>&1 </dev/null
	echo "rc=\$?" >>"$TRASH/push-race.fired"
fi
exit 0
HOOK
	chmod +x "$(remote_of "$1")/hooks/pre-receive"
}

# oracle_with_racer NAME M0 B1 B2: the oracle of the remote as it is now
# plus the person's unpushed feat-2 (the racer's commit), restacked on the
# bases the stack was registered with.
oracle_with_racer()
{
	oracle_init "$1" &&
	ogit "$1" fetch -q "$TRASH/work/$1" "+refs/heads/feat-2:refs/heads/feat-2" &&
	oracle_rebase "$1" main "$2" feat-1 &&
	oracle_rebase "$1" feat-1 "$3" feat-2 &&
	oracle_rebase "$1" feat-2 "$4" feat-3 &&
	ogit "$1" checkout -q --detach main
}

# pushes_since NAME N: the pushes logged after the first N lines.
pushes_since() { tail -n +"$(($2 + 1))" "$TRASH/$1.pushes" 2>/dev/null; }
push_lines() { cat "$TRASH/$1.pushes" 2>/dev/null | wc -l | tr -d ' '; }
