# Shared by the sidecar sides of test/vm/kernel-interop.test.ts (sourced, in the repo root):
# kp_start_sidecar [LOADER_ATTACH_FILTER...] writes this node's directory (itself only, tenant
# team-a) and sidecar config (policy.kernelPeers, native data path), installs the interception
# rules, attaches the sock_ops program to cgroup $CG with the given filters (none: every socket)
# and starts the sidecar in that cgroup; sets $cfg and $sidecar (its pid) and waits until ready.
. "$LAB_REPO/test/vm/smc-option/lib.sh"
export SMC_VERBS_ADDON="$LAB_REPO/native/build/Release/smc_verbs.node"
main="node dist/sidecar/src/main.js"
O="$(smco_dir)"
CG=/sys/fs/cgroup/smc-sidecar
cfg="$LAB_OUT/sidecar.json"

kp_start_sidecar() {
  cat >"$LAB_OUT/directory.json" <<JSON
{"version":1,"shard":0,"shards":1,"endpoints":[
 {"podIP":"$LAB_IP","node":"node$LAB_NODE","namespace":"lab","pod":"p$LAB_NODE","tenant":"team-a","sidecarPort":15100,"allowedPeerTenants":[]}]}
JSON
  cat >"$cfg" <<JSON
{"tenant":"team-a","logLevel":"debug",
 "rdma":{"device":"$LAB_RXE","gidIndex":1,"dataPath":"native"},
 "directory":{"path":"$LAB_OUT/directory.json"},
 "intercept":{"sidecarUid":0},
 "policy":{"kernelPeers":true},
 "timeouts":{"clcHandshakeMs":30000,"linkSetupMs":20000}}
JSON
  $main intercept install --config "$cfg"
  mkdir -p "$CG"
  "$O/smc-option-loader" attach "$CG" "$@" >"$LAB_OUT/attach.json"
  smco_in_cgroup "$CG" $main run --config "$cfg" >"$LAB_OUT/sidecar.log" 2>&1 &
  sidecar=$!
  lab_retry 60 curl -sf http://127.0.0.1:15121/healthz/ready >/dev/null
}

# kp_stop_sidecar: stops it, detaches the program, removes the rules.
kp_stop_sidecar() {
  kill "$sidecar" || true
  wait "$sidecar" || true
  "$O/smc-option-loader" detach "$CG" >/dev/null || true
  $main intercept remove --config "$cfg"
}

# kp_pump_aborts: the sidecar's SMC-R connections that ended aborted, by the pump's reason, as
# "peer abort=1;socket write=1;" (from its debug log).
kp_pump_aborts() {
  grep -o '"end":"aborted","detail":{"reason":"[a-z ]*"' "$LAB_OUT/sidecar.log" | sed 's/.*"reason":"//; s/"$//' |
    sort | uniq -c | awk '{ c = $1; $1 = ""; printf "%s=%s;", substr($0, 2), c }'
}
