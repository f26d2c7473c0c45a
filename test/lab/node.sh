#!/usr/bin/env bash
# One node of `npm run lab` (test/lab/main.ts), run by test/vm/lab-run inside a VM.
#
# Every pod of this node becomes a network namespace with an `eth0` veth (ifindex 2, like the
# host's eth0, so the RoCE GID's netdev resolves inside the pod), a /32 pod IP and a default route
# to the node; pods of the other node are routed through it (10.77.0.0/24). Pods with a sidecar
# get `intercept install` and `run` inside their namespace, with exactly the environment the
# webhook injected (written by main.ts into $LAB_OUT/input/). Applications run as uid 65534,
# sidecars as root (intercept.sidecarUid 0).
#
# Inputs ($LAB_OUT/input/): pods.tsv (name node ip sidecar role), sidecar-<pod>.env (KEY=VALUE
# lines), directory/shard-*.json, flows.tsv (node1: name pod url). Outputs ($LAB_OUT/): flows/,
# metrics-<pod>.txt, rxe-before.txt, rxe-after.txt, blob-<pod>.sha256, logs/.
set -euo pipefail
cd "$LAB_REPO"
IN=$LAB_OUT/input
OUT=$LAB_OUT
mkdir -p "$OUT/flows" "$OUT/logs"
export SMC_VERBS_ADDON="${LAB_ADDON:-$LAB_REPO/native/build/Release/smc_verbs.node}"
SIDECAR=(node "$LAB_REPO/dist/sidecar/src/main.js")
DATA_PATH=${LAB_DATA_PATH:-js}
T0=$(date +%s.%N)
progress() { printf 'progress %5.1fs %s\n' "$(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{print b-a}')" "$*"; }
in_pod() { local p=$1; shift; ip netns exec "$p" "$@"; }
as_app() { local p=$1; shift; ip netns exec "$p" setpriv --reuid 65534 --regid 65534 --clear-groups "$@"; }

rxe_counters() {
  local d=/sys/class/infiniband/$LAB_RXE/ports/1/hw_counters f
  for f in "$d"/*; do echo "$(basename "$f") $(cat "$f")"; done
}

mkpod() {
  local p=$1 ip=$2
  ip netns add "$p"
  ip -n "$p" link set lo up
  # Created from inside the pod so that eth0 gets ifindex 2 there; the peer lands in the node's netns.
  in_pod "$p" ip link add eth0 index 2 type veth peer name "v-$p" netns 1
  ip addr add 169.254.1.1/32 dev "v-$p"
  sysctl -qw "net.ipv4.conf.v-$p.proxy_arp=1"
  ip link set "v-$p" up
  ip route add "$ip/32" dev "v-$p"
  # A /32 pod address and a default route to the node (as Calico does): the pods of the two nodes
  # share no subnet. The sidecars speak SMC-Rv2, which has no CLC subnet check (v1 would decline
  # every cross-node pair with DIFFPREFIX).
  ip -n "$p" addr add "$ip/32" dev eth0
  ip -n "$p" link set eth0 up
  ip -n "$p" route add 169.254.1.1 dev eth0
  ip -n "$p" route add default via 169.254.1.1 dev eth0
}

start_sidecar() {
  local p=$1 envs=()
  mapfile -t envs <"$IN/sidecar-$p.env"
  envs+=("SMC_DIRECTORY=$IN/directory" "SMC_SIDECAR_UID=0" "SMC_RDMA_DEVICE=$LAB_RXE"
    "SMC_GID_INDEX=1" "SMC_RDMA_DATA_PATH=$DATA_PATH" "SMC_LOG_LEVEL=info")
  in_pod "$p" env "${envs[@]}" timeout 300 "${SIDECAR[@]}" intercept install >"$OUT/logs/intercept-$p.log" 2>&1
  in_pod "$p" nft list table inet smc_sidecar >"$OUT/logs/ruleset-$p.txt"
  in_pod "$p" env "${envs[@]}" timeout 300 "${SIDECAR[@]}" run >"$OUT/logs/sidecar-$p.log" 2>&1 &
}

start_servers() {
  local p=$1 size=$2 d=/tmp/pod-$p
  mkdir -p "$d/www" "$d/nginx"
  head -c "$size" /dev/urandom >"$d/www/blob"
  sha256sum "$d/www/blob" | cut -d' ' -f1 >"$OUT/blob-$p.sha256"
  cat >"$d/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $d/nginx/nginx.pid;
error_log $d/nginx/error.log;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path $d/nginx/body;
  proxy_temp_path $d/nginx/proxy;
  fastcgi_temp_path $d/nginx/fastcgi;
  uwsgi_temp_path $d/nginx/uwsgi;
  scgi_temp_path $d/nginx/scgi;
  server { listen 8080; root $d/www; }
}
EOF
  chown -R 65534:65534 "$d"
  as_app "$p" timeout 300 nginx -e "$d/nginx/error.log" -p "$d/nginx" -c "$d/nginx/nginx.conf" >"$OUT/logs/nginx-$p.log" 2>&1 &
  as_app "$p" timeout 300 redis-server --port 6379 --bind 0.0.0.0 --save '' --appendonly no --dir "$d" \
    --protected-mode no >"$OUT/logs/redis-$p.log" 2>&1 &
}

scrape() { in_pod "$1" curl -sf --max-time 10 http://127.0.0.1:15190/metrics | grep -E '^smc_' || true; }

# flow NAME POD CMD...: runs CMD as the application in POD; the pod's sidecar metrics before and
# after attribute the connections and bytes to this flow.
flow() {
  local name=$1 p=$2 rc=0 t0 t1
  shift 2
  scrape "$p" >"$OUT/flows/$name.before"
  t0=$(date +%s.%N)
  as_app "$p" timeout 120 bash -o pipefail -c "$*" >"$OUT/flows/$name.out" 2>"$OUT/flows/$name.err" || rc=$?
  t1=$(date +%s.%N)
  sleep 0.5
  scrape "$p" >"$OUT/flows/$name.after"
  awk -v n="$name" -v p="$p" -v rc="$rc" -v a="$t0" -v b="$t1" \
    'BEGIN{printf "pod=%s rc=%s sec=%.2f\n", p, rc, b-a}' >"$OUT/flows/$name.meta"
  progress "flow $name ($p): exit $rc, $(cut -d' ' -f3 "$OUT/flows/$name.meta")"
}

sysctl -qw net.ipv4.ip_forward=1
rxe_counters >"$OUT/rxe-before.txt"
mine=()
while read -r name node ip sidecar role; do
  [[ -z "$name" || "$name" == \#* ]] && continue
  if [[ "$node" == "$LAB_NODE" ]]; then
    mkpod "$name" "$ip"
    mine+=("$name:$sidecar:$role")
  else
    ip route add "$ip/32" via "$LAB_PEER_IP"
  fi
done <"$IN/pods.tsv"
progress "pods as network namespaces: ${mine[*]}"

for m in "${mine[@]}"; do
  IFS=: read -r p sc role <<<"$m"
  [[ "$role" == server ]] && start_servers "$p" "$([[ $sc == 1 ]] && echo 4194304 || echo 1048576)"
done
for m in "${mine[@]}"; do
  IFS=: read -r p sc role <<<"$m"
  [[ "$role" == server ]] || continue
  ip=$(awk -v p="$p" '$1==p{print $3}' "$IN/pods.tsv")
  lab_wait_tcp "$ip" 8080 60
  lab_wait_tcp "$ip" 6379 60
done
for m in "${mine[@]}"; do
  IFS=: read -r p sc role <<<"$m"
  [[ "$sc" == 1 ]] && start_sidecar "$p"
done
for m in "${mine[@]}"; do
  IFS=: read -r p sc role <<<"$m"
  [[ "$sc" == 1 ]] || continue
  lab_retry 90 in_pod "$p" curl -sf http://127.0.0.1:15121/healthz/ready >/dev/null
done
progress "servers and sidecars ready"

if [[ "$LAB_NODE" == 0 ]]; then
  # Serve until node1 says it is done (a TCP connect to 15999 on the node's address).
  timeout 240 socat -u TCP-LISTEN:15999,bind="$LAB_IP",reuseaddr /dev/null
else
  # Wait for the peer's servers and sidecars, then run the flows in order.
  while read -r name node ip sidecar role; do
    [[ -z "$name" || "$name" == \#* || "$node" == "$LAB_NODE" ]] && continue
    # Sidecar pods: their sidecar's port (a connection to the app port would count as inbound traffic).
    if [[ "$sidecar" == 1 ]]; then lab_wait_tcp "$ip" 15100 120; elif [[ "$role" == server ]]; then lab_wait_tcp "$ip" 8080 120; fi
  done <"$IN/pods.tsv"
  progress "peer pods reachable; running the applications"
  while IFS=$'\t' read -r name p cmd; do
    [[ -z "$name" || "$name" == \#* ]] && continue
    flow "$name" "$p" "$cmd"
  done <"$IN/flows.tsv"
  lab_retry 30 socat -u /dev/null "TCP:$LAB_PEER_IP:15999"
fi

for m in "${mine[@]}"; do
  IFS=: read -r p sc role <<<"$m"
  [[ "$sc" == 1 ]] && scrape "$p" >"$OUT/metrics-$p.txt"
  # Per connection, as `kubectl smc connections POD` shows it: the same CLI, run in the pod.
  [[ "$sc" == 1 ]] && { in_pod "$p" "${SIDECAR[@]}" connections >"$OUT/connections-$p.txt" 2>&1 || true; }
done
rxe_counters >"$OUT/rxe-after.txt"
rdma statistic show link "$LAB_RXE/1" >"$OUT/rdma-statistic.txt" 2>&1 || true
progress "done"
