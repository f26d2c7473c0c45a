#!/usr/bin/env bash
# Build the SMC TCP option sock_ops program and its loader into
# ${SMC_CACHE:-$HOME/.cache/smc-operator}/bpf/ and print that directory:
#
#   smc_option.bpf.o     clang -target bpf (UAPI linux/bpf.h + libbpf's bpf_helpers.h, no vmlinux.h)
#   smc-option-loader    gcc, links libbpf
#
# Rebuilds only what is older than its sources (or this script). Needs clang, llvm, libbpf-dev,
# linux-libc-dev (Debian bookworm packages). Outputs never go into the repository.
#
#   sidecar/bpf/build.sh
#   SMCO_OUT=/some/dir sidecar/bpf/build.sh
set -euo pipefail
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="${SMCO_OUT:-${SMC_CACHE:-$HOME/.cache/smc-operator}/bpf}"
CC="${CC:-gcc}"
CLANG="${CLANG:-clang}"
mkdir -p "$OUT"

# stale TARGET SOURCE...: true when TARGET is missing or older than any SOURCE.
stale() {
  local target=$1 s
  shift
  [[ -e "$target" ]] || return 0
  for s in "$@" "$SRC/build.sh"; do
    [[ "$target" -nt "$s" ]] || return 0
  done
  return 1
}

# Write to a temp name first so concurrent builds (and running VMs) never see half a file.
obj="$OUT/smc_option.bpf.o"
if stale "$obj" "$SRC/smc_option.bpf.c" "$SRC/smc-option.h"; then
  tmp="$(mktemp "$obj.XXXXXX")"
  multiarch="$("$CC" -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)"
  # -g: libbpf needs the BTF of the .maps section (pinning by name); -mcpu=v3: kernel 5.1+.
  "$CLANG" -O2 -g -Wall -Werror -target bpf -mcpu=v3 -I"$SRC" -I"/usr/include/$multiarch" \
    -c "$SRC/smc_option.bpf.c" -o "$tmp"
  mv -f "$tmp" "$obj"
fi

loader="$OUT/smc-option-loader"
if stale "$loader" "$SRC/smc-option-loader.c" "$SRC/smc-option.h"; then
  tmp="$(mktemp "$loader.XXXXXX")"
  "$CC" -O2 -Wall -Wextra -Werror ${SMCO_CFLAGS:-} -I"$SRC" -o "$tmp" "$SRC/smc-option-loader.c" -lbpf
  chmod 0755 "$tmp"
  mv -f "$tmp" "$loader"
fi
echo "$OUT"
