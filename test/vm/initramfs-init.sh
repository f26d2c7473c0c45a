#!/bin/sh
# /init of the lab initramfs (busybox). Loads virtio + 9p, mounts the host's / read-only
# (9p tag "hostroot"), tmpfs on /tmp /run /root, the writable per-node share (tag "labout")
# on /run/lab-share, the host's / again (unshadowed) on /run/hostfs, then switch_roots into the host's / and runs the stage-2 init named by
# LAB_GUEST_INIT in /run/lab-share/lab.env (test/vm/guest-init.sh) with the host's bash.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
fail() {
  echo "lab-initramfs: $*" >/dev/console
  echo o >/proc/sysrq-trigger
  sleep 5
  poweroff -f
}
while read -r m; do
  insmod "/modules/$m" || echo "lab-initramfs: insmod $m failed" >/dev/console
done </modules/order
R=/newroot
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot $R ||
  fail "cannot mount hostroot"
for d in run tmp root; do
  mount -t tmpfs -o mode=0755 tmpfs $R/$d || fail "tmpfs $d"
done
chmod 1777 $R/tmp
# The unshadowed host root, for paths that the tmpfs mounts hide (e.g. a repo under /tmp or /root).
mkdir -p $R/run/hostfs
mount --bind $R $R/run/hostfs || fail "cannot bind hostroot"
mkdir -p $R/run/lab-share
mount -t 9p -o trans=virtio,version=9p2000.L,rw,msize=512000,cache=none labout $R/run/lab-share ||
  fail "cannot mount labout"
[ -f $R/run/lab-share/lab.env ] || fail "no lab.env in share"
LAB_GUEST_INIT=
. $R/run/lab-share/lab.env
[ -n "$LAB_GUEST_INIT" ] || fail "LAB_GUEST_INIT unset"
mount --move /dev $R/dev 2>/dev/null || mount -t devtmpfs devtmpfs $R/dev
umount /proc /sys 2>/dev/null
exec switch_root $R /bin/bash "/run/hostfs$LAB_GUEST_INIT"
