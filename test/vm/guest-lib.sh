# Helpers for lab scripts (bash). Sourced automatically in the VMs (BASH_ENV), so every lab script
# and every bash it starts can call them. Only defines functions.

# lab_retry SECONDS CMD...: run CMD until it succeeds (every 0.3 s) or SECONDS pass; returns CMD's
# last status. For clients whose server on the peer may not listen yet.
lab_retry() {
  local limit=$1 rc=1 start=$SECONDS
  shift
  while :; do
    "$@" && return 0
    rc=$?
    ((SECONDS - start >= limit)) && return "$rc"
    sleep 0.3
  done
}

# lab_wait_tcp HOST PORT [SECONDS=60]: wait until a TCP connect to HOST:PORT succeeds.
lab_wait_tcp() {
  local host=$1 port=$2 limit=${3:-60}
  lab_retry "$limit" timeout 2 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null
}

# lab_wait_file PATH [SECONDS=60]: wait until PATH exists (e.g. a file the peer wrote into its own
# out dir is not visible here; use TCP for cross-node signals).
lab_wait_file() {
  local path=$1 limit=${2:-60} start=$SECONDS
  until [[ -e "$path" ]]; do
    ((SECONDS - start >= limit)) && return 1
    sleep 0.1
  done
}

# lab_poweroff_now: have the host kill this VM at once (like a power loss); never returns.
lab_poweroff_now() {
  sync
  : >"$LAB_OUT/poweroff-now"
  while :; do sleep 1; done
}
