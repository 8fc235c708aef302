#!/bin/bash
# tests/systemd/build-deb.sh SRCDIR OUTDIR - build the Debian package of the
# source tree SRCDIR, as a release would (dpkg-buildpackage -us -uc -b),
# and leave repoflow_*.deb in OUTDIR for the tests under systemd.
#
# The build happens in a copy, so the source tree gets none of debhelper's
# files and its parent directory none of dpkg-buildpackage's: from a git
# checkout the copy holds what git would commit (tracked and new files,
# not the ignored build trees); from a release tarball, everything. The
# package's own test run is skipped (nocheck): tools/test runs the suites
# itself, with and without sanitizers.
#
# Needs the build dependencies of debian/control (tools/test installs them).
set -eu
src=$(cd "$1" && pwd)
out=$2
[ -f "$src/debian/control" ] || { echo "build-deb.sh: $src/debian/control is missing" >&2; exit 1; }
mkdir -p "$out"
out=$(cd "$out" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/repoflow-deb.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/repoflow"
if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	(cd "$src" && git ls-files -z -c -o --exclude-standard | while IFS= read -r -d '' f; do
		[ -e "$f" ] && printf '%s\0' "$f"
	done) | (cd "$src" && tar --null -T - -cf -) | tar -C "$tmp/repoflow" -xf -
else
	tar -C "$src" --exclude='./build*' --exclude=./deb --exclude=./autom4te.cache -cf - . |
		tar -C "$tmp/repoflow" -xf -
fi
(
	cd "$tmp/repoflow" &&
	DEB_BUILD_OPTIONS="nocheck parallel=$(nproc 2>/dev/null || echo 2)" \
		dpkg-buildpackage -us -uc -b
) >"$out/build-deb.log" 2>&1 || {
	tail -n 60 "$out/build-deb.log" >&2
	echo "build-deb.sh: dpkg-buildpackage failed; the whole log is $out/build-deb.log" >&2
	exit 1
}
rm -f "$out"/repoflow_*.deb
mv "$tmp"/repoflow_*.deb "$out/"
ls "$out"/repoflow_*.deb
