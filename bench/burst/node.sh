#!/usr/bin/env bash
# VM side of bench/burst/run.sh (both nodes). Pods are network namespaces as in bench/sidecar
# (veth eth0 with ifindex 2, /32 pod addresses, sidecars as root with `intercept install` + `run`,
# applications as uid 65534):
#
#   node0: web    10.244.0.10 tenant blue, sidecar   nginx :8080
#          legacy 10.244.0.11 no sidecar             nginx :8080
#          control port :15998 (ctl.sh)
#   node1: client 10.244.1.10 tenant blue, sidecar -> web     through both sidecars, SMC-R
#          plain  10.244.1.12 no sidecar          -> legacy  direct TCP pod to pod
#
# node1 drives: one warm-up connection per path (the SMC-R one builds the link group), the direct
# burst, the burst through the sidecars. It prints `BURST {json}` lines and keeps in
# $LAB_OUT/metrics/ both sidecars' /metrics around the burst (base, before, after, settled), the
# pods' TCP counters around each burst and its client's per-connection times; each node samples
# its sidecar's gauges into metrics/samples-<pod>.jsonl.
set -u
: "${LAB_NODE:?}" "${LAB_RXE:?}" "${LAB_PEER_IP:?}" "${BURST_HERE:?}" "${BURST_CLIENT_JS:?}" "${BURST_N:?}" "${BURST_SAMPLE_MS:?}"
cd "$LAB_REPO" || exit 1
IN=$LAB_OUT/input
OUT=$LAB_OUT
M=$OUT/metrics
W=/tmp/burst
# Logs on tmpfs, copied out at the end: a 9p write per sidecar log line costs under TCG.
LOGS=$W/logs
mkdir -p "$M" "$OUT/logs" "$LOGS" "$W/out"
chmod 755 "$W"
chmod 1777 "$W/out"
export SMC_VERBS_ADDON="$BURST_ADDON"
SIDECAR=(node "$LAB_REPO/dist/sidecar/src/main.js")
# What the application uid can read (the host's cache may sit under a 0700 home).
CLIENT=$W/client.js
cp "$BURST_CLIENT_JS" "$CLIENT" && chmod 644 "$CLIENT"
T=$((BURST_LAB_TIMEOUT - 30)) # background processes end before the lab's own timeout
T0=$(date +%s.%N)
progress() { printf 'progress %5.1fs %s\n' "$(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{print b-a}')" "$*"; }
in_pod() { local p=$1; shift; ip netns exec "$p" "$@"; }
as_app() { local p=$1; shift; ip netns exec "$p" setpriv --reuid 65534 --regid 65534 --clear-groups "$@"; }
# The /metrics lines kept for the report, here and by ctl.sh (web's snapshots).
export METRICS_KEEP='^(smc_|process_|nodejs_eventloop_lag|nodejs_heap_size_(total|used)_bytes|nodejs_external_memory_bytes)'

# N connections take about 2 fds each in a sidecar (application side, peer side) and in nginx;
# the kernel starts init with 1024/4096 (Node raises its soft limit to the hard one, nginx does
# not). Everything started below inherits this.
if ! { ulimit -Hn "$BURST_NOFILE" && ulimit -Sn "$BURST_NOFILE"; }; then
  echo "warning: cannot raise the fd limit to $BURST_NOFILE (now $(ulimit -Sn)/$(ulimit -Hn))"
fi
echo "LIMITS nofile $(ulimit -Sn)/$(ulimit -Hn), pods: somaxconn and tcp_max_syn_backlog $BURST_SOMAXCONN"

# From bench/sidecar/node.sh.
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
  # Per network namespace: the listen backlog nginx asks for is capped at somaxconn. (A Node
  # server, such as the sidecar's listeners, asks for 511 whatever these say.)
  in_pod "$p" sysctl -qw net.core.somaxconn="$BURST_SOMAXCONN" net.ipv4.tcp_max_syn_backlog="$BURST_SOMAXCONN"
}
start_sidecar() {
  local p=$1 envs=()
  mapfile -t envs <"$IN/sidecar-$p.env"
  envs+=("SMC_DIRECTORY=$IN/directory" "SMC_SIDECAR_UID=0" "SMC_RDMA_DEVICE=$LAB_RXE"
    "SMC_GID_INDEX=1" "SMC_RDMA_DATA_PATH=$BURST_DATA_PATH" "SMC_LOG_LEVEL=$BURST_LOG_LEVEL")
  [[ -n $BURST_RMB_SIZE ]] && envs+=("SMC_RMB_SIZE=$BURST_RMB_SIZE")
  # Extra sidecar settings (e.g. SMC_CLC_TIMEOUT_MS=10000), space-separated KEY=VALUE.
  local extra=()
  read -r -a extra <<<"$BURST_SIDECAR_ENV"
  envs+=("${extra[@]}")
  in_pod "$p" env "${envs[@]}" timeout 60 "${SIDECAR[@]}" intercept install >"$LOGS/intercept-$p.log" 2>&1 ||
    { echo "intercept install in $p failed: $(tail -n 3 "$LOGS/intercept-$p.log")"; return 1; }
  local run=("${SIDECAR[@]}")
  [[ -n $BURST_PROFILE ]] && run=(node --cpu-prof --cpu-prof-dir="$OUT/prof/$p" "${SIDECAR[@]:1}")
  in_pod "$p" env "${envs[@]}" timeout "$T" "${run[@]}" run >"$LOGS/sidecar-$p.log" 2>&1 </dev/null &
  SIDECARS+=($!)
}
SIDECARS=()
# With BURST_PROFILE, the sidecar stops in order at the end (SIGTERM), so that it writes its profile.
stop_profiled_sidecar() {
  [[ -z $BURST_PROFILE ]] && return 0
  pkill -TERM -f "^node .*${SIDECAR[-1]} run\$" || true
  wait "${SIDECARS[@]}" 2>/dev/null || true
}
# nginx as the application: one worker (one vCPU), a small file, the connection and fd limits N
# needs, and a listen backlog of somaxconn.
start_nginx() {
  local p=$1 d=$W/pod-$1
  mkdir -p "$d/www" "$d/nginx"
  head -c "$BURST_SIZE" /dev/urandom >"$d/www/burst.bin"
  cat >"$d/nginx/nginx.conf" <<EOF
worker_processes 1;
worker_rlimit_nofile $BURST_NOFILE;
daemon off;
pid $d/nginx/nginx.pid;
error_log $d/nginx/error.log;
events { worker_connections $((2 * BURST_N + 1024)); }
http {
  access_log off;
  client_body_temp_path $d/nginx/body;
  proxy_temp_path $d/nginx/proxy;
  fastcgi_temp_path $d/nginx/fastcgi;
  uwsgi_temp_path $d/nginx/uwsgi;
  scgi_temp_path $d/nginx/scgi;
  server { listen 8080 backlog=$BURST_SOMAXCONN; root $d/www; }
}
EOF
  chown -R 65534:65534 "$d"
  as_app "$p" timeout "$T" nginx -e "$d/nginx/error.log" -p "$d/nginx" -c "$d/nginx/nginx.conf" \
    >"$LOGS/nginx-$p.log" 2>&1 </dev/null &
}
# The sidecar's gauges every BURST_SAMPLE_MS (root, loopback: not intercepted), appended (on
# tmpfs) so that the phase marks written by others interleave; copied to metrics/ at the end.
start_watch() {
  local p=$1
  [[ $BURST_SAMPLE_MS == 0 ]] && return
  in_pod "$p" timeout "$T" node "$CLIENT" watch --url http://127.0.0.1:15190/metrics --interval-ms "$BURST_SAMPLE_MS" \
    >>"$W/samples-$p.jsonl" 2>"$LOGS/watch-$p.err" </dev/null &
}
finish() {
  cp -r "$LOGS"/. "$OUT/logs/" 2>/dev/null
  cp "$W"/samples-*.jsonl "$M/" 2>/dev/null
  for d in "$W"/pod-*/nginx; do [[ -f $d/error.log ]] && cp "$d/error.log" "$OUT/logs/nginx-error-$(basename "$(dirname "$d")").log"; done
  return 0
}

sysctl -qw net.ipv4.ip_forward=1
if [[ $LAB_NODE == 0 ]]; then
  trap finish EXIT
  mkpod web 10.244.0.10
  mkpod legacy 10.244.0.11
  ip route add 10.244.1.10/32 via "$LAB_PEER_IP"
  ip route add 10.244.1.12/32 via "$LAB_PEER_IP"
  start_nginx web
  start_nginx legacy
  start_sidecar web || exit 1
  for x in web:10.244.0.10 legacy:10.244.0.11; do
    lab_retry 60 in_pod "${x%%:*}" curl -sf -o /dev/null "http://${x#*:}:8080/burst.bin" ||
      { echo "nginx in ${x%%:*} not serving: $(tail -n 3 "$LOGS/nginx-${x%%:*}.log")"; exit 1; }
  done
  lab_retry 120 in_pod web curl -sf http://127.0.0.1:15121/healthz/ready >/dev/null ||
    { echo "web's sidecar not ready: $(tail -n 3 "$LOGS/sidecar-web.log")"; exit 1; }
  start_watch web
  progress "nginx and web's sidecar ready"
  export BURST_SAMPLES="$W/samples-web.jsonl"
  timeout "$T" socat -t 60 TCP-LISTEN:15998,bind="$LAB_IP",reuseaddr,fork SYSTEM:"bash $BURST_HERE/ctl.sh" \
    >"$LOGS/ctl.log" 2>&1 </dev/null &
  lab_wait_file /tmp/burst-done "$T" || { echo "node1 never said done"; exit 1; }
  stop_profiled_sidecar
  progress "done"
  exit 0
fi

ctl() { timeout 60 socat -t 50 - "TCP:$LAB_PEER_IP:15998" <<<"$1"; }
on_exit() {
  finish
  ctl 'done' >/dev/null 2>&1
}
trap on_exit EXIT
die() {
  echo "burst run broke: $*"
  exit 1
}
mkpod client 10.244.1.10
mkpod plain 10.244.1.12
ip route add 10.244.0.10/32 via "$LAB_PEER_IP"
ip route add 10.244.0.11/32 via "$LAB_PEER_IP"
start_sidecar client || die "no sidecar in client"
lab_retry 120 in_pod client curl -sf http://127.0.0.1:15121/healthz/ready >/dev/null ||
  die "client's sidecar not ready: $(tail -n 3 "$LOGS/sidecar-client.log")"
start_watch client
progress "client's sidecar ready; waiting for node0"
lab_wait_tcp "$LAB_PEER_IP" 15998 180 || die "node0 control port not reachable"
lab_wait_tcp 10.244.0.10 15100 60 || die "web's sidecar not reachable"
lab_wait_tcp 10.244.0.11 8080 60 || die "legacy's nginx not reachable"

# snap PHASE: both sidecars' /metrics.
snap() {
  in_pod client curl -sf --max-time 20 http://127.0.0.1:15190/metrics | grep -E "$METRICS_KEEP" >"$M/client-$1.txt"
  ctl "metrics web" >"$M/web-$1.txt"
  [[ -s $M/client-$1.txt && -s $M/web-$1.txt ]] || echo "warning: sidecar metrics missing at $1"
}
# tcpstat PHASE POD...: the pods' TCP counters (listen queue overflows, SYN retransmits, resets sent).
tcpstat() {
  local phase=$1 p
  shift
  for p in "$@"; do
    if [[ -e /run/netns/$p ]]; then
      in_pod "$p" cat /proc/net/netstat /proc/net/snmp >"$M/netstat-$p-$phase.txt"
    else
      ctl "netstat $p" >"$M/netstat-$p-$phase.txt"
    fi
  done
}
mark() {
  [[ $BURST_SAMPLE_MS == 0 ]] && return
  printf '{"mark":"%s"}\n' "$1" >>"$W/samples-client.jsonl"
  ctl "mark $1" >/dev/null
}
# run_burst LABEL POD HOST N: the client as POD's application; false if it did not report.
run_burst() {
  local label=$1 pod=$2 host=$3 n=$4
  as_app "$pod" timeout $((BURST_TIMEOUT_S + 60)) node "$CLIENT" burst --host "$host" --port 8080 \
    --path /burst.bin --size "$BURST_SIZE" -n "$n" --label "$label" --out "$W/out/conns-$label.json" \
    --timeout-ms $((BURST_TIMEOUT_S * 1000)) --progress-ms 2000 2>"$LOGS/client-$label.err" </dev/null
  local st=$?
  cp "$W/out/conns-$label.json" "$M/" 2>/dev/null
  [[ $st == 0 ]] || { echo "client $label exited $st: $(tail -n 3 "$LOGS/client-$label.err")"; return 1; }
}

snap base
run_burst warmup-direct plain 10.244.0.11 1 || die "warm-up of the direct path"
run_burst warmup-smcr client 10.244.0.10 1 || die "warm-up through the sidecars"
progress "warm-up done"

tcpstat direct-before plain legacy
run_burst direct plain 10.244.0.11 "$BURST_N" || die "direct burst"
tcpstat direct-after plain legacy
progress "direct burst done"
sleep "$BURST_GAP_S"

tcpstat smcr-before client web
snap before
mark burst-start
run_burst smcr client 10.244.0.10 "$BURST_N" || die "burst through the sidecars"
mark burst-end
snap after
tcpstat smcr-after client web
progress "burst through the sidecars done; settling ${BURST_SETTLE_S}s"
sleep "$BURST_SETTLE_S"
snap settled
mark settled
stop_profiled_sidecar
progress "done"
exit 0
