#!/usr/bin/env bash
# Build everything test/vm/smc-option.test.ts needs into ${SMC_CACHE:-$HOME/.cache/smc-operator}/bpf/
# and print that directory: the sock_ops program and its loader (sidecar/bpf/build.sh) and the
# lab probe smc-opt-probe (gcc, no libraries). Rebuilds only what is older than its sources.
# Run on the host: the VMs see the result read-only (under /run/hostfs when it is below /root or /tmp).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BPF_SRC="$(cd "$HERE/../../../sidecar/bpf" && pwd)"
OUT="$("$BPF_SRC/build.sh")"
probe="$OUT/smc-opt-probe"
if [[ ! -x "$probe" || ! "$probe" -nt "$HERE/smc-opt-probe.c" || ! "$probe" -nt "$BPF_SRC/smc-option.h" ||
  ! "$probe" -nt "$HERE/build.sh" ]]; then
  tmp="$(mktemp "$probe.XXXXXX")"
  "${CC:-gcc}" -O2 -Wall -Wextra -Werror -I"$BPF_SRC" -o "$tmp" "$HERE/smc-opt-probe.c"
  chmod 0755 "$tmp"
  mv -f "$tmp" "$probe"
fi
echo "$OUT"
