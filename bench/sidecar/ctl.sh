#!/usr/bin/env bash
# node0's control port (socat ... fork SYSTEM): one command line in, one answer line out.
#   cpu  -> "SIDECAR_TICKS PROGRAM_TICKS" of node0 (cpu.sh)
#   done -> node0 stops serving
read -r cmd
case "$cmd" in
cpu) exec bash "$(dirname "$0")/cpu.sh" ;;
done) : >/tmp/bench-done && echo ok ;;
*) echo "unknown $cmd" ;;
esac
