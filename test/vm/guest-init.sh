#!/bin/bash
# Stage-2 init of a lab VM: PID 1 after the initramfs (test/vm/initramfs-init.sh) switch_rooted
# into the host's read-only / with mounts, modules, hostname and eth0 address already set up.
# Reads /run/lab-share/lab.env (written by test/vm/lab-run), adds rxe0 on eth0, waits for the
# port to be ACTIVE, runs the user's script as root and powers off.
# Never exit: PID 1 exiting panics the kernel.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
SHARE=/run/lab-share
# shellcheck disable=SC1091
. "$SHARE/lab.env"

read -r T0 _ </proc/uptime
say() {
  local up _
  read -r up _ </proc/uptime
  echo "[lab-init $up] $*" >/dev/console
}

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

# Modules the initramfs did not load (LAB_EXTRA_MODULES, or an initramfs older than the list).
MP=(modprobe -d "$LAB_KERNEL_DIR" -S "$LAB_KVER")
for m in virtio_net crc32_generic rdma_rxe ib_uverbs rdma_ucm smc smc_diag $LAB_EXTRA_MODULES; do
  [[ -d /sys/module/${m//-/_} ]] && continue
  "${MP[@]}" "$m" || setup_fail "modprobe $m"
  [[ -n "${LAB_DEBUG:-}" ]] && say "loaded $m"
done

# add_rxe DEV NETDEV: an rxe device on NETDEV, its port 1 ACTIVE within 10 s, or setup fails.
add_rxe() {
  local state=/sys/class/infiniband/$1/ports/1/state
  rdma link add "$1" type rxe netdev "$2" || setup_fail "rdma link add $1"
  for _ in $(seq 1 200); do
    [[ "$(<"$state")" == *ACTIVE* ]] 2>/dev/null && return 0
    sleep 0.05
  done
  setup_fail "$1 port not ACTIVE: $(cat "$state" 2>&1)"
}

add_rxe "$LAB_RXE" eth0
# LAB_LINKS=2: the second link's NIC (found by its MAC prefix), its address and rxe device.
if [[ -n "${LAB_RXE2:-}" ]]; then
  LAB_NETDEV2=""
  for a in /sys/class/net/*/address; do
    [[ "$(<"$a")" == 52:54:00:79:* ]] && LAB_NETDEV2=$(basename "$(dirname "$a")")
  done
  [[ -n "$LAB_NETDEV2" ]] || setup_fail "no NIC with MAC 52:54:00:79:* for the second link"
  # eth0's subnet without its prefix route (eth0 keeps the subnet); the peer's second address by
  # a host route, so rxe1's RoCE v2 packets leave through this NIC and reach the peer's rxe1.
  ip link set "$LAB_NETDEV2" up && ip addr add "$LAB_IP2/24" dev "$LAB_NETDEV2" noprefixroute &&
    ip route add "$LAB_PEER_IP2/32" dev "$LAB_NETDEV2" src "$LAB_IP2" || setup_fail "$LAB_NETDEV2 ($LAB_IP2)"
  add_rxe "$LAB_RXE2" "$LAB_NETDEV2"
fi
# lab-run --hostnet: a second NIC on a host bridge (the host is $LAB_HOSTNET_HOST_IP).
if [[ -n "${LAB_HOSTNET_IP:-}" ]]; then
  ip link set eth1 up && ip addr add "$LAB_HOSTNET_IP/24" dev eth1 || setup_fail "eth1 ($LAB_HOSTNET_IP)"
fi
read -r T1 _ </proc/uptime
echo "$T1" >"$SHARE/ready-uptime"
say "node$LAB_NODE ready ($LAB_IP, $LAB_RXE ACTIVE); stage 2 ran ${T0}s -> ${T1}s of guest uptime"

export HOME=/root TMPDIR=/tmp USER=root LOGNAME=root SHELL=/bin/bash TERM=dumb LANG=C.UTF-8
export PATH="$LAB_REPO/node_modules/.bin:$PATH:/run/lab-bin"
# Helper functions (lab_retry, lab_wait_tcp, ...) in every bash the script starts.
export BASH_ENV="$LAB_REPO/test/vm/guest-lib.sh"
export LAB_NODE LAB_IP LAB_PEER_IP LAB_RXE LAB_NETDEV LAB_OUT LAB_REPO
[[ -n "${LAB_HOSTNET_IP:-}" ]] && export LAB_HOSTNET_IP LAB_HOSTNET_HOST_IP
[[ -n "${LAB_RXE2:-}" ]] && export LAB_RXE2 LAB_NETDEV2 LAB_IP2 LAB_PEER_IP2
cd "$LAB_REPO" || cd /
set -o pipefail
bash "$SHARE/script" </dev/null 2>&1 | tee -a "$LAB_OUT/output" >/dev/console
rc=${PIPESTATUS[0]}
finish "$rc"
