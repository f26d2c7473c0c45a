# node0 of test/vm/smc-option.test.ts: the connecting side. Sourced by the test's inline script
# with KSMC_DIR, SMCO_DIR and SMCO_DECLINE_HEX. Phases (node1's ports: see lab-node1.sh):
#   nobpf     kernel SMC client (socat under the preload shim) -> 7101, no BPF on node1:
#             the SYN-ACK has no SMC option, the client falls back with PEERNOSMC
#   bpf       kernel SMC client -> 7100, node1's program writes the option on the SYN-ACK: the
#             client sends a CLC Proposal, node1 declines it, the client falls back with PEERDECL
#   rtx       kernel SMC client -> 7102: node1 drops the first SYN-ACK; the retransmitted one
#             still carries the option, so the client again sends a Proposal (PEERDECL)
#   plain     plain socat -> 7100: no option on either side
# Then the program is attached here to cgroup smcopt-cli with --mark 0x5100 and smc-opt-probe
# runs inside it:
#   marked    SO_MARK 0x5100 -> 7200 (kernel SMC server): the SYN carries the option, the
#             server's SYN-ACK answers with it (BPF map), the probe sends the Decline first and
#             the server falls back with PEERDECL (it waited for CLC instead of PEERNOSMC)
#   unmarked  no mark -> 7200: not selected, no option, the server falls back with PEERNOSMC
#   syn       SO_MARK 0x5100 -> 7101: node1 saves our SYN, so the test sees the option's bytes
#   detached  after `smc-option-loader detach`: SO_MARK 0x5100 -> 7200 again: no option any
#             more, the server falls back with PEERNOSMC
# Writes to $LAB_OUT: setup.json, attach.json, stats-<phase>.json (smc-stats stats fallback,
# stats-start.json first), reply-<phase>.txt, probe-<phase>.json, reply-<phase>.json,
# bpf-conns.json, bpf-stats.json (before the detach), detach.json, status-detached.json.
set -u
. "$LAB_REPO/test/vm/kernel-smc/lib.sh"
. "$LAB_REPO/test/vm/smc-option/lib.sh"
B="$(ksmc_dir)" || { echo "kernel-smc tools not found"; exit 1; }
O="$(smco_dir)" || exit 1
DECL="${SMCO_DECLINE_HEX:?}"
PEER="$LAB_PEER_IP"
CG=/sys/fs/cgroup/smcopt-cli
MARK=0x5100
rc=0

"$B/smc-setup" --lab --show >"$LAB_OUT/setup.json" || { echo "smc-setup failed"; exit 1; }
lab_wait_tcp "$PEER" 7990 45 || { echo "node1 not ready"; exit 1; }
"$B/smc-stats" stats fallback >"$LAB_OUT/stats-start.json" || exit 1

phase_end() { # phase_end PHASE: counters after the phase
  "$B/smc-stats" stats fallback >"$LAB_OUT/stats-$1.json"
  echo "phase $1 done at ${SECONDS}s"
}
ksmc() { # ksmc PHASE PORT TEXT: kernel SMC client
  printf '%s' "$3" | timeout 20 env LD_PRELOAD="$B/smc-preload.so" socat -t 5 -T 20 - "TCP:$PEER:$2" \
    >"$LAB_OUT/reply-$1.txt" || { echo "phase $1: socat failed"; rc=1; }
  phase_end "$1"
}
probe() { # probe PHASE PORT [ARGS...]: smc-opt-probe connect inside the BPF cgroup
  local phase=$1 port=$2
  shift 2
  smco_in_cgroup "$CG" timeout 25 "$O/smc-opt-probe" connect "$PEER" "$port" --decline-if-peer "$DECL" \
    --send "app-$phase-$port" --reply-file "$LAB_OUT/reply-$phase.json" "$@" >"$LAB_OUT/probe-$phase.json" ||
    { echo "phase $phase: probe failed"; rc=1; }
  cat "$LAB_OUT/probe-$phase.json"
  phase_end "$phase"
}

ksmc nobpf 7101 app-nobpf-7101
ksmc bpf 7100 app-bpf-7100
ksmc rtx 7102 app-rtx-7102
printf '%s' app-plain-7100 | timeout 20 socat -t 5 -T 20 - "TCP:$PEER:7100" >"$LAB_OUT/reply-plain.txt" ||
  { echo "phase plain: socat failed"; rc=1; }
phase_end plain

mkdir -p "$CG"
"$O/smc-option-loader" attach "$CG" --mark "$MARK" >"$LAB_OUT/attach.json" || { echo "attach failed"; exit 1; }
cat "$LAB_OUT/attach.json"
probe marked 7200 --mark "$MARK"
probe unmarked 7200
probe syn 7101 --mark "$MARK"
"$O/smc-option-loader" dump >"$LAB_OUT/bpf-conns.json"
"$O/smc-option-loader" stats >"$LAB_OUT/bpf-stats.json"
"$O/smc-option-loader" detach "$CG" >"$LAB_OUT/detach.json" || { echo "detach failed"; rc=1; }
"$O/smc-option-loader" status "$CG" >"$LAB_OUT/status-detached.json"
cat "$LAB_OUT/detach.json" "$LAB_OUT/status-detached.json"
probe detached 7200 --mark "$MARK"
cat "$LAB_OUT/bpf-stats.json"
echo "node0 done rc=$rc"
exit "$rc"
