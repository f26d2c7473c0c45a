#!/usr/bin/env bash
# VM side of bench/sidecar/run.sh (both nodes). Pods are network namespaces as in `npm run lab`
# (test/lab/node.sh: veth eth0 with ifindex 2, /32 pod addresses, sidecars as root with
# `intercept install` + `run`, applications as uid 65534).
#
#   node0: web    10.244.0.10 tenant blue, sidecar   smc-perf server :5201
#          legacy 10.244.0.11 no sidecar             smc-perf server :5201
#          root netns: smc-perf server :5203 (TCP), LD_PRELOAD=smc-preload.so :5202 (kernel SMC-R),
#          the addon's RDMA WRITE bw (passive), control port :15998 (cpu.sh / done)
#   node1: client 10.244.1.10 tenant blue, sidecar -> web     sidecars, SMC-R
#          batch  10.244.1.11 tenant red,  sidecar -> web     sidecars, fallback tenant-not-allowed
#          plain  10.244.1.12 no sidecar          -> legacy  direct TCP pod to pod
#          guest  10.244.1.13 tenant red,  sidecar -> web     intercept.redirect=peers: not redirected
# web and guest run `intercept.redirect=peers` with `intercept sync`: guest does not redirect its
# connections to web (another tenant), web does not redirect guest's (kernelPeers keeps web's
# outbound whole).
#          root netns -> 10.77.0.1 TCP and kernel SMC-R node to node; addon RDMA WRITE (active)
# node1 drives and prints one `BENCH {json}` line per measurement.
set -u
: "${LAB_NODE:?}" "${LAB_RXE:?}" "${LAB_PEER_IP:?}" "${BENCH_HERE:?}"
cd "$LAB_REPO"
IN=$LAB_OUT/input
OUT=$LAB_OUT
mkdir -p "$OUT/logs" "$OUT/metrics"
export SMC_VERBS_ADDON="$BENCH_ADDON"
SIDECAR=(node "$LAB_REPO/dist/sidecar/src/main.js")
T0=$(date +%s.%N)
progress() { printf 'progress %5.1fs %s\n' "$(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{print b-a}')" "$*"; }
in_pod() { local p=$1; shift; ip netns exec "$p" "$@"; }
as_app() { local p=$1; shift; ip netns exec "$p" setpriv --reuid 65534 --regid 65534 --clear-groups "$@"; }

. "$LAB_REPO/test/vm/kernel-smc/lib.sh"
B="$(ksmc_dir)" || { echo "kernel-smc tools not found"; exit 1; }
. "$LAB_REPO/test/vm/smc-option/lib.sh"
O="$(smco_dir)" || { echo "smc-option tools not found"; exit 1; }
# A copy the application uid can execute (the host's cache may sit under a 0700 home).
mkdir -p /tmp/bench && cp "$B/smc-perf" "$B/smc-preload.so" /tmp/bench/ && chmod 755 /tmp/bench /tmp/bench/*
PERF=/tmp/bench/smc-perf
PRE=/tmp/bench/smc-preload.so
"$B/smc-setup" --lab >/dev/null || { echo "smc-setup failed"; exit 1; }
# node1's kernel SMC-R clients also reach web's sidecar: they offer the blue tenant's User EID too.
BLUE_UEID=$(node -e "import('$LAB_REPO/dist/sidecar/src/eid/tenant.js').then((m) => console.log(m.tenantUeid({ cluster: 'cluster.local', tenant: 'blue' })))")
[[ $LAB_NODE == 1 ]] && { "$B/smc-setup" --ueid "$BLUE_UEID" >/dev/null || { echo "smc-setup --ueid failed"; exit 1; }; }

# From test/lab/node.sh.
mkpod() {
  local p=$1 ip=$2
  ip netns add "$p"
  ip -n "$p" link set lo up
  in_pod "$p" ip link add eth0 index 2 type veth peer name "v-$p" netns 1
  ip addr add 169.254.1.1/32 dev "v-$p"
  sysctl -qw "net.ipv4.conf.v-$p.proxy_arp=1"
  ip link set "v-$p" up
  ip route add "$ip/32" dev "v-$p"
  ip -n "$p" addr add "$ip/32" dev eth0
  ip -n "$p" link set eth0 up
  ip -n "$p" route add 169.254.1.1 dev eth0
  ip -n "$p" route add default via 169.254.1.1 dev eth0
}
start_sidecar() {
  local p=$1 envs=()
  mapfile -t envs <"$IN/sidecar-$p.env"
  envs+=("BENCH_POD=$p" "SMC_DIRECTORY=$IN/directory" "SMC_SIDECAR_UID=0" "SMC_RDMA_DEVICE=$LAB_RXE"
    "SMC_GID_INDEX=1" "SMC_RDMA_DATA_PATH=$BENCH_DATA_PATH" "SMC_LOG_LEVEL=info" "SMC_RMB_SIZE=$BENCH_RMB_SIZE")
  in_pod "$p" env "${envs[@]}" timeout 400 "${SIDECAR[@]}" intercept install >"$OUT/logs/intercept-$p.log" 2>&1
  if printf '%s\n' "${envs[@]}" | grep -qx 'SMC_INTERCEPT_REDIRECT=peers'; then
    in_pod "$p" env "${envs[@]}" timeout 400 "${SIDECAR[@]}" intercept sync >"$OUT/logs/sync-$p.log" 2>&1 </dev/null &
  fi
  if [[ $p == web ]]; then
    # web also serves kernel SMC-R clients: the sock_ops program echoes the SMC option on the
    # SYN-ACKs of its sidecar's inbound listener (a cgroup of its own, local port 15106).
    mkdir -p /sys/fs/cgroup/bench-web
    "$O/smc-option-loader" attach /sys/fs/cgroup/bench-web --lport 15106 >"$OUT/logs/bpf-attach.json"
    smco_in_cgroup /sys/fs/cgroup/bench-web ip netns exec "$p" env "${envs[@]}" timeout 400 "${SIDECAR[@]}" run \
      >"$OUT/logs/sidecar-$p.log" 2>&1 </dev/null &
    return
  fi
  in_pod "$p" env "${envs[@]}" timeout 400 "${SIDECAR[@]}" run >"$OUT/logs/sidecar-$p.log" 2>&1 </dev/null &
}
scrape() { in_pod "$1" curl -sf --max-time 10 http://127.0.0.1:15190/metrics | grep -E '^smc_(connections|bytes)' || true; }

sysctl -qw net.ipv4.ip_forward=1
if [[ $LAB_NODE == 0 ]]; then
  mkpod web 10.244.0.10
  mkpod legacy 10.244.0.11
  ip route add 10.244.1.10/32 via "$LAB_PEER_IP"
  ip route add 10.244.1.11/32 via "$LAB_PEER_IP"
  ip route add 10.244.1.12/32 via "$LAB_PEER_IP"
  ip route add 10.244.1.13/32 via "$LAB_PEER_IP"
  for p in web legacy; do
    as_app "$p" timeout 400 "$PERF" server -p 5201 >"$OUT/logs/perf-$p.log" 2>&1 </dev/null &
  done
  timeout 400 "$PERF" server -p 5203 >"$OUT/logs/perf-tcp.log" 2>&1 </dev/null &
  LD_PRELOAD="$PRE" timeout 400 "$PERF" server -p 5202 >"$OUT/logs/perf-smc.log" 2>&1 </dev/null &
  if [[ -n "${BENCH_RDMA_JS:-}" ]]; then
    LAB_NODE=1 timeout 400 node "$BENCH_RDMA_JS" bw 18800 "$BENCH_RDMA_ITERS" 65536 128 \
      >"$OUT/logs/rdma-bw.log" 2>&1 </dev/null &
  fi
  start_sidecar web
  lab_retry 120 in_pod web curl -sf http://127.0.0.1:15121/healthz/ready >/dev/null
  lab_retry 60 grep -q 'redirect sets applied' "$OUT/logs/sync-web.log"
  progress "servers and sidecar ready"
  timeout 380 socat -t 60 TCP-LISTEN:15998,bind="$LAB_IP",reuseaddr,fork SYSTEM:"bash $BENCH_HERE/ctl.sh" \
    >"$OUT/logs/ctl.log" 2>&1 </dev/null &
  lab_wait_file /tmp/bench-done 380
  scrape web >"$OUT/metrics/web.txt"
  progress "done"
  exit 0
fi

mkpod client 10.244.1.10
mkpod batch 10.244.1.11
mkpod plain 10.244.1.12
mkpod guest 10.244.1.13
ip route add 10.244.0.10/32 via "$LAB_PEER_IP"
ip route add 10.244.0.11/32 via "$LAB_PEER_IP"
start_sidecar client
start_sidecar batch
start_sidecar guest
for p in client batch guest; do lab_retry 120 in_pod "$p" curl -sf http://127.0.0.1:15121/healthz/ready >/dev/null; done
lab_retry 60 grep -q 'redirect sets applied' "$OUT/logs/sync-guest.log"
progress "sidecars ready; waiting for node0"
lab_wait_tcp "$LAB_PEER_IP" 15998 150 || { echo "node0 control port not reachable"; exit 1; }
lab_wait_tcp 10.244.0.10 15100 60 || { echo "web's sidecar not reachable"; exit 1; }

ctl() { timeout 60 socat -t 50 - "TCP:$LAB_PEER_IP:15998" <<<"$1"; }
TCK=$(getconf CLK_TCK)
rc=0
# run_perf PATH: the smc-perf client command of that path (stdin/out as given by the caller).
run_perf() {
  local path=$1
  shift
  case $path in
  direct) as_app plain timeout 120 "$PERF" "$1" 10.244.0.11 -p 5201 "${@:2}" ;;
  sidecar-smcr) as_app client timeout 120 "$PERF" "$1" 10.244.0.10 -p 5201 "${@:2}" ;;
  sidecar-fallback) as_app batch timeout 120 "$PERF" "$1" 10.244.0.10 -p 5201 "${@:2}" ;;
  sidecar-bypass) as_app guest timeout 120 "$PERF" "$1" 10.244.0.10 -p 5201 "${@:2}" ;;
  tcp-node) timeout 120 "$PERF" "$1" "$LAB_PEER_IP" -p 5203 "${@:2}" ;;
  kernel-smcr) LD_PRELOAD="$PRE" timeout 120 "$PERF" "$1" "$LAB_PEER_IP" -p 5202 "${@:2}" ;;
  kernel-sidecar) LD_PRELOAD="$PRE" timeout 120 "$PERF" "$1" 10.244.0.10 -p 5201 "${@:2}" ;;
  esac
}
# The pod whose sidecar is on the path on this node (web's, on node0, is counted for every path).
pod_of() { case $1 in sidecar-smcr) echo client ;; sidecar-fallback) echo batch ;; sidecar-bypass) echo guest ;; kernel-sidecar) echo web ;; esac; }

# ticks SNAPSHOT POD: that pod's sidecar ticks in a cpu.sh line ("PROGRAM_TICKS POD=TICKS ...").
ticks() {
  local w
  for w in $1; do [[ $w == "$2="* ]] && { echo "${w#*=}"; return; }; done
  echo 0
}

# bench PATH OP LABEL ARGS...: one measured smc-perf run. CPU: the sidecars on the path (the
# client pod's, web's on node0), the client (bash `time`: smc-perf and its exec chain), node0's
# smc-perf servers (cpu.sh; only the one on the path is busy).
bench() {
  local path=$1 op=$2 label=$3 pod line r0 r1 l0 l1 tf st cu cs side srv cpu
  shift 3
  pod=$(pod_of "$path")
  # web's sidecar is on node0: its metrics are not scraped from here (its CPU is, through ctl).
  [[ -n $pod && -e /run/netns/$pod ]] && scrape "$pod" >"$OUT/metrics/$label.before"
  r0=$(ctl cpu)
  l0=$(bash "$BENCH_HERE/cpu.sh")
  tf=$OUT/logs/$label.time
  local TIMEFORMAT='%U %S'
  { time run_perf "$path" "$op" -l "$label" "$@" >"$OUT/logs/$label.out" 2>"$OUT/logs/$label.err"; } 2>"$tf"
  st=$?
  l1=$(bash "$BENCH_HERE/cpu.sh")
  r1=$(ctl cpu)
  [[ -n $pod && -e /run/netns/$pod ]] && scrape "$pod" >"$OUT/metrics/$label.after"
  echo "CPU $label local [$l0] -> [$l1] node0 [$r0] -> [$r1]" >>"$OUT/logs/cpu.txt"
  line=$(grep '^{' "$OUT/logs/$label.out" | tail -n 1)
  if [[ $st != 0 || -z $line || -z $r0 || -z $r1 ]]; then
    echo "bench $label failed (exit $st, node0 cpu '$r0' '$r1'): $(tail -n 3 "$OUT/logs/$label.err")"
    rc=1
    return
  fi
  read -r cu cs <"$tf"
  side=0
  if [[ -n $pod ]]; then
    side=$(($(ticks "$l1" "$pod") - $(ticks "$l0" "$pod") + $(ticks "$r1" web) - $(ticks "$r0" web)))
  fi
  srv=$((${r1%% *} - ${r0%% *}))
  cpu=$(awk -v t="$TCK" -v cu="$cu" -v cs="$cs" -v s="$side" -v p="$srv" \
    'BEGIN{printf "\"cpu_sidecar_s\":%.2f,\"cpu_client_s\":%.2f,\"cpu_server_s\":%.2f", s/t, cu+cs, p/t}')
  echo "BENCH {\"path\":\"$path\",${line#\{}" | sed "s/}\$/,$cpu}/"
  progress "$label: $(sed -E 's/.*"(p50_us|mib_s)":([0-9.]+).*/\1=\2/' <<<"$line"), CPU sidecars $(awk -v s="$side" -v t="$TCK" 'BEGIN{print s/t}') s"
}

PATHS=(direct sidecar-smcr sidecar-fallback sidecar-bypass tcp-node kernel-smcr kernel-sidecar)
# Warm-up: every server reachable; the first SMC-R connections build the link groups.
for path in "${PATHS[@]}"; do
  run_perf "$path" rtt -n 10 -w 0 -r 60 >"$OUT/logs/warmup-$path.out" 2>&1 ||
    { echo "warm-up $path failed: $(tail -n 2 "$OUT/logs/warmup-$path.out")"; rc=1; }
done
progress "warm-up done"
echo "KSTATS before $("$B/smc-stats" stats fallback)"
for round in $(seq 1 "$BENCH_ROUNDS"); do
  for path in "${PATHS[@]}"; do bench "$path" rtt "$path-rtt-$round" -s 64 -n "$BENCH_PINGS" -w 50; done
  for path in "${PATHS[@]}"; do bench "$path" bulk "$path-bulk-$round" -b $((BENCH_BULK_MIB * 1048576)); done
done
echo "KSTATS after $("$B/smc-stats" stats fallback)"
echo "SMC_CONNS $((4 * BENCH_ROUNDS))"
if [[ -n "${BENCH_RDMA_JS:-}" ]]; then
  if LAB_NODE=0 timeout 120 node "$BENCH_RDMA_JS" bw 18800 "$BENCH_RDMA_ITERS" 65536 128 >"$OUT/logs/rdma-bw.out" 2>&1; then
    grep '^BENCH ' "$OUT/logs/rdma-bw.out" | sed 's/^BENCH {/BENCH {"path":"raw-rdma-write","op":"rdma-bw",/'
    progress "raw RDMA WRITE: $(grep -o '"MiBps":[0-9.]*' "$OUT/logs/rdma-bw.out")"
  else
    echo "raw RDMA WRITE failed: $(tail -n 3 "$OUT/logs/rdma-bw.out")"
  fi
fi
for p in client batch guest; do scrape "$p" >"$OUT/metrics/$p.txt"; done
ctl done >/dev/null
progress "done"
exit $rc
