# tools/lib/deps.sh - the Debian packages repoflow needs to build, test and
# run, and the one function that installs the missing ones. Sourced by
# tools/run and tools/test (bash); it defines functions and changes nothing
# by itself.
#
# REPOFLOW_NO_APT=1 skips installing (a machine prepared some other way).

# Build, run and test dependencies, Debian 12 package names.
REPOFLOW_DEBS=(
	build-essential autoconf automake pkg-config
	libfcgi-dev libsqlite3-dev libjson-c-dev libsystemd-dev libgit2-dev libssl-dev
	nginx libnginx-mod-nchan git curl jq sqlite3 wrk
	chromium
	debhelper dpkg-dev fakeroot lintian scdoc bash-completion
)

# Print the packages of "$@" that are not installed, one a line.
repoflow_missing_debs()
{
	local p status
	for p in "$@"; do
		status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) || status=
		[ "$status" = installed ] || printf '%s\n' "$p"
	done
}

# Install whatever of REPOFLOW_DEBS (plus any extra names given) is
# missing. apt-get update runs only when something is missing.
repoflow_install_deps()
{
	local missing
	if [ "${REPOFLOW_NO_APT:-}" = 1 ]; then
		return 0
	fi
	if ! command -v dpkg-query >/dev/null 2>&1; then
		echo "repoflow: not a Debian system; install these by hand: ${REPOFLOW_DEBS[*]}" >&2
		return 1
	fi
	mapfile -t missing < <(repoflow_missing_debs "${REPOFLOW_DEBS[@]}" "$@")
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" != 0 ]; then
		echo "repoflow: missing packages (run as root, or install them): ${missing[*]}" >&2
		return 1
	fi
	echo "repoflow: installing ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >&2 &&
	apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
}
