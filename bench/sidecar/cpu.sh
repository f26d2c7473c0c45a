#!/usr/bin/env bash
# Prints "SIDECAR_TICKS PROGRAM_TICKS" for this node: utime+stime (all threads, clock ticks) of
# every sidecar process (`.../sidecar/src/main.js run`) and of every smc-perf server. Builtins
# only (no fork per process: under TCG each fork costs milliseconds). Used by node.sh locally and,
# on node0, through the control port (ctl.sh).
s=0 p=0
for d in /proc/[0-9]*; do
  args=()
  mapfile -d '' args <"$d/cmdline" 2>/dev/null || continue
  c="${args[*]}"
  case "$c" in
  *sidecar/src/main.js\ run*) k=s ;;
  *smc-perf\ server*) k=p ;;
  *) continue ;;
  esac
  read -r line <"$d/stat" 2>/dev/null || continue
  read -r -a f <<<"${line##*) }"
  ((t = f[11] + f[12]))
  if [[ $k == s ]]; then ((s += t)); else ((p += t)); fi
done
echo "$s $p"
