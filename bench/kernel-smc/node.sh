# VM side of bench/kernel-smc/run.sh (both nodes run it). node1 serves plain TCP on 5201 and SMC
# (smc-perf under the preload shim) on 5202; node0 measures and prints BENCH lines (JSON).
set -u
. "$LAB_REPO/test/vm/kernel-smc/lib.sh"
B="$(ksmc_dir)" || { echo "kernel-smc tools not found"; exit 1; }
PRE="$B/smc-preload.so"
"$B/smc-setup" --lab >/dev/null || { echo "smc-setup failed"; exit 1; }

if [[ $LAB_NODE == 1 ]]; then
  timeout 200 "$B/smc-perf" server -p 5201 >/dev/null &
  LD_PRELOAD="$PRE" timeout 200 "$B/smc-perf" server -p 5202 >/dev/null
  rc=$?
  wait || rc=1
  exit $rc
fi

P="$LAB_PEER_IP"
BYTES=$((BENCH_BULK_MIB * 1048576))
rc=0
bench() { # bench LABEL tcp|smc ARGS...: one smc-perf client run, its JSON line prefixed with BENCH
  local label=$1 kind=$2 line pre=()
  shift 2
  [[ $kind == smc ]] && pre=(env LD_PRELOAD="$PRE")
  if line="$(timeout 120 "${pre[@]}" "$B/smc-perf" "$@" -l "$label")"; then
    echo "BENCH $line"
  else
    echo "bench $label failed: $kind $*"
    rc=1
  fi
}

# Wait for both servers; the SMC warm-up also builds the link group (the first SMC-R connect
# takes 100-250 ms more than later ones).
timeout 90 "$B/smc-perf" rtt "$P" -p 5201 -n 10 -w 0 -r 80 >/dev/null || { echo "TCP server not reachable"; exit 1; }
timeout 90 env LD_PRELOAD="$PRE" "$B/smc-perf" rtt "$P" -p 5202 -n 10 -w 0 -r 80 >/dev/null || { echo "SMC server not reachable"; exit 1; }
echo "KSTATS before $("$B/smc-stats" stats fallback)"
for round in $(seq 1 "$BENCH_ROUNDS"); do
  bench "tcp-rtt-$round" tcp rtt "$P" -p 5201 -s 64 -n "$BENCH_PINGS" -w 100
  bench "smc-rtt-$round" smc rtt "$P" -p 5202 -s 64 -n "$BENCH_PINGS" -w 100
  bench "tcp-bulk-$round" tcp bulk "$P" -p 5201 -b "$BYTES"
  bench "smc-bulk-$round" smc bulk "$P" -p 5202 -b "$BYTES"
done
echo "KSTATS after $("$B/smc-stats" stats fallback)"
echo "SMC_CONNS $((2 * BENCH_ROUNDS))"
"$B/smc-perf" quit "$P" -p 5201 || rc=1
"$B/smc-perf" quit "$P" -p 5202 --smc || rc=1
exit $rc
