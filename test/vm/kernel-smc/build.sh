#!/usr/bin/env bash
# Build the kernel-SMC lab tools (C, gcc) into ${SMC_CACHE:-$HOME/.cache/smc-operator}/kernel-smc/
# and print that directory. Rebuilds only what is older than its sources; the VMs see the
# result through the host's root file system (read-only), so build on the host before a run.
#
#   test/vm/kernel-smc/build.sh   # prints .../kernel-smc (smc-setup smc-stats smc-perf smc-preload.so)
#   KSMC_CFLAGS=-g test/vm/kernel-smc/build.sh
set -euo pipefail
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="${SMC_CACHE:-$HOME/.cache/smc-operator}/kernel-smc"
CC="${CC:-gcc}"
CFLAGS=(-O2 -Wall -Wextra -Wno-unused-function ${KSMC_CFLAGS:-})
mkdir -p "$OUT"

# build TARGET SOURCE [extra flags...]: compile when TARGET is missing or older than SOURCE
# or the shared header; write to a temp name first so concurrent builds never see half a file.
build() {
  local target="$OUT/$1" src="$SRC/$2"
  shift 2
  if [[ -x "$target" && "$target" -nt "$src" && "$target" -nt "$SRC/ksmc-nl.h" && "$target" -nt "$SRC/build.sh" ]]; then
    return 0
  fi
  local tmp
  tmp="$(mktemp "$target.XXXXXX")"
  "$CC" "${CFLAGS[@]}" "$@" -o "$tmp" "$src"
  chmod 0755 "$tmp"
  mv -f "$tmp" "$target"
}

build smc-setup smc-setup.c
build smc-stats smc-stats.c
build smc-perf smc-perf.c
build smc-preload.so smc-preload.c -shared -fPIC -ldl
echo "$OUT"
