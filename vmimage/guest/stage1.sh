#!/usr/bin/busybox sh
# Stage 1 of an image whose root is a read-only erofs disk: mount that disk
# (virtio serial dockyard-root) under a tmpfs overlay, so the guest can write
# anywhere and every boot starts from the image's pristine root, then hand
# over to busybox init on the real root. Only pages the guest reads leave the
# disk, where an all-in-initramfs image copies everything into RAM at boot.
export PATH=/usr/bin
fail() {
	echo "dockyard-fail init $1" >/dev/console
	poweroff -f
}
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
while read -r ko; do insmod "$ko" || fail "insmod $ko failed"; done </modules
root=""
for s in /sys/block/vd*/serial; do
	[ -e "$s" ] && [ "$(cat "$s")" = dockyard-root ] && root=/dev/$(basename "$(dirname "$s")")
done
[ -n "$root" ] || fail "no root disk: attach rootfs.erofs read-only with serial=dockyard-root"
mkdir -p /lower /rw /newroot
mount -t erofs -o ro "$root" /lower || fail "cannot mount $root as erofs"
mount -t tmpfs -o mode=0755 rw /rw
mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work root /newroot ||
	fail "cannot mount the overlay root"
umount /proc /sys /dev
exec switch_root /newroot /usr/sbin/init
