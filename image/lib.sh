# shellcheck shell=bash
# Helpers of image/build.sh; sourced. write_layer is the reproducible layer writer (also used by
# test/unit/image.test.ts): callers set SOURCE_DATE_EPOCH, LC_ALL=C and umask 022.

log() { printf '[image %4ds] %s\n' "$SECONDS" "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

# write_layer DIR OUT.tar.gz: DIR's tree as a gzip'd tar whose bytes depend only on names, contents,
# modes and link targets: sorted entries, root-owned, every mtime SOURCE_DATE_EPOCH, no atime /
# ctime / PID in PAX headers, hard links stored as files, gzip without name or time.
write_layer() {
  local dir=$1 out=$2
  local -a top
  mapfile -t top < <(cd "$dir" && find . -mindepth 1 -maxdepth 1 -printf '%P\n' | LC_ALL=C sort)
  ((${#top[@]} > 0)) || die "empty layer: $dir"
  tar --create --format=posix --sort=name --owner=0 --group=0 --numeric-owner --hard-dereference \
    --mtime="@${SOURCE_DATE_EPOCH:?}" --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
    --directory="$dir" -- "${top[@]}" | gzip -n >"$out.tmp"
  mv -f "$out.tmp" "$out"
}

# write_archive LAYOUT_DIR OUT.tar: the OCI layout as an (uncompressed: blobs are gzip'd) tar.
write_archive() {
  local dir=$1 out=$2
  tar --create --format=posix --sort=name --owner=0 --group=0 --numeric-owner \
    --mtime="@${SOURCE_DATE_EPOCH:?}" --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
    --directory="$dir" -f "$out.tmp" -- oci-layout index.json manifest.json blobs
  mv -f "$out.tmp" "$out"
}

# fetch_debs DIR PKG...: the candidate .deb of each package (current apt lists) into DIR, checked
# against the lists' SHA256; fills DEB_FILE[pkg] and DEB_VERSION[pkg].
declare -gA DEB_FILE=() DEB_VERSION=()
fetch_debs() {
  local dir=$1 file hash pkg
  shift
  mkdir -p "$dir"
  local -a pkgs missing=()
  mapfile -t pkgs < <(printf '%s\n' "$@" | LC_ALL=C sort -u)
  local uris
  # Not from DIR: apt-get leaves out packages whose .deb is in the current directory.
  uris="$(cd / && apt-get download --print-uris "${pkgs[@]}")" ||
    die "apt-get download --print-uris failed (run apt-get update?)"
  while read -r _ file _ hash; do
    [[ -n $file ]] || continue
    pkg=${file%%_*}
    DEB_FILE[$pkg]="$dir/$file"
    DEB_VERSION[$pkg]="$(printf '%s' "${file#*_}" | sed 's/_[^_]*\.deb$//; s/%3a/:/g')"
    if [[ -f $dir/$file ]] && [[ "SHA256:$(sha256sum "$dir/$file" | cut -d' ' -f1)" == "$hash" ]]; then
      continue
    fi
    rm -f "$dir/$file"
    missing+=("$pkg")
  done <<<"$uris"
  if ((${#missing[@]} > 0)); then
    log "downloading ${#missing[@]} packages: ${missing[*]}"
    (cd "$dir" && apt-get download -qq -o APT::Sandbox::User=root "${missing[@]}") >&2 ||
      die "apt-get download failed"
  fi
  for pkg in "${pkgs[@]}"; do
    [[ -f ${DEB_FILE[$pkg]:-/nonexistent} ]] || die "no .deb for $pkg"
  done
}

# extract_debs ROOT NAME PKG...: unpacks the packages (no maintainer scripts), drops documentation,
# locales and iconv modules, and records the versions in /usr/share/smc-image/NAME.packages.
extract_debs() {
  local root=$1 name=$2 pkg
  shift 2
  mkdir -p "$root/usr/share/smc-image"
  for pkg in "$@"; do
    dpkg-deb -x "${DEB_FILE[$pkg]:?$pkg was not fetched}" "$root"
    printf '%s %s\n' "$pkg" "${DEB_VERSION[$pkg]}"
  done | LC_ALL=C sort -u >"$root/usr/share/smc-image/$name.packages"
  rm -rf "$root"/usr/share/{doc,doc-base,man,info,lintian,locale,bug,bash-completion,apport} \
    "$root"/usr/lib/x86_64-linux-gnu/gconv "$root"/etc/{init.d,logrotate.d,ufw,default} "$root"/lib/systemd
  # dpkg-deb -x keeps the package's directory modes; the layer's root directory itself is not in the tar.
  chmod 0755 "$root"
}

# busybox_links ROOT: a symlink to /bin/busybox for every applet whose path is still free.
busybox_links() {
  local root=$1 applet
  while read -r applet; do
    [[ -e $root/$applet || -L $root/$applet ]] && continue
    mkdir -p "$root/$(dirname "$applet")"
    ln -s /bin/busybox "$root/$applet"
  done < <("$root/bin/busybox" --list-full)
}

# prune_verbs_providers ROOT NAME...: keeps only the named libibverbs providers (e.g. rxe mlx5):
# their /etc/libibverbs.d/NAME.driver, libibverbs/libNAME-rdmav*.so and the libNAME.so.* they link to.
prune_verbs_providers() {
  local root=$1 f stem keep
  shift
  local -a names=("$@")
  local libdir=$root/usr/lib/x86_64-linux-gnu
  for f in "$root"/etc/libibverbs.d/*.driver "$libdir"/libibverbs/lib*-rdmav*.so; do
    stem=$(basename "$f")
    stem=${stem%.driver}
    stem=${stem#lib}
    stem=${stem%-rdmav*}
    keep=0
    for n in "${names[@]}"; do [[ $stem == "$n" ]] && keep=1; done
    ((keep)) || rm -f "$f"
  done
  # Direct-verbs libraries shipped by ibverbs-providers itself (libefa, libmana, libmlx4, libmlx5).
  while read -r f; do
    stem=$(basename "$f")
    stem=${stem#lib}
    stem=${stem%%.so*}
    keep=0
    for n in "${names[@]}"; do [[ $stem == "$n" ]] && keep=1; done
    ((keep)) || rm -f "$root/$f"
  done < <(dpkg-deb --fsys-tarfile "${DEB_FILE[ibverbs-providers]}" | tar -t |
    sed -n 's|^\./\(usr/lib/x86_64-linux-gnu/lib[^/]*\.so[^/]*\)$|\1|p')
}

# merge_layers DEST NAME...: the layers' staging trees ($WORK/NAME) stacked in DEST (hard links).
merge_layers() {
  local dest=$1 name
  shift
  rm -rf "$dest"
  mkdir -p "$dest"
  for name in "$@"; do
    cp -a -l -f "$WORK/$name/." "$dest/"
  done
}

# in_root ROOT CMD...: runs CMD chrooted in ROOT with /dev and /proc mounted in a private mount
# namespace (unmounted when it ends).
in_root() {
  local root=$1
  shift
  mkdir -p "$root/dev" "$root/proc"
  unshare --mount --propagation private -- sh -c \
    'mount --rbind /dev "$1/dev" && mount -t proc proc "$1/proc" &&
      exec env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root chroot "$@"' \
    in_root "$root" "$@" || die "in the image: $* failed"
}

# check_elf_closure ROOT DIR...: every dynamically linked ELF file under ROOT/DIR resolves all its
# libraries inside ROOT (ld.so --list in a chroot).
check_elf_closure() {
  local root=$1 f magic out bad=0
  shift
  local -a dirs=()
  for f in "$@"; do [[ -d $root$f ]] && dirs+=("$root$f"); done
  while IFS= read -r -d '' f; do
    IFS= read -r -d '' -n 4 magic <"$f" || true
    [[ $magic == $'\x7fELF' ]] || continue
    readelf -d "$f" 2>/dev/null | grep -q '(NEEDED)' || continue
    out="$(chroot "$root" /lib64/ld-linux-x86-64.so.2 --list "/${f#"$root"/}" 2>&1)" || true
    if [[ $out == *"not found"* ]]; then
      log "missing libraries for /${f#"$root"/}:$(grep 'not found' <<<"$out" | tr -s '\t\n' ' ')"
      bad=1
    fi
  done < <(find "${dirs[@]}" -type f \( -perm -u+x -o -name '*.so' -o -name '*.so.*' -o -name '*.node' \) -print0)
  ((bad == 0)) || die "incomplete library closure in $root"
}
