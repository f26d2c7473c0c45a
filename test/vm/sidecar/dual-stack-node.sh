#!/usr/bin/env bash
# One node of test/vm/sidecar-dual-stack.test.ts: a dual-stack "pod" (the VM, 10.77.0.N and
# fd00:77::N on eth0) with the compiled sidecar, its nftables rules and real RDMA (rxe0, native
# DataPump). The directory lists both addresses of each pod. Unmodified curl in pod a (node1)
# reaches pod b's HTTP server (node0) once at its IPv4 and once at its IPv6 address; both
# connections must run over SMC-R, on one link group per sidecar. Usage: dual-stack-node.sh server|client
# The sidecar runs as root (`intercept.sidecarUid` 0), the applications as uid 65534.
set -euo pipefail
role=$1
cd "$LAB_REPO"
export SMC_VERBS_ADDON="$LAB_REPO/native/build/Release/smc_verbs.node"
main="node dist/sidecar/src/main.js"
app() { setpriv --reuid 65534 --regid 65534 --clear-groups "$@"; }
V6="fd00:77::$((LAB_NODE + 1))"
SERVER_V4=10.77.0.1
CLIENT_V4=10.77.0.2
SERVER_V6=fd00:77::1

cat >"$LAB_OUT/directory.json" <<JSON
{"version":1,"shard":0,"shards":1,"endpoints":[
 {"podIP":"10.77.0.1","podIPs":["10.77.0.1","fd00:77::1"],"node":"node0","namespace":"lab","pod":"b","tenant":"team-a","sidecarPort":15100,"allowedPeerTenants":[]},
 {"podIP":"10.77.0.2","podIPs":["10.77.0.2","fd00:77::2"],"node":"node1","namespace":"lab","pod":"a","tenant":"team-a","sidecarPort":15100,"allowedPeerTenants":[]}]}
JSON
cat >"$LAB_OUT/sidecar.json" <<JSON
{"tenant":"team-a","logLevel":"info",
 "rdma":{"device":"$LAB_RXE","gidIndex":1,"dataPath":"auto"},
 "directory":{"path":"$LAB_OUT/directory.json"},
 "intercept":{"sidecarUid":0},
 "timeouts":{"clcHandshakeMs":30000,"linkSetupMs":20000}}
JSON
cfg="$LAB_OUT/sidecar.json"

$main intercept install --config "$cfg"
nft list table inet smc_sidecar >"$LAB_OUT/ruleset.txt"
apps=()
if [[ $role == server ]]; then
  # Both families on one socket; the answer names the address the request arrived at.
  app node -e "require('http').createServer((q,s)=>{q.resume();q.on('end',()=>s.end('pod-b '+q.url+' '+q.socket.localAddress+'\n'))}).listen(8080,'::')" >"$LAB_OUT/http.log" 2>&1 &
  apps+=($!)
  lab_wait_tcp 127.0.0.1 8080 60
fi

$main run --config "$cfg" >"$LAB_OUT/sidecar.log" 2>&1 &
sidecar=$!
lab_retry 60 curl -sf http://127.0.0.1:15121/healthz/ready >/dev/null
# The pod's IPv6 address, on the link the IPv4 one is on (no DAD: usable at once). Added once the
# sidecar has opened its GID (index 1, the IPv4-mapped one), as intercept-node.sh does with its
# extra address.
ip -6 addr add "$V6/64" dev "$LAB_NETDEV" nodad
echo "ADDRS $(ip -brief addr show dev "$LAB_NETDEV" | tr -s ' ')"

report() {
  curl -sf http://127.0.0.1:15190/metrics | grep -E '^smc_(connections_total|data_path_info|link_groups|links)[{ ]' |
    sed 's/^/METRIC /'
  $main connections | sed 's/^/CONNS /'
}

if [[ $role == server ]]; then
  # Wait for the client's "done" (a TCP connect to 15999), then report.
  node -e "require('net').createServer(()=>process.exit(0)).listen(15999,'0.0.0.0');setTimeout(()=>process.exit(1),400000)"
  report
  # Now the client may stop its sidecar (its DELETE LINK ends our link group).
  bash -c "exec 3<>/dev/tcp/$CLIENT_V4/15998" || true
else
  lab_wait_tcp "$SERVER_V4" 15100 120
  lab_wait_tcp "$SERVER_V6" 15100 120
  echo "CURL_V4 $(app curl -sS --max-time 60 "http://$SERVER_V4:8080/v4")"
  echo "CURL_V6 $(app curl -sS -g --max-time 60 "http://[$SERVER_V6]:8080/v6")"
  report
  # Until the server has reported: our sidecar's exit would end its link group first.
  node -e "require('net').createServer(()=>process.exit(0)).listen(15998,'0.0.0.0');setTimeout(()=>process.exit(1),120000)" &
  reported=$!
  lab_retry 30 bash -c "ss -ltn | grep -q :15998"
  bash -c "exec 3<>/dev/tcp/$SERVER_V4/15999" || true
  wait "$reported" || true
fi
kill "$sidecar" "${apps[@]}"
wait || true
$main intercept remove --config "$cfg"
ip -6 addr del "$V6/64" dev "$LAB_NETDEV" || true
