#!/usr/bin/env bash
# Prints "PROGRAM_TICKS POD=TICKS ..." for this node: utime+stime (all threads, clock ticks) of
# every smc-perf server, and of the sidecar processes (`.../sidecar/src/main.js run`) per pod
# (their env BENCH_POD, set by node.sh). Builtins only (no fork per process: under TCG each fork
# costs milliseconds). Used by node.sh locally and, on node0, through the control port (ctl.sh).
declare -A pod=()
p=0
for d in /proc/[0-9]*; do
  args=()
  mapfile -d '' args 2>/dev/null <"$d/cmdline" || continue
  c="${args[*]}"
  case "$c" in
  *sidecar/src/main.js\ run* | *smc-perf\ server*) ;;
  *) continue ;;
  esac
  read -r line 2>/dev/null <"$d/stat" || continue
  read -r -a f <<<"${line##*) }"
  ((t = f[11] + f[12]))
  if [[ $c == *smc-perf\ server* ]]; then
    ((p += t))
    continue
  fi
  env=()
  mapfile -d '' env 2>/dev/null <"$d/environ" || continue
  for e in "${env[@]}"; do
    [[ $e == BENCH_POD=* ]] && ((pod[${e#BENCH_POD=}] += t))
  done
done
out="$p"
for k in "${!pod[@]}"; do out+=" $k=${pod[$k]}"; done
echo "$out"
