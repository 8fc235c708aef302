# tests/lib-assert.sh - the assertions shared by the end-to-end harness
# (tests/t/lib.sh) and the systemd harness (tests/systemd/lib.sh): quiet on
# success, a sentence on stderr on failure. The HTTP ones read the last
# response that the harness's api() recorded in $RESP_STATUS, $RESP_HEADERS
# and $RESP_BODY. Sourced by bash; defines functions only.

# test_cmp EXPECTED ACTUAL: files equal.
test_cmp() { diff -u "$@" >&2; }

# test_eq EXPECTED ACTUAL [WHAT]: two strings equal.
test_eq()
{
	[ "$1" = "$2" ] && return 0
	echo "${3:-value}: expected '$1', got '$2'" >&2
	return 1
}

# test_ge / test_gt / test_le A B [WHAT]: integer comparisons.
test_ge() { [ "$1" -ge "$2" ] && return 0; echo "${3:-value}: $1 is not >= $2" >&2; return 1; }
test_gt() { [ "$1" -gt "$2" ] && return 0; echo "${3:-value}: $1 is not > $2" >&2; return 1; }
test_le() { [ "$1" -le "$2" ] && return 0; echo "${3:-value}: $1 is not <= $2" >&2; return 1; }

# test_match REGEX STRING [WHAT]: an extended regex matches.
test_match()
{
	printf '%s' "$2" | grep -E -q -- "$1" && return 0
	echo "${3:-value}: '$2' does not match /$1/" >&2
	return 1
}

# header NAME: the value of the last response's header NAME (case-insensitive).
header()
{
	awk -v n="$(printf '%s' "$1" | tr 'A-Z' 'a-z')" '
		{ sub(/\r$/, "") }
		/^HTTP\// { v = ""; found = 0; next }
		{ i = index($0, ":"); if (i && tolower(substr($0, 1, i - 1)) == n) { v = substr($0, i + 1); sub(/^[ \t]+/, "", v); found = 1 } }
		END { if (found) print v; exit !found }' "$RESP_HEADERS"
}

# json FILTER: jq -r FILTER on the last response body.
json() { jq -r "$@" <"$RESP_BODY"; }

# expect_status CODE: the last response had status CODE (prints it if not).
expect_status()
{
	[ "$RESP_STATUS" = "$1" ] && return 0
	{
		echo "expected HTTP $1, got '${RESP_STATUS}'"
		cat "$RESP_HEADERS"
		head -c 2000 "$RESP_BODY"
		echo
	} >&2
	return 1
}

# expect_json FILTER EXPECTED: jq -r FILTER of the body prints EXPECTED.
expect_json()
{
	local got
	got=$(jq -r "$1" <"$RESP_BODY" 2>&1) || {
		echo "body is not JSON (jq: $got):" >&2
		head -c 2000 "$RESP_BODY" >&2
		return 1
	}
	test_eq "$2" "$got" "$1"
}

# expect_header NAME REGEX: the response header NAME matches REGEX.
expect_header()
{
	local v
	v=$(header "$1") || { echo "no $1 header in:" >&2; cat "$RESP_HEADERS" >&2; return 1; }
	test_match "$2" "$v" "header $1"
}
