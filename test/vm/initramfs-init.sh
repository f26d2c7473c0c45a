#!/bin/sh
# /init of the lab initramfs (busybox sh; built by test/vm/setup.sh, run by test/vm/lab-run).
# - insmods the modules in /modules/order (virtio/9p, then virtio_net, rdma_rxe, smc, ...)
# - mounts the host's / read-only (9p tag "hostroot") on /newroot, tmpfs on /run /tmp /root
#   /var/tmp /mnt, the per-node writable share (tag "labout") on /run/lab-share, and the
#   host's / again (unshadowed bind) on /run/hostfs
# - reads /run/lab-share/lab.env, binds host paths that tmpfs hides (repo, cache, out dir)
# - pseudo file systems, hostname, lo + eth0 addresses
# - switch_roots into the host's / and runs the stage-2 init LAB_GUEST_INIT
#   (test/vm/guest-init.sh) with the host's bash.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
fail() {
  echo "lab-initramfs: $*" >/dev/console
  echo "lab-initramfs: $*" >>/newroot/run/lab-share/output 2>/dev/null
  echo o >/proc/sysrq-trigger
  sleep 5
  poweroff -f
}
echo 1 >/proc/sys/kernel/sysrq
while read -r m; do
  insmod "/modules/$m" || echo "lab-initramfs: insmod $m failed" >/dev/console
done </modules/order
R=/newroot
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot $R ||
  fail "cannot mount hostroot"
for d in run tmp root var/tmp mnt; do
  mount -t tmpfs -o mode=0755 tmpfs $R/$d || fail "tmpfs $d"
done
chmod 1777 $R/tmp $R/var/tmp
mkdir -p $R/run/hostfs $R/run/lab-share $R/run/netns $R/run/lock $R/run/lab-bin
# Non-recursive bind: the 9p root without the tmpfs mounts on top.
mount --bind $R $R/run/hostfs || fail "cannot bind hostroot"
mount -t 9p -o trans=virtio,version=9p2000.L,rw,msize=512000,cache=none labout $R/run/lab-share ||
  fail "cannot mount labout"
[ -f $R/run/lab-share/lab.env ] || fail "no lab.env in share"
LAB_GUEST_INIT=
. $R/run/lab-share/lab.env
[ -n "$LAB_GUEST_INIT" ] || fail "LAB_GUEST_INIT unset"
# Host paths hidden by the tmpfs mounts (repo or cache under /tmp, /root, ...): bind them back.
for p in "$LAB_REPO" "$LAB_KERNEL_DIR"; do
  case "$p" in
    /tmp/* | /root/* | /run/* | /var/tmp/* | /mnt/*)
      mkdir -p "$R$p" && mount --bind "$R/run/hostfs$p" "$R$p" || fail "bind $p"
      ;;
  esac
done
# The per-node out dir appears in the guest at the same path as on the host.
mkdir -p "$R$LAB_OUT" 2>/dev/null
mount --bind $R/run/lab-share "$R$LAB_OUT" || fail "bind $LAB_OUT"

mount --move /dev $R/dev 2>/dev/null || mount -t devtmpfs devtmpfs $R/dev
mkdir -p $R/dev/pts $R/dev/shm $R/dev/mqueue
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts $R/dev/pts
mount -t tmpfs -o mode=1777 tmpfs $R/dev/shm
mount -t mqueue mqueue $R/dev/mqueue 2>/dev/null
mount --move /proc $R/proc || mount -t proc proc $R/proc
mount --move /sys $R/sys || mount -t sysfs sysfs $R/sys
mount -t cgroup2 cgroup2 $R/sys/fs/cgroup 2>/dev/null
mount -t debugfs debugfs $R/sys/kernel/debug 2>/dev/null
mount -t bpf bpf $R/sys/fs/bpf 2>/dev/null

# Tools the host may lack (e.g. ping from iputils): busybox applets, appended to PATH.
for t in ping ping6 nc traceroute arping; do
  [ -e $R/usr/bin/$t ] || [ -e $R/bin/$t ] || [ -e $R/usr/sbin/$t ] || ln -s /bin/busybox $R/run/lab-bin/$t
done

hostname "node$LAB_NODE"
ip link set lo up
ip link set eth0 up || fail "no eth0"
ip addr add "$LAB_IP/24" dev eth0 || fail "addr $LAB_IP"

exec switch_root $R /bin/bash "/run/hostfs$LAB_GUEST_INIT"
