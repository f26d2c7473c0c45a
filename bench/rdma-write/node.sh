#!/usr/bin/env bash
# VM side of the RDMA WRITE benchmark (both nodes; run by run.sh through test/vm/lab-run).
# node1 serves, node0 drives and prints the results. Besides ib_write_bw / ib_write_lat, each
# round runs ib_send_lat -e (event-driven, like the addon) as a second latency reference. Steps alternate perftest and the addon so
# that drift of the emulated link hits both alike. BENCH_ISOLATION=1 adds the addon's isolation step
# after the rounds.
set -u
: "${LAB_NODE:?}" "${LAB_RXE:?}" "${LAB_PEER_IP:?}" "${BENCH_REPO:?}"
ITERS_BW=${BENCH_ITERS_BW:-1000}
ITERS_LAT=${BENCH_ITERS_LAT:-1000}
JS="$BENCH_REPO/node_modules/.cache/smc-vm-lab/bench/rdma-write/bench.js"
export SMC_VERBS_ADDON="$BENCH_REPO/node_modules/.cache/smc-vm-lab/smc_verbs.node"
cd "$BENCH_REPO"

# A perftest client retries until the server on the peer listens.
client() {
  local out=$1
  shift
  for _ in $(seq 1 150); do
    if timeout 120 "$@" "$LAB_PEER_IP" >"$out" 2>&1; then
      cat "$out"
      return 0
    fi
    sleep 0.3
  done
  cat "$out"
  return 1
}

# The addon's steps are retried once on other ports: under host load the emulated link drops
# packets and rxe (6.12) then occasionally fails a retried multi-packet RDMA WRITE with
# IBV_WC_REM_INV_REQ_ERR (perftest would abort the same way). A retry is reported as such.
addon() {
  local mode=$1 port=$2 iters=$3 size=$4
  shift 4
  # stderr with the results: a failed step shows why.
  timeout 300 node "$JS" "$mode" "$port" "$iters" "$size" "$@" 2>&1 && return 0
  echo "RETRY addon $mode (port $port failed)"
  timeout 300 node "$JS" "$mode" $((port + 10)) "$iters" "$size" "$@" 2>&1
}

PT=(-d "$LAB_RXE" -x 1 -F)
ROUNDS=${BENCH_ROUNDS:-3}
rc=0
for ((r = 1; r <= ROUNDS; r++)); do
  p=$((18700 + 20 * r))
  if [[ $LAB_NODE == 1 ]]; then
    timeout 300 ib_write_bw "${PT[@]}" -p $((p + 1)) -s 65536 -n "$ITERS_BW" >/dev/null 2>&1 || rc=1
    addon bw $((p + 2)) "$ITERS_BW" 65536 128 || rc=1
    timeout 300 ib_write_lat "${PT[@]}" -p $((p + 3)) -s 64 -n "$ITERS_LAT" >/dev/null 2>&1 || rc=1
    addon lat $((p + 4)) "$ITERS_LAT" 64 || rc=1
    timeout 300 ib_send_lat "${PT[@]}" -e -p $((p + 5)) -s 64 -n "$ITERS_LAT" >/dev/null 2>&1 || rc=1
    continue
  fi
  echo "== round $r perftest ib_write_bw"
  client "$LAB_OUT/write_bw.txt" ib_write_bw "${PT[@]}" -p $((p + 1)) -s 65536 -n "$ITERS_BW" || rc=1
  echo "== round $r addon bw"
  addon bw $((p + 2)) "$ITERS_BW" 65536 128 || rc=1
  echo "== round $r perftest ib_write_lat"
  client "$LAB_OUT/write_lat.txt" ib_write_lat "${PT[@]}" -p $((p + 3)) -s 64 -n "$ITERS_LAT" || rc=1
  echo "== round $r addon lat"
  addon lat $((p + 4)) "$ITERS_LAT" 64 || rc=1
  echo "== round $r perftest ib_send_lat -e"
  client "$LAB_OUT/send_lat_e.txt" ib_send_lat "${PT[@]}" -e -p $((p + 5)) -s 64 -n "$ITERS_LAT" || rc=1
done
if [[ ${BENCH_ISOLATION:-0} == 1 ]]; then
  p=$((18700 + 20 * (ROUNDS + 1)))
  [[ $LAB_NODE == 0 ]] && echo "== isolation"
  # Its data-path runs are short: with 500 WRITEs per run the step did not finish in 300 s here.
  addon isolation $((p + 2)) "${BENCH_ITERS_ISOLATION:-50}" 65536 "${BENCH_ISO_ITERS_BW:-100}" "${BENCH_ISO_ITERS_LAT:-100}" || rc=1
fi
exit $rc
