#!/bin/bash
# Paging the event feed with after= across 10,000 events has no gaps and no
# duplicates: while four writers add events (one accepted action is one
# event), a reader pages with after=<last_seq>; afterwards pages of sizes
# that do not divide the API's internal chunk walk the whole feed again.
# Both must give exactly the repo's events as SQLite holds them, in order.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/t/lib.sh"

start_stack --worker=sink

N=10000
WRITERS=4

# db_seqs REPO: the seqs of the repo's events, from SQLite.
db_seqs()
{
	sqlite3 "$DB" "SELECT e.seq FROM events e JOIN repos r ON r.id = e.repo_id
		WHERE r.name = '$1' ORDER BY e.seq"
}

# page_all REPO LIMIT OUT: every event seq of the repo, paging by after=.
page_all()
{
	local after=0 n
	: >"$3"
	while :; do
		api GET "/v1/repos/$1/events?after=$after&limit=$2" >/dev/null &&
		expect_status 200 >/dev/null || return 1
		json ".events[].seq" >>"$3" || return 1
		n=$(json ".events | length")
		after=$(json .last_seq)
		[ "$n" -eq "$2" ] || return 0
	done
}

test_expect_success 'setup: two repos (the other one gets events in between)' '
	make_remote big &&
	make_remote other &&
	add_repo big &&
	add_repo other
'

test_expect_success "$N events written by $WRITERS writers while a reader pages after=: no gap, no duplicate" '
	per=$((N / WRITERS)) &&
	for w in $(seq 1 $WRITERS); do
		for i in $(seq 1 $per); do
			repo=big
			[ $((i % 50)) -eq 0 ] && repo=other
			# One transfer per group; `next` separates them (curl -K).
			[ "$i" -gt 1 ] && printf "next\n"
			printf "url = \"%s/v1/repos/%s/actions\"\n" "$BASE" "$repo"
			printf "header = \"Authorization: Bearer %s\"\n" "$ADMIN_TOKEN"
			printf "header = \"Content-Type: application/json\"\n"
			printf "data-binary = \"{\\\\\"kind\\\\\": \\\\\"rebase_branch\\\\\", \\\\\"branch\\\\\": \\\\\"w%d-%d\\\\\"}\"\n" "$w" "$i"
			printf "output = \"/dev/null\"\n"
			printf "write-out = \"%%{http_code}\\\\n\"\n"
		done >"writer-$w.curl" || return 1
	done &&
	writers=() &&
	for w in $(seq 1 $WRITERS); do
		curl -sS --max-time 300 -K "writer-$w.curl" >"writer-$w.codes" 2>"writer-$w.err" &
		writers+=($!)
	done &&
	after=0 && : >live.seqs && done_writing= &&
	while :; do
		api GET "/v1/repos/big/events?after=$after&limit=1000" >/dev/null &&
		expect_status 200 >/dev/null || return 1
		json ".events[].seq" >>live.seqs &&
		n=$(json ".events | length") &&
		after=$(json .last_seq) || return 1
		if [ -n "$done_writing" ] && [ "$n" -lt 1000 ]; then
			break
		fi
		if [ -z "$done_writing" ]; then
			done_writing=1
			for pid in "${writers[@]}"; do
				rf_alive "$pid" && done_writing=
			done
		fi
	done &&
	for pid in "${writers[@]}"; do
		wait "$pid" || return 1
	done &&
	cat writer-*.codes | sort | uniq -c >codes &&
	test_eq "$N 202" "$(sed "s/^ *//" codes)" "answers" &&
	db_seqs big >all.seqs &&
	test_eq $((N - N / 50 + 1)) "$(wc -l <all.seqs)" "events of big (its actions and repo.updated)" &&
	test_eq "$(wc -l <live.seqs)" "$(sort -un live.seqs | wc -l)" "duplicates" &&
	test_cmp all.seqs live.seqs
'

test_expect_success 'paging the finished feed by 137, 100 and 1000: every event once, in order' '
	db_seqs big >all.seqs &&
	for limit in 137 100 1000; do
		page_all big "$limit" "paged-$limit.seqs" &&
		test_cmp all.seqs "paged-$limit.seqs" || return 1
	done
'

test_expect_success 'last_seq: the last event of a page; after the end it stays where it was' '
	last=$(tail -n 1 all.seqs) &&
	api GET "/v1/repos/big/events?after=$last" &&
	expect_json ".events | length" 0 &&
	expect_json .last_seq "$last" &&
	api GET "/v1/repos/big/events?after=$((last + 100000))" &&
	expect_json .last_seq "$((last + 100000))"
'

test_done
