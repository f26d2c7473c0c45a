#!/bin/bash
# Stage-2 init of a lab VM (PID 1 after switch_root into the host's read-only /).
# Reads /run/lab-share/lab.env (written by test/vm/lab-run), prepares the node (mounts,
# modules, eth0, rxe0), runs the user's script as root and powers off.
# Never exit: PID 1 exiting panics the kernel.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
SHARE=/run/lab-share
# shellcheck disable=SC1091
. "$SHARE/lab.env"

T0=$(cut -d' ' -f1 /proc/uptime)
say() { echo "[lab-init $(cut -d' ' -f1 /proc/uptime)] $*" >/dev/console; }

finish() {
  local rc=$1
  echo "$rc" >"$SHARE/exit-code.tmp" && mv "$SHARE/exit-code.tmp" "$SHARE/exit-code"
  say "script exit code $rc; powering off"
  sync
  echo o >/proc/sysrq-trigger
  sleep 10
  /bin/busybox poweroff -f
  while :; do sleep 60; done
}

setup_fail() {
  say "setup failed: $*"
  echo "lab-init: setup failed: $*" >>"$SHARE/output"
  dmesg | tail -n 40 >"$SHARE/dmesg-tail" 2>/dev/null
  finish 125
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mountpoint -q /dev || mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm /dev/mqueue
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t mqueue mqueue /dev/mqueue 2>/dev/null
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
# /var/tmp and /var/lib are read-only on the host view; give them scratch space.
for d in /var/tmp /mnt; do mount -t tmpfs -o mode=1777 tmpfs "$d" 2>/dev/null; done
mkdir -p /run/netns /run/lock /tmp /root
chmod 1777 /tmp
hostname "node$LAB_NODE"
echo 1 >/proc/sys/kernel/sysrq

# Host paths hidden by the tmpfs mounts (repo or cache under /tmp, /root, ...): bind them back.
for p in "$LAB_REPO" "$LAB_KERNEL_DIR"; do
  case "$p" in
    /tmp/* | /root/* | /run/* | /var/tmp/* | /mnt/*)
      mkdir -p "$p" && mount --bind "/run/hostfs$p" "$p" || setup_fail "bind $p"
      ;;
  esac
done

# The per-node out dir appears in the guest at the same path as on the host.
mkdir -p "$LAB_OUT" 2>/dev/null
mount --bind "$SHARE" "$LAB_OUT" || setup_fail "bind $LAB_OUT"

MP=(modprobe -d "$LAB_KERNEL_DIR" -S "$LAB_KVER")
for m in virtio_net crc32_generic rdma_rxe ib_uverbs rdma_ucm smc smc_diag $LAB_EXTRA_MODULES; do
  "${MP[@]}" "$m" || setup_fail "modprobe $m"
done
say "modules loaded"

ip link set lo up
ip link set eth0 up || setup_fail "no eth0"
ip addr add "$LAB_IP/24" dev eth0 || setup_fail "addr $LAB_IP"
rdma link add "$LAB_RXE" type rxe netdev eth0 || setup_fail "rdma link add"
state=/sys/class/infiniband/$LAB_RXE/ports/1/state
for _ in $(seq 1 200); do
  grep -q ACTIVE "$state" 2>/dev/null && break
  sleep 0.05
done
grep -q ACTIVE "$state" 2>/dev/null || setup_fail "$LAB_RXE port not ACTIVE: $(cat "$state" 2>&1)"
T1=$(cut -d' ' -f1 /proc/uptime)
echo "$T1" >"$SHARE/ready-uptime"
say "node$LAB_NODE ready ($LAB_IP, $LAB_RXE ACTIVE) stage2 ${T0}s -> ${T1}s"

export HOME=/root TMPDIR=/tmp USER=root LOGNAME=root SHELL=/bin/bash TERM=dumb LANG=C.UTF-8
export PATH="$LAB_REPO/node_modules/.bin:$PATH"
export LAB_NODE LAB_IP LAB_PEER_IP LAB_RXE LAB_NETDEV LAB_OUT LAB_REPO
cd "$LAB_REPO" || cd /
set -o pipefail
timeout -k 5 "${LAB_SCRIPT_TIMEOUT:-86400}" bash "$SHARE/script" </dev/null 2>&1 |
  tee -a "$LAB_OUT/output" >/dev/console
rc=${PIPESTATUS[0]}
finish "$rc"
