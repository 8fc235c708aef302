#!/bin/bash
# tests/systemd/boot.sh ROOT SHARE - becomes PID 1 of a private PID, mount
# and cgroup namespace (lib.sh starts it under `unshare`) and boots a real
# systemd there, on a throwaway overlay of `/`.
#
# The recipe is the one the design notes' TESTING.md verified. The overlay
# is what makes it safe: everything the booted system writes (systemd's
# boot-time clean-up of /tmp, dpkg's database, the package's users and
# files) lands in a tmpfs at ROOT and vanishes at power-off; the host's
# files are never touched. SHARE, a directory of the test's, is
# bind-mounted at /srv/rftest: the one place both sides see.
set -e
T=$1
SHARE=$2
[ -d "$T" ] && [ -d "$SHARE" ] || { echo "usage: boot.sh ROOT SHARE" >&2; exit 2; }

mount -t tmpfs -o mode=0755 tmpfs "$T"
mkdir -p "$T/upper" "$T/work" "$T/root"
mount -t overlay overlay -o lowerdir=/,upperdir="$T/upper",workdir="$T/work" "$T/root"
R=$T/root
mount -t proc proc "$R/proc"
mount --rbind /dev "$R/dev"
mount -t sysfs sysfs "$R/sys"
mount -t cgroup2 cgroup2 "$R/sys/fs/cgroup"
mount -t tmpfs tmpfs "$R/run"
mount -t tmpfs tmpfs "$R/tmp"
mkdir -p "$R/srv/rftest"
mount --bind "$SHARE" "$R/srv/rftest"
cd "$R"
mkdir -p oldroot
pivot_root . oldroot
umount -l /oldroot
rmdir /oldroot 2>/dev/null || true
exec env -i container=repoflow-test PATH=/usr/sbin:/usr/bin:/sbin:/bin \
	/lib/systemd/systemd --system --unit=multi-user.target
