# Sourced by the kernel-smc wrappers (smc-setup, smc-stats, smc-perf, smc-run) and by lab
# scripts: finds the tools built by build.sh, on the host or inside a lab VM.
#
# ksmc_dir prints the directory holding the binaries. Candidates, in order: $KSMC_DIR (the
# host's path, as build.sh printed it), ${SMC_CACHE:-$HOME/.cache/smc-operator}/kernel-smc, and
# both under /run/hostfs (a lab VM mounts tmpfs over /root and /tmp, which hides a host cache
# there; /run/hostfs is the host's root without those mounts). If none has the tools, build.sh
# runs (into a writable cache, or into $TMPDIR/ksmc inside a VM).
ksmc_dir() {
  local here c
  here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
  for c in "${KSMC_DIR:-}" "${KSMC_DIR:+/run/hostfs$KSMC_DIR}" "${SMC_CACHE:-$HOME/.cache/smc-operator}/kernel-smc" \
    "/run/hostfs${SMC_CACHE:-/root/.cache/smc-operator}/kernel-smc" "${TMPDIR:-/tmp}/ksmc/kernel-smc"; do
    if [[ -n "$c" && -x "$c/smc-stats" && -x "$c/smc-setup" && -x "$c/smc-perf" && -f "$c/smc-preload.so" ]]; then
      echo "$c"
      return 0
    fi
  done
  if [[ -w "${SMC_CACHE:-$HOME/.cache/smc-operator}" || ! -e "${SMC_CACHE:-$HOME/.cache/smc-operator}" ]] &&
    mkdir -p "${SMC_CACHE:-$HOME/.cache/smc-operator}" 2>/dev/null; then
    "$here/build.sh"
  else
    SMC_CACHE="${TMPDIR:-/tmp}/ksmc" "$here/build.sh"
  fi
}
