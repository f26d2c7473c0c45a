#!/usr/bin/env bash
# One node of test/vm/sidecar-intercept.test.ts: a "pod" with the compiled sidecar, its nftables
# rules and real RDMA (rxe0, `rdma.dataPath` from $SMC_LAB_DATA_PATH, default auto = the native
# DataPump). Usage: intercept-node.sh server|client
# The sidecar runs as root here, so `intercept.sidecarUid` is 0 and the applications run as
# uid 65534 (the 9p-mounted tree is read-only for other uids' writes, root keeps the setup simple).
# Handshakes in flight are not bounded here (limits.maxConcurrentHandshakes 256): redis-benchmark's
# 100 concurrent clients must all upgrade; test/vm/sidecar-burst.test.ts covers the bound.
set -euo pipefail
role=$1
cd "$LAB_REPO"
export SMC_VERBS_ADDON="$LAB_REPO/native/build/Release/smc_verbs.node"
main="node dist/sidecar/src/main.js"
app() { setpriv --reuid 65534 --regid 65534 --clear-groups "$@"; }

cat >"$LAB_OUT/directory.json" <<JSON
{"version":1,"shard":0,"shards":1,"endpoints":[
 {"podIP":"10.77.0.1","node":"node0","namespace":"lab","pod":"b","tenant":"team-a","sidecarPort":15100,"allowedPeerTenants":[]},
 {"podIP":"10.77.0.2","node":"node1","namespace":"lab","pod":"a","tenant":"team-a","sidecarPort":15100,"allowedPeerTenants":[]}]}
JSON
cat >"$LAB_OUT/sidecar.json" <<JSON
{"tenant":"team-a","logLevel":"info",
 "rdma":{"device":"$LAB_RXE","gidIndex":1,"dataPath":"${SMC_LAB_DATA_PATH:-auto}"},
 "directory":{"path":"$LAB_OUT/directory.json"},
 "intercept":{"sidecarUid":0},
 "limits":{"maxConcurrentHandshakes":256},
 "timeouts":{"clcHandshakeMs":30000,"linkSetupMs":20000}}
JSON
cfg="$LAB_OUT/sidecar.json"

$main intercept install --config "$cfg"
$main intercept install --config "$cfg"
nft list table inet smc_sidecar >"$LAB_OUT/ruleset.txt"
apps=()
if [[ $role == server ]]; then
  # The applications first: the client starts once our sidecar port answers, and must find them up.
  setpriv --reuid 65534 --regid 65534 --clear-groups node test/vm/sidecar/app-server.mjs >"$LAB_OUT/http.log" 2>&1 &
  apps+=($!)
  setpriv --reuid 65534 --regid 65534 --clear-groups redis-server --port 6379 --bind 0.0.0.0 --save '' --appendonly no --dir /tmp --protected-mode no >"$LAB_OUT/redis.log" 2>&1 &
  apps+=($!)
  lab_wait_tcp 127.0.0.1 8080 60
  lab_wait_tcp 127.0.0.1 6379 60
fi

$main run --config "$cfg" >"$LAB_OUT/sidecar.log" 2>&1 &
sidecar=$!
lab_retry 60 curl -sf http://127.0.0.1:15121/healthz/ready >/dev/null
# A second address of pod b that is not in the directory: connections to it fall back to TCP
# (added after the sidecar checked its GID index).
if [[ $role == server ]]; then ip addr add 10.77.0.11/24 dev "$LAB_NETDEV"; fi

metrics() {
  curl -sf http://127.0.0.1:15190/metrics | grep -E '^smc_(connections_total|bytes_total|rdma_errors_total|data_path_info|link_groups|links)[{ ]' |
    sed 's/^/METRIC /'
}
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

if [[ $role == server ]]; then
  # Wait for the client's "done" (a TCP connect to 15999), report, then kill the sidecar while the
  # client is in the middle of a download (its application must see a reset, not hang).
  node -e "require('net').createServer(()=>process.exit(0)).listen(15999,'0.0.0.0');setTimeout(()=>process.exit(1),540000)"
  metrics
  sed 's/^/APP /' "$LAB_OUT/http.log"
  kill -9 "$sidecar"
  echo "SIDECAR_KILLED"
  sleep 20
  grep '^ENDLESS_END' "$LAB_OUT/http.log" | sed 's/^/AFTER_KILL_APP /' || true
  kill "${apps[@]}"
  wait || true
  $main intercept remove --config "$cfg"
  echo "TABLES_AFTER_REMOVE [$(nft list tables)]"
  exit 0
else
  lab_wait_tcp 10.77.0.1 15100 120
  echo "CURL $(app curl -sS --max-time 30 http://10.77.0.1:8080/hello)"
  echo "CURLPOST $(head -c 2000000 /dev/zero | app curl -sS --max-time 60 --data-binary @- http://10.77.0.1:8080/upload)"
  big=$(head -c 60000 /dev/zero | tr '\0' v)
  echo "REDIS_SET $(app redis-cli -h 10.77.0.1 SET k "$big")"
  echo "REDIS_GET_LEN $(app redis-cli -h 10.77.0.1 GET k | tr -d '\n' | wc -c)"
  echo "REDIS_PING $(app redis-cli -h 10.77.0.1 PING)"
  # Bulk transfers, sha256 on both ends. 8 MiB first to measure; 64 MiB each way when that fits in
  # 3 minutes at the measured rate, else the largest whole MiB that fits in about 60 s.
  mib=$((1 << 20))
  head -c $((64 * mib)) /dev/urandom >/tmp/up.bin
  t0=$(now)
  probe=$(head -c $((8 * mib)) /tmp/up.bin | app curl -sS --max-time 120 --data-binary @- http://10.77.0.1:8080/upload)
  t1=$(now)
  echo "PROBE $probe $(secs "$t0" "$t1")"
  size=$(awk -v t="$(secs "$t0" "$t1")" 'BEGIN { if (t * 8 <= 180) print 64; else { m = int(60 / t * 8); print (m < 8 ? 8 : m) } }')
  echo "BULK_MIB $size"
  head -c $((size * mib)) /tmp/up.bin >/tmp/up-sized.bin
  t0=$(now)
  up=$(app curl -sS --max-time 400 --data-binary @/tmp/up-sized.bin http://10.77.0.1:8080/upload)
  t1=$(now)
  echo "UPLOAD_EXPECT $((size * mib)) $(sha256sum </tmp/up-sized.bin | cut -d' ' -f1)"
  echo "UPLOAD_GOT $up"
  echo "UPLOAD_SECS $(secs "$t0" "$t1")"
  t0=$(now)
  down=$(app curl -sS --max-time 400 "http://10.77.0.1:8080/download?n=$((size * mib))" | sha256sum | cut -d' ' -f1)
  t1=$(now)
  echo "DOWNLOAD_GOT $down"
  echo "DOWNLOAD_SECS $(secs "$t0" "$t1")"
  rm -f /tmp/up.bin /tmp/up-sized.bin
  # Many short connections, 4 at a time.
  t0=$(now)
  ok=$(seq 60 | xargs -P 4 -I{} setpriv --reuid 65534 --regid 65534 --clear-groups \
    curl -sS --max-time 60 "http://10.77.0.1:8080/short{}" | grep -c '^pod-b /short' || true)
  t1=$(now)
  echo "SHORT_OK $ok $(secs "$t0" "$t1")"
  # Every connection so far ran over one link group with the server's sidecar.
  echo "LINK_GROUPS_AFTER_SHORT $(curl -sf http://127.0.0.1:15190/metrics | awk '$1 == "smc_link_groups" { print $2 }')"
  # 100 concurrent connections.
  t0=$(now)
  app timeout 300 redis-benchmark -h 10.77.0.1 -c 100 -n 2000 -t ping_inline -q >/tmp/bench.txt 2>&1 || true
  t1=$(now)
  echo "BENCH $(tr '\r' '\n' </tmp/bench.txt | grep -E 'requests per second' | tail -1) $(secs "$t0" "$t1")"
  # Fallback in the same run: an address of pod b that is not in the directory.
  echo "FALLBACK_CURL $(app curl -sS --max-time 30 http://10.77.0.11:8080/fallback)"
  metrics
  # This pod's own sidecar dies mid-download (kill -9): the application must read a reset, never a
  # clean end of a truncated stream. Then the sidecar starts again for the next step.
  t0=$(now)
  app curl -sS --max-time 60 -o /dev/null http://10.77.0.1:8080/endless 2>"$LAB_OUT/own-kill-curl.err" &
  kc=$!
  sleep 4
  kill -9 "$sidecar"
  wait "$sidecar" || true
  rc=0
  wait "$kc" || rc=$?
  t1=$(now)
  echo "OWN_KILL_CURL $rc $(secs "$t0" "$t1") $(tr '\n' ' ' <"$LAB_OUT/own-kill-curl.err")"
  $main run --config "$cfg" >"$LAB_OUT/sidecar-restarted.log" 2>&1 &
  sidecar=$!
  lab_retry 60 curl -sf http://127.0.0.1:15121/healthz/ready >/dev/null
  # Pod b's sidecar still holds the link group of our previous instance. As with the kernel, our
  # first connection declines its reuse (SYNCERR) and goes on over TCP, and pod b ends that group.
  echo "AFTER_RESTART_CURL $(app curl -sS --max-time 30 http://10.77.0.1:8080/hello)"
  # The server kills its sidecar during this download: curl must fail with a reset, not hang.
  t0=$(now)
  app curl -sS --max-time 60 -o /dev/null http://10.77.0.1:8080/endless 2>"$LAB_OUT/kill-curl.err" &
  kc=$!
  sleep 4
  bash -c 'exec 3<>/dev/tcp/10.77.0.1/15999' || true
  rc=0
  wait "$kc" || rc=$?
  t1=$(now)
  echo "KILL_CURL $rc $(secs "$t0" "$t1") $(tr '\n' ' ' <"$LAB_OUT/kill-curl.err")"
  curl -sf http://127.0.0.1:15190/metrics | grep -E '^smc_rdma_errors_total' | sed 's/^/AFTER_KILL /' || true
fi
kill "$sidecar" "${apps[@]}"
wait || true
$main intercept remove --config "$cfg"
echo "TABLES_AFTER_REMOVE [$(nft list tables)]"
