#!/bin/sh
# Run by busybox init (inittab shutdown) before it kills everything and powers off.
# Leaves the data disk clean: the engine stops first (it saves its state on TERM),
# then every other process, then the disk is unmounted (read-only if it is still busy).
export PATH=/usr/sbin:/usr/bin
pid=$(cat /run/dockyard/engine.pid 2>/dev/null)
if [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null; then
	i=0
	while kill -0 "$pid" 2>/dev/null && [ $i -lt 200 ]; do
		usleep 50000
		i=$((i + 1))
	done
fi
kill -TERM -1 2>/dev/null
usleep 300000
kill -KILL -1 2>/dev/null
sync
# container mounts under the engine root go first, deepest first
grep ' /var/lib/dockyard/' /proc/mounts | cut -d' ' -f2 | sort -r | while read -r m; do
	umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
done
umount /var/lib/dockyard 2>/dev/null || mount -o remount,ro /var/lib/dockyard 2>/dev/null
sync
echo "dockyard-stage shutdown $(cut -d' ' -f1 /proc/uptime)" >/dev/console
