#!/usr/bin/env bash
# One node of test/vm/sidecar-hostile.test.ts. Usage: hostile-node.sh server|client
#   server (node0, pod b): the compiled sidecar (dataPath native) in front of app-server.mjs (:8080)
#     and the line echo app of hostile-node.js (:9000); its directory lists pod a (10.77.0.2) and
#     the hostile addresses 10.77.0.20-27 and 10.77.0.30-41, all tenant team-a.
#   client (node1, pod a): the sidecar with its nftables interception, curl uploading 16 MiB to
#     pod b over SMC-R, held at half way while `hostile-node.js attack` (uid 0, so not redirected)
#     attacks pod b's sidecar from the extra addresses; then the rest of the upload and a 16 MiB
#     download on a new connection.
# The sidecars run as root (intercept.sidecarUid 0), the applications as uid 65534.
set -euo pipefail
role=$1
cd "$LAB_REPO"
export SMC_VERBS_ADDON="$LAB_REPO/native/build/Release/smc_verbs.node"
main="node dist/sidecar/src/main.js"
prog="node dist/test/vm/hostile/hostile-node.js"
app() { setpriv --reuid 65534 --regid 65534 --clear-groups "$@"; }
HOSTILE=(20 21 22 23 24 25 26 27 30 31 32 33 34 35 36 37 38 39 40 41)
MIB=$((1 << 20))

endpoint() { echo "{\"podIP\":\"$1\",\"node\":\"node$2\",\"namespace\":\"lab\",\"pod\":\"$3\",\"tenant\":\"team-a\",\"sidecarPort\":15100,\"allowedPeerTenants\":[]}"; }
{
  echo '{"version":1,"shard":0,"shards":1,"endpoints":['
  endpoint 10.77.0.1 0 b
  echo ","
  endpoint 10.77.0.2 1 a
  if [[ $role == server ]]; then
    for h in "${HOSTILE[@]}"; do
      echo ","
      endpoint "10.77.0.$h" 1 "hostile-$h"
    done
  fi
  echo ']}'
} >"$LAB_OUT/directory.json"
cat >"$LAB_OUT/sidecar.json" <<JSON
{"tenant":"team-a","logLevel":"debug",
 "rdma":{"device":"$LAB_RXE","gidIndex":1,"dataPath":"native"},
 "directory":{"path":"$LAB_OUT/directory.json"},
 "intercept":{"sidecarUid":0},
 "timeouts":{"clcHandshakeMs":15000,"linkSetupMs":20000}}
JSON
cfg="$LAB_OUT/sidecar.json"
metrics() { curl -sf http://127.0.0.1:15190/metrics | grep -E '^smc_' | sed 's/^/METRIC /'; }

if [[ $role == server ]]; then
  app node test/vm/sidecar/app-server.mjs >"$LAB_OUT/http.log" 2>&1 &
  apps=($!)
  app $prog app >"$LAB_OUT/echo-app.log" 2>&1 &
  apps+=($!)
  lab_wait_tcp 127.0.0.1 8080 60
  lab_wait_tcp 127.0.0.1 9000 60
  $main run --config "$cfg" >"$LAB_OUT/sidecar.log" 2>&1 &
  sidecar=$!
  lab_retry 60 curl -sf http://127.0.0.1:15121/healthz/ready >/dev/null
  echo "SERVER_READY"
  # Until the client says it is done (a TCP connect to 15999).
  node -e "require('net').createServer(()=>process.exit(0)).listen(15999,'0.0.0.0');setTimeout(()=>process.exit(1),600000)"
  if kill -0 "$sidecar" 2>/dev/null; then echo "SIDECAR_ALIVE yes"; else echo "SIDECAR_ALIVE no"; fi
  echo "HEALTH_READY $(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:15121/healthz/ready)"
  metrics || true
  sed 's/^/APP /' "$LAB_OUT/http.log"
  cat "$LAB_OUT/echo-app.log"
  kill "$sidecar" "${apps[@]}" 2>/dev/null || true
  wait || true
  exit 0
fi

$main intercept install --config "$cfg"
$main run --config "$cfg" >"$LAB_OUT/sidecar.log" 2>&1 &
sidecar=$!
lab_retry 60 curl -sf http://127.0.0.1:15121/healthz/ready >/dev/null
# The hostile pod's addresses (after the sidecar checked its GID index).
for h in "${HOSTILE[@]}"; do ip addr add "10.77.0.$h/24" dev "$LAB_NETDEV"; done
lab_wait_tcp 10.77.0.1 15100 120
lab_wait_tcp 10.77.0.1 9000 60

# The legitimate transfer: 16 MiB up, the second half held back until the attack is over.
head -c $((16 * MIB)) /dev/urandom >/tmp/legit.bin
echo "LEGIT_UPLOAD_EXPECT $((16 * MIB)) $(sha256sum </tmp/legit.bin | cut -d' ' -f1)"
{
  head -c $((8 * MIB)) /tmp/legit.bin
  while [[ ! -e /tmp/attack-done ]]; do sleep 0.3; done
  tail -c +$((8 * MIB + 1)) /tmp/legit.bin
} | app curl -sS --max-time 500 -H 'Expect:' -T - http://10.77.0.1:8080/upload >/tmp/legit-up.txt 2>/tmp/legit-up.err &
legit=$!
# Wait until the first half went over RDMA (the pump's counters reach the metrics every second).
inflight=0
for _ in $(seq 600); do
  inflight=$(curl -sf http://127.0.0.1:15190/metrics | awk '/^smc_bytes_total\{path="rdma",direction="tx"\}/ { print $2 }' || true)
  inflight=${inflight:-0}
  if awk -v n="$inflight" -v m=$((8 * MIB)) 'BEGIN { exit !(n >= m) }'; then break; fi
  sleep 0.3
done
echo "LEGIT_INFLIGHT_RDMA_TX $inflight"

rc=0
timeout 480 $prog attack || rc=$?
echo "ATTACK_EXIT $rc"
if kill -0 "$legit" 2>/dev/null; then echo "LEGIT_RUNNING_AFTER_ATTACK yes"; else echo "LEGIT_RUNNING_AFTER_ATTACK no"; fi
touch /tmp/attack-done
urc=0
wait "$legit" || urc=$?
echo "LEGIT_UPLOAD_GOT $(tr -d '\n' </tmp/legit-up.txt)"
echo "LEGIT_UPLOAD_RC $urc $(tr '\n' ' ' </tmp/legit-up.err)"
rm -f /tmp/legit.bin
down=$(app curl -sS --max-time 400 "http://10.77.0.1:8080/download?n=$((16 * MIB))" | sha256sum | cut -d' ' -f1)
echo "LEGIT_DOWNLOAD_GOT $down"
metrics || true
bash -c 'exec 3<>/dev/tcp/10.77.0.1/15999' || true
kill "$sidecar" 2>/dev/null || true
wait "$sidecar" || true
$main intercept remove --config "$cfg"
