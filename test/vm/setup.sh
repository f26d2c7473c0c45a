#!/usr/bin/env bash
# Prepares the two-node soft-RoCE VM lab (see docs/vm-lab.md). Idempotent.
#
#   test/vm/setup.sh            # download + unpack Debian trixie's 6.12 kernel, build the initramfs
#   SMC_CACHE=/some/dir test/vm/setup.sh
#   test/vm/setup.sh --force    # redo everything
#
# Result, under ${SMC_CACHE:-$HOME/.cache/smc-operator}/vm/:
#   kernel/            unpacked linux-image package (boot/vmlinuz-*, lib/modules/<ver>/, depmod'ed)
#   vmlinuz            symlink to the kernel image
#   initramfs.cpio.gz  busybox + virtio/9p modules; mounts the host's / read-only over 9p
#   kver               the kernel version string
# Host packages needed: qemu-system-x86 busybox-static cpio kmod xz-utils (installed if missing
# and we are root).
set -euo pipefail

FORCE=0
[[ "${1:-}" == "--force" ]] && FORCE=1

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${SMC_CACHE:-$HOME/.cache/smc-operator}/vm"
mkdir -p "$CACHE"
log() { echo "[vm-setup] $*" >&2; }
# One setup at a time per cache dir.
exec 9>"$CACHE/.setup.lock"
if ! flock -w 1800 9; then log "timed out waiting for $CACHE/.setup.lock"; exit 1; fi

if [[ $FORCE == 1 ]]; then
  log "--force: removing $CACHE/{kernel,initramfs.cpio.gz,kver,vmlinuz,apt}"
  rm -rf "$CACHE/kernel" "$CACHE/initramfs.cpio.gz" "$CACHE/kver" "$CACHE/vmlinuz" "$CACHE/apt" "$CACHE/.kernel-ok"
fi

# --- host tools -------------------------------------------------------------------------------
need_pkgs=()
command -v qemu-system-x86_64 >/dev/null || need_pkgs+=(qemu-system-x86)
[[ -x /bin/busybox ]] && /bin/busybox --list | grep -qx switch_root || need_pkgs+=(busybox-static)
command -v cpio >/dev/null || need_pkgs+=(cpio)
command -v depmod >/dev/null || need_pkgs+=(kmod)
command -v xz >/dev/null || need_pkgs+=(xz-utils)
command -v rdma >/dev/null || need_pkgs+=(iproute2)
command -v ibv_devinfo >/dev/null || need_pkgs+=(ibverbs-utils ibverbs-providers rdma-core)
command -v ib_write_bw >/dev/null || need_pkgs+=(perftest)
if ((${#need_pkgs[@]})); then
  if [[ $(id -u) == 0 ]]; then
    log "installing host packages: ${need_pkgs[*]}"
    timeout 900 apt-get update -qq || true
    DEBIAN_FRONTEND=noninteractive timeout 1800 apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}"
  else
    log "missing host packages (install them as root): ${need_pkgs[*]}"
    exit 1
  fi
fi

# --- kernel -----------------------------------------------------------------------------------
if [[ ! -f "$CACHE/.kernel-ok" ]]; then
  APT="$CACHE/apt"
  mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial" "$APT/debs"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
    >"$APT/sources.list"
  # Some keyring packages ship the trixie key only as a separate file.
  if [[ -f /usr/share/keyrings/debian-archive-trixie-stable.gpg ]]; then
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-trixie-stable.gpg,/usr/share/keyrings/debian-archive-trixie-automatic.gpg] http://deb.debian.org/debian trixie main" \
      >"$APT/sources.list"
  fi
  APTOPTS=(-o "Dir::Etc::SourceList=$APT/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
    -o "Dir::State::Lists=$APT/lists" -o "Dir::Cache=$APT/cache" -o "Dir::State::status=/dev/null"
    -o "APT::Architecture=amd64" -o "APT::Architectures=amd64" -o "Debug::NoLocking=1")
  [[ $(id -u) == 0 ]] && APTOPTS+=(-o "APT::Sandbox::User=root")
  log "apt-get update (trixie lists into $APT)"
  timeout 900 apt-get "${APTOPTS[@]}" update -qq
  # linux-image-amd64 depends on the current linux-image-6.12.X+debY-amd64 package.
  dep=$(timeout 120 apt-cache "${APTOPTS[@]}" show linux-image-amd64 | sed -n 's/^Depends: //p' | head -n1 |
    tr ',' '\n' | sed 's/ *(.*//; s/^ *//' | grep -E '^linux-image-6\.12\.' | head -n1 || true)
  if [[ -z "$dep" ]]; then
    dep=$(timeout 120 apt-cache "${APTOPTS[@]}" pkgnames linux-image-6.12 | grep -E '^linux-image-6\.12\.[0-9]+.*-amd64$' |
      sort -V | tail -n1 || true)
  fi
  [[ -n "$dep" ]] || { log "cannot resolve the trixie linux-image-6.12 package"; exit 1; }
  pkg="$dep"
  if timeout 120 apt-cache "${APTOPTS[@]}" show "${dep}-unsigned" >/dev/null 2>&1; then pkg="${dep}-unsigned"; fi
  log "kernel package: $pkg"
  (cd "$APT/debs" && rm -f ./*.deb && timeout 1800 apt-get "${APTOPTS[@]}" download "$pkg")
  deb=$(ls "$APT/debs"/*.deb | head -n1)
  log "unpacking $(basename "$deb")"
  rm -rf "$CACHE/kernel"
  mkdir -p "$CACHE/kernel"
  dpkg-deb -x "$deb" "$CACHE/kernel"
  # Merged-/usr packages put modules into usr/lib/modules; depmod -b and modprobe -d want lib/.
  if [[ -d "$CACHE/kernel/usr/lib/modules" && ! -e "$CACHE/kernel/lib" ]]; then
    ln -s usr/lib "$CACHE/kernel/lib"
  fi
  kver=$(ls "$CACHE/kernel/lib/modules" | head -n1)
  [[ -n "$kver" ]] || { log "no module tree in the package"; exit 1; }
  log "depmod $kver"
  depmod -b "$CACHE/kernel" "$kver"
  echo "$kver" >"$CACHE/kver"
  ln -sfn "kernel/boot/vmlinuz-$kver" "$CACHE/vmlinuz"
  rm -f "$APT/debs"/*.deb "$APT/cache/archives"/*.deb
  rm -f "$CACHE/initramfs.cpio.gz"
  touch "$CACHE/.kernel-ok"
else
  log "kernel present: $(cat "$CACHE/kver")"
fi
kver=$(cat "$CACHE/kver")
MODDIR="$CACHE/kernel/lib/modules/$kver"

# Loaded at boot in every VM (crc32_generic before rdma_rxe: rxe needs the crc32 algorithm).
LAB_MODULES="virtio_net crc32_generic rdma_rxe ib_uverbs rdma_ucm smc smc_diag"

# --- initramfs --------------------------------------------------------------------------------
INIT_SRC="$HERE/initramfs-init.sh"
stamp="$(cat "$INIT_SRC" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-16)"
if [[ -f "$CACHE/initramfs.cpio.gz" && "$(cat "$CACHE/initramfs.stamp" 2>/dev/null)" == "$stamp" ]]; then
  log "initramfs up to date"
else
  log "building initramfs"
  work=$(mktemp -d "$CACHE/initramfs.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  mkdir -p "$work"/{bin,sbin,dev,proc,sys,newroot,modules,usr/bin,usr/sbin}
  cp /bin/busybox "$work/bin/busybox"
  for app in sh mount umount mkdir insmod switch_root sleep cat echo ls poweroff hostname ip ln chmod; do
    ln -s busybox "$work/bin/$app"
  done
  # Modules, uncompressed, with their dependencies first: 9p (to reach the host root) and then
  # the lab's network/RDMA/SMC set (loading them from RAM is much faster than modprobe over 9p).
  # modules/order lists them all; the initramfs insmods them in this order.
  : >"$work/modules/order"
  for m in virtio_pci 9pnet_virtio 9p $LAB_MODULES; do
    # --show-depends prints "insmod /path/x.ko[.xz]" lines, dependencies first; builtins as "builtin x".
    modprobe -d "$CACHE/kernel" -S "$kver" --show-depends "$m" | awk '$1=="insmod"{print $2}' | while read -r ko; do
      base=$(basename "$ko"); base=${base%.xz}; base=${base%.zst}
      grep -qx "$base" "$work/modules/order" && continue
      case "$ko" in
        *.xz) xz -dc "$ko" >"$work/modules/$base" ;;
        *.zst) zstd -dc "$ko" >"$work/modules/$base" ;;
        *) cp "$ko" "$work/modules/$base" ;;
      esac
      echo "$base" >>"$work/modules/order"
    done
  done
  log "initramfs modules: $(tr '\n' ' ' <"$work/modules/order")"
  install -m 0755 "$INIT_SRC" "$work/init"
  (cd "$work" && find . -print0 | cpio --null -o -H newc --quiet | gzip -1) >"$CACHE/initramfs.cpio.gz.tmp"
  mv "$CACHE/initramfs.cpio.gz.tmp" "$CACHE/initramfs.cpio.gz"
  echo "$stamp" >"$CACHE/initramfs.stamp"
fi
log "ready: kernel $kver, $(du -h "$CACHE/initramfs.cpio.gz" | cut -f1) initramfs in $CACHE"
