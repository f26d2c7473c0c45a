#!/usr/bin/env bash
# One node of test/vm/sidecar-intercept.test.ts: a "pod" with the compiled sidecar, its nftables
# rules and real RDMA (rxe0, JavaScript data path). Usage: intercept-node.sh server|client
# The sidecar runs as root here, so `intercept.sidecarUid` is 0 and the applications run as
# uid 65534 (the 9p-mounted tree is read-only for other uids' writes, root keeps the setup simple).
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
 "rdma":{"device":"$LAB_RXE","gidIndex":1,"dataPath":"js"},
 "directory":{"path":"$LAB_OUT/directory.json"},
 "intercept":{"sidecarUid":0}}
JSON
cfg="$LAB_OUT/sidecar.json"

$main intercept install --config "$cfg"
$main intercept install --config "$cfg"
nft list table inet smc_sidecar >"$LAB_OUT/ruleset.txt"
apps=()
if [[ $role == server ]]; then
  # The applications first: the client starts once our sidecar port answers, and must find them up.
  setpriv --reuid 65534 --regid 65534 --clear-groups node -e "require('http').createServer((q,s)=>{let n=0;q.on('data',c=>n+=c.length);q.on('end',()=>s.end('pod-b '+q.url+' '+n+'\n'))}).listen(8080,'0.0.0.0')" >"$LAB_OUT/http.log" 2>&1 &
  apps+=($!)
  setpriv --reuid 65534 --regid 65534 --clear-groups redis-server --port 6379 --bind 0.0.0.0 --save '' --appendonly no --dir /tmp --protected-mode no >"$LAB_OUT/redis.log" 2>&1 &
  apps+=($!)
  lab_wait_tcp 127.0.0.1 8080 60
  lab_wait_tcp 127.0.0.1 6379 60
fi

$main run --config "$cfg" >"$LAB_OUT/sidecar.log" 2>&1 &
sidecar=$!
lab_retry 60 curl -sf http://127.0.0.1:15021/healthz/ready >/dev/null

metrics() { curl -sf http://127.0.0.1:15090/metrics | grep -E '^smc_(connections|bytes)_total' | sed 's/^/METRIC /'; }

if [[ $role == server ]]; then
  # Wait for the client's "done" (a TCP connect to 15999), then report.
  node -e "require('net').createServer(()=>process.exit(0)).listen(15999,'0.0.0.0');setTimeout(()=>process.exit(1),200000)"
  metrics
else
  lab_wait_tcp 10.77.0.1 15100 120
  echo "CURL $(app curl -sS --max-time 30 http://10.77.0.1:8080/hello)"
  echo "CURLPOST $(head -c 2000000 /dev/zero | app curl -sS --max-time 60 --data-binary @- http://10.77.0.1:8080/upload)"
  big=$(head -c 60000 /dev/zero | tr '\0' v)
  echo "REDIS_SET $(app redis-cli -h 10.77.0.1 SET k "$big")"
  echo "REDIS_GET_LEN $(app redis-cli -h 10.77.0.1 GET k | tr -d '\n' | wc -c)"
  echo "REDIS_PING $(app redis-cli -h 10.77.0.1 PING)"
  metrics
  bash -c 'exec 3<>/dev/tcp/10.77.0.1/15999' || true
fi
kill "$sidecar" "${apps[@]}"
wait || true
$main intercept remove --config "$cfg"
echo "TABLES_AFTER_REMOVE [$(nft list tables)]"
