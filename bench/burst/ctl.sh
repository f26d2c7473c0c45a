#!/usr/bin/env bash
# node0's control port for bench/burst (socat ... fork SYSTEM): one command line in, the answer out.
#   metrics POD  -> that pod's sidecar /metrics, the lines node.sh's METRICS_KEEP matches
#   netstat POD  -> that pod's /proc/net/netstat and /proc/net/snmp
#   mark NAME    -> appends {"mark":"NAME"} to web's gauge samples (the phases of the burst)
#   done         -> node0 stops serving
read -r cmd arg
case "$cmd" in
metrics | netstat)
  [[ $arg =~ ^[a-z]+$ && -e /run/netns/$arg ]] || { echo "no pod '$arg'"; exit 0; }
  if [[ $cmd == metrics ]]; then
    ip netns exec "$arg" curl -sf --max-time 20 http://127.0.0.1:15190/metrics | grep -E "${METRICS_KEEP:?}"
  else
    ip netns exec "$arg" cat /proc/net/netstat /proc/net/snmp
  fi
  ;;
mark)
  [[ $arg =~ ^[a-z0-9-]+$ && -n ${BURST_SAMPLES:-} ]] && printf '{"mark":"%s"}\n' "$arg" >>"$BURST_SAMPLES"
  echo ok
  ;;
done) : >/tmp/burst-done && echo ok ;;
*) echo "unknown $cmd" ;;
esac
