#!/bin/sh
# The guest's boot sequence, run once by busybox init (PID 1, /etc/inittab sysinit).
# busybox init reaps orphans (the engine's shims outlive their parents) and turns
# `poweroff` into: shutdown.sh, TERM/KILL to everything, power off.
# Debian's busybox runs its own applets before PATH: real programs are called by full path.
#
# Stage markers go to the serial console in the guest contract's exact form:
#   dockyard-stage <name> <seconds since boot>   /   dockyard-fail <stage> <message>
# The host times its boot stages by them, so a stage is printed when it is done.
export PATH=/usr/sbin:/usr/bin
export HOME=/root
LIB=/usr/lib/dockyard
RUN=/run/dockyard

stage() {
	read -r up _ </proc/uptime
	echo "dockyard-stage $1 $up" >/dev/console
}

fail() {
	echo "dockyard-fail $1 $2" >/dev/console
	exit 1 # the EXIT trap tells the engine launcher to give up
}

# insmod every module file listed (in dependency order); built-ins were left out at build time.
load_modules() {
	while read -r ko; do
		insmod "$ko" 2>/dev/null || [ -d "/sys/module/$(basename "$ko" .ko | tr - _)" ] ||
			echo "dockyard: insmod $ko failed" >/dev/console
	done <"$1"
}

mounts() {
	mount -t proc -o nosuid,nodev,noexec proc /proc
	mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
	mount -t devtmpfs -o nosuid,mode=0755 devtmpfs /dev 2>/dev/null
	mkdir -p /dev/pts /dev/shm
	mount -t devpts -o nosuid,noexec,gid=5,mode=0620,ptmxmode=0666 devpts /dev/pts
	mount -t tmpfs -o nosuid,nodev shm /dev/shm
	mount -t tmpfs -o nosuid,nodev,mode=0755 run /run
	mount -t tmpfs -o nosuid,nodev,mode=1777 tmp /tmp
	mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
	mkdir -p "$RUN" /run/sshd /var/log
	chmod 0700 "$RUN"
	ln -sf /proc/self/fd /dev/fd
}

network() {
	ip link set lo up
	ip link set eth0 up || fail network "no eth0: is a virtio-net device attached?"
	ip addr add 10.0.2.15/24 dev eth0
	ip route add default via 10.0.2.2
	echo "nameserver 10.0.2.3" >/etc/resolv.conf
}

# sshd daemonizes before it binds; the stage is its listening socket in /proc/net/tcp.
sshd_up() {
	/usr/sbin/sshd -e || fail sshd "sshd did not start (see the console above)"
	i=0
	while ! grep -q '^ *[0-9]*: 00000000:0016 00000000:0000 0A' /proc/net/tcp; do
		i=$((i + 1))
		[ $i -gt 2000 ] && fail sshd "sshd is not listening on port 22"
		usleep 5000
	done
}

# The boot checkpoint (launcher.py, wakeup.py): when the seed says the host will wake the
# guest (QEMU offers the control port), park here until the engine process has applied the
# host's wake-up line. The host may save the guest while it is parked and start later from
# that state, so nothing before this point may touch the data disk or the shares, and the
# `sshd` stage (the host logs in once it sees it) comes after. Otherwise (libvirt) the boot
# goes straight on.
checkpoint() {
	if [ ! -e "$RUN/checkpoint" ]; then
		: >"$RUN/awake"
		return
	fi
	: >"$RUN/parked"
	pid=$(cat "$RUN/engine.pid")
	while [ ! -e "$RUN/awake" ]; do
		kill -0 "$pid" 2>/dev/null || fail checkpoint "the engine process exited before the wake-up"
		usleep 10000
	done
}

# The data disk is the virtio disk whose serial the seed names. A disk with no
# filesystem (all zeros at the start) gets ext4; any other content that is not
# ext4 is left alone and fails the stage, so nothing on it is lost.
data_disk() {
	serial=$(cat "$RUN/data-serial")
	dev=""
	for s in /sys/block/vd*/serial; do
		[ -e "$s" ] && [ "$(cat "$s")" = "$serial" ] && dev=/dev/$(basename "$(dirname "$s")")
	done
	[ -n "$dev" ] || fail data "no disk with serial $serial: attach one with serial=$serial"
	# A restored guest may hold the disk's first blocks from before it was saved (the
	# kernel's partition scan); read the disk as it is now.
	blockdev --flushbufs "$dev" 2>/dev/null
	magic=$(dd if="$dev" bs=1 skip=1080 count=2 2>/dev/null | od -An -tx1 | tr -d ' \n')
	if [ "$magic" != "53ef" ]; then
		used=$(dd if="$dev" bs=65536 count=16 2>/dev/null | tr -d '\000' | wc -c)
		[ "$used" = 0 ] || fail data "$dev holds data that is not ext4; not formatting it"
		/usr/sbin/mke2fs -q -t ext4 -L dockyard-data -E lazy_itable_init=1,lazy_journal_init=1 "$dev" ||
			fail data "mke2fs $dev failed"
	fi
	mkdir -p /var/lib/dockyard
	mount -t ext4 -o noatime "$dev" /var/lib/dockyard || fail data "cannot mount $dev"
}

# The engine process (launcher.py) starts right after the early modules: it applies
# the seed, then imports the engine while the rest of the boot goes on, and prints the
# `engine` stage itself once /_ping answers.
start_engine() {
	PYTHONPATH=/opt/dockyard setsid python3 "$LIB/launcher.py" \
		>>/var/log/engine.log 2>&1 </dev/null &
	echo $! >"$RUN/engine.pid"
}

# Wait for a signal file (seed.done, disk.ready ...); a file named in $2 means failure.
await() {
	i=0
	while [ ! -e "$RUN/$1" ]; do
		[ -n "$2" ] && [ -e "$RUN/$2" ] && return 1
		i=$((i + 1))
		[ $i -gt 12000 ] && return 1
		usleep 10000
	done
}

# QMP system_powerdown presses the ACPI power button: any event from its input device.
power_button() {
	for ev in /sys/class/input/event*; do
		if grep -q "Power Button" "$ev/device/name" 2>/dev/null; then
			dd if="/dev/input/$(basename "$ev")" bs=24 count=1 of=/dev/null 2>/dev/null && poweroff
			return
		fi
	done
	echo "dockyard: no ACPI power button; system_powerdown will not work" >/dev/console
}

trap ': >"$RUN/boot.failed"' EXIT
mounts
stage init
load_modules /etc/dockyard/modules.early
stage modules
{
	load_modules /etc/dockyard/modules.disk
	: >"$RUN/disk.ready"
	load_modules /etc/dockyard/modules.late
	: >"$RUN/late.ready"
	power_button
} &
start_engine
await seed.done seed.error || fail seed "$(cat "$RUN/seed.error" 2>/dev/null || echo "no seed applied")"
stage seed
network
stage network
sshd_up
await disk.ready || fail data "the ext4 modules did not load"
await late.ready || fail data "the late modules did not load"
checkpoint
stage sshd
data_disk
[ -s "$RUN/shares.sh" ] && . "$RUN/shares.sh"
: >"$RUN/data.ready"
stage data
trap - EXIT
