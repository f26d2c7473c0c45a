# Sourced by the lab scripts of test/vm/smc-option.test.ts (and usable by hand in a VM).
#
# smco_dir prints the directory with smc_option.bpf.o, smc-option-loader and smc-opt-probe built
# by test/vm/smc-option/build.sh on the host. Candidates, in order: $SMCO_DIR (the host's path as
# build.sh printed it), ${SMC_CACHE:-$HOME/.cache/smc-operator}/bpf, and both under /run/hostfs
# (a lab VM mounts tmpfs over /root and /tmp, hiding a host cache there). Nothing is built here:
# the guest's file system is the host's, read-only.
smco_dir() {
  local c
  for c in "${SMCO_DIR:-}" "${SMCO_DIR:+/run/hostfs$SMCO_DIR}" "${SMC_CACHE:-$HOME/.cache/smc-operator}/bpf" \
    "/run/hostfs${SMC_CACHE:-/root/.cache/smc-operator}/bpf"; do
    if [[ -n "$c" && -f "$c/smc_option.bpf.o" && -x "$c/smc-option-loader" && -x "$c/smc-opt-probe" ]]; then
      echo "$c"
      return 0
    fi
  done
  echo "smco_dir: run test/vm/smc-option/build.sh on the host first" >&2
  return 1
}

# smco_in_cgroup CGROUP CMD...: run CMD as a member of CGROUP (a cgroup v2 directory), so its
# sockets are covered by the programs attached there. Sockets belong to the cgroup of the task
# that creates them.
smco_in_cgroup() {
  local cg=$1
  shift
  (
    echo "$BASHPID" >"$cg/cgroup.procs" || exit 1
    exec "$@"
  )
}
