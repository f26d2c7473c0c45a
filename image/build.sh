#!/usr/bin/env bash
# Builds the project's OCI images without a container engine, from Debian 12 packages
# (apt-get download + dpkg-deb -x), the host's node binary and the built project:
#
#   ${SMC_IMAGE_OUT:-dist/image}/smc-operator.oci.tar   ghcr.io/smc-operator/smc-operator:<appVersion>
#   ${SMC_IMAGE_OUT:-dist/image}/lab-apps.oci.tar       registry.k8s.io/pause:3.10.1 and
#                                                       smc.dev/lab/{busybox,nginx,redis,iperf3}:1
#   ${SMC_IMAGE_OUT:-dist/image}/images.txt             name, manifest digest, gzip and tar bytes
#
# Each archive is an OCI image layout (plus a docker-style manifest.json) that `ctr images import`,
# `kind load image-archive`, `skopeo copy oci-archive:...` and `docker load` / `podman load` accept.
# Reproducible: every timestamp is SOURCE_DATE_EPOCH (default: the last commit's time), so the
# same inputs give the same digests. Needs root (chroot checks), apt lists (apt-get update),
# native/build/Release/smc_verbs.node, dist/ (npm run build) including dist/bin/smc.js, and clang +
# libbpf-dev for sidecar/bpf/build.sh.
#
#   npm run image                         # npm run build:ts, then this script
#   IMAGE_REPOSITORY=registry.local:5000/smc image/build.sh
#
# Downloaded .debs are cached in
# ${SMC_CACHE:-$HOME/.cache/smc-operator}/image/.
set -euo pipefail
umask 022
export LC_ALL=C TZ=UTC
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
# shellcheck source=image/lib.sh
source "$HERE/lib.sh"

OUT="$(mkdir -p "${SMC_IMAGE_OUT:-$REPO/dist/image}" && cd "${SMC_IMAGE_OUT:-$REPO/dist/image}" && pwd)"
CACHE="${SMC_CACHE:-$HOME/.cache/smc-operator}/image"
IMAGE_REPOSITORY="${IMAGE_REPOSITORY:-ghcr.io/smc-operator/smc-operator}"
SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git -C "$REPO" log -1 --format=%ct)}"
export SOURCE_DATE_EPOCH

[[ $EUID -eq 0 ]] || die "run as root (the image checks chroot into the staged file systems)"
[[ $IMAGE_REPOSITORY =~ ^[a-z0-9]([a-z0-9._/:-]*[a-z0-9])?$ ]] || die "bad IMAGE_REPOSITORY: $IMAGE_REPOSITORY"
[[ $SOURCE_DATE_EPOCH =~ ^[0-9]+$ ]] || die "SOURCE_DATE_EPOCH must be seconds since the epoch"
VERSION="$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p' "$REPO/charts/smc-operator/Chart.yaml")"
[[ -n $VERSION ]] || die "no appVersion in charts/smc-operator/Chart.yaml"
REVISION="$(git -C "$REPO" rev-parse HEAD)"
git -C "$REPO" diff --quiet HEAD -- || log "warning: the work tree has uncommitted changes; revision label says $REVISION"
SOURCE_URL="$(sed -n 's/^home: *//p' "$REPO/charts/smc-operator/Chart.yaml")"
CREATED="$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)"
NODE_BIN=/usr/bin/node
PATH_ENV=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
NODE_VERSION="$("$NODE_BIN" --version)"
ADDON="$REPO/native/build/Release/smc_verbs.node"
[[ -f $ADDON ]] || die "missing $ADDON: run npm run build:native"
for d in operator sidecar native bin; do
  [[ -d $REPO/dist/$d ]] || die "missing dist/$d: run npm run build:ts"
done
[[ -f $REPO/dist/bin/smc.js ]] || die "missing dist/bin/smc.js (the image's entry point): run npm run build:ts"

mkdir -p "$CACHE"
WORK="$(mktemp -d "$CACHE/build.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
L="$WORK/layers"
mkdir -p "$L"
log "SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH ($CREATED), version $VERSION, revision ${REVISION:0:12}, node $NODE_VERSION"

# Package sets. Library closures are explicit and checked below (ld.so --list inside each image).
BASE_PKGS=(libc6 libgcc-s1 libstdc++6 zlib1g)
RUNTIME_PKGS=(
  libibverbs1 ibverbs-providers libnl-3-200 libnl-route-3-200
  nftables libnftables1 libmnl0 libnftnl11 libjansson4 libgmp10 libxtables12 libedit2 libtinfo6 libbsd0 libmd0
  libbpf1 libelf1
)
SSL_PKGS=(libssl3)
NGINX_PKGS=(
  nginx nginx-common libcrypt1 libpcre2-8-0
  curl libcurl4 libnghttp2-14 libidn2-0 librtmp1 libssh2-1 libpsl5 libgssapi-krb5-2 libldap-2.5-0 libzstd1
  libbrotli1 libunistring2 libgnutls30 libhogweed6 libnettle8 libgmp10 libkrb5-3 libk5crypto3 libcom-err2
  libkrb5support0 libsasl2-2 libp11-kit0 libtasn1-6 libkeyutils1 libffi8
)
REDIS_PKGS=(
  redis-server redis-tools libatomic1 libjemalloc2 liblzf1 libsystemd0 libcap2 libgcrypt20 libgpg-error0
  liblzma5 libzstd1 liblz4-1
)
IPERF_PKGS=(iperf3 libiperf0 libsctp1)
BUSYBOX_PKGS=(busybox-static)

log "Debian packages: resolving and downloading into $CACHE/debs"
fetch_debs "$CACHE/debs" "${BASE_PKGS[@]}" "${RUNTIME_PKGS[@]}" "${SSL_PKGS[@]}" "${NGINX_PKGS[@]}" \
  "${REDIS_PKGS[@]}" "${IPERF_PKGS[@]}" "${BUSYBOX_PKGS[@]}"

# --- shared layers -------------------------------------------------------------------------------
log "layer base: ${BASE_PKGS[*]}, users, /tmp"
R="$WORK/base"
extract_debs "$R" base "${BASE_PKGS[@]}"
mkdir -p "$R/etc" "$R/root" "$R/run" "$R/tmp" "$R/var/tmp"
chmod 0700 "$R/root"
chmod 1777 "$R/tmp" "$R/var/tmp"
cat >"$R/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin
smc-sidecar:x:7609:7609:smc-sidecar:/nonexistent:/usr/sbin/nologin
nonroot:x:65532:65532:nonroot:/nonexistent:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
EOF
cat >"$R/etc/group" <<'EOF'
root:x:0:
adm:x:4:
www-data:x:33:
smc-sidecar:x:7609:
nonroot:x:65532:
nogroup:x:65534:
EOF
printf 'passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\nprotocols: files\nservices: files\n' \
  >"$R/etc/nsswitch.conf"
write_layer "$R" "$L/base.tar.gz"

log "layer busybox: busybox-static and its applet links"
R="$WORK/busybox"
extract_debs "$R" busybox "${BUSYBOX_PKGS[@]}"
busybox_links "$R"
write_layer "$R" "$L/busybox.tar.gz"

log "layer libssl3"
R="$WORK/ssl"
extract_debs "$R" ssl "${SSL_PKGS[@]}"
write_layer "$R" "$L/ssl.tar.gz"

# --- smc-operator --------------------------------------------------------------------------------
log "layer runtime: node $NODE_VERSION, libibverbs (rxe, mlx5), nftables, libbpf"
R="$WORK/runtime"
extract_debs "$R" runtime "${RUNTIME_PKGS[@]}"
prune_verbs_providers "$R" rxe mlx5
install -D -m 0755 "$NODE_BIN" "$R/usr/bin/node"
# Debug symbols are an eighth of the binary and nothing in a pod reads them.
strip --strip-unneeded "$R/usr/bin/node"
write_layer "$R" "$L/runtime.tar.gz"

log "layer app: smc bundled (image/bundle.mjs), the verbs addon, the BPF program and loader"
R="$WORK/app"
# One bundle instead of dist/ + node_modules: a pod's Node.js loads a handful of files, not ~1400.
node "$HERE/bundle.mjs" "$REPO" "$R/opt/smc/dist/bin" >&2
chmod 0755 "$R/opt/smc/dist/bin/smc.js"
install -D -m 0644 "$REPO/package.json" "$R/opt/smc/package.json"
install -D -m 0644 "$REPO/LICENSE" "$R/opt/smc/LICENSE"
install -D -m 0755 "$ADDON" "$R/opt/smc/native/build/Release/smc_verbs.node"
BPF_DIR="$("$REPO/sidecar/bpf/build.sh" | tail -n 1)"
install -D -m 0644 "$BPF_DIR/smc_option.bpf.o" "$R/opt/smc/bpf/smc_option.bpf.o"
install -D -m 0755 "$BPF_DIR/smc-option-loader" "$R/opt/smc/bpf/smc-option-loader"
mkdir -p "$R/usr/local/bin"
ln -s /opt/smc/dist/bin/smc.js "$R/usr/local/bin/smc"
node "$HERE/oci.mjs" check-imports "$R/opt/smc/dist"
write_layer "$R" "$L/app.tar.gz"

log "checking the smc image: shared libraries, nft, the addon, smc --help"
R="$WORK/check-smc"
merge_layers "$R" base runtime app
check_elf_closure "$R" /usr /lib /lib64 /opt/smc/native /opt/smc/bpf
in_root "$R" /usr/sbin/nft --version >/dev/null
in_root "$R" /usr/bin/node -e "require('/opt/smc/native/build/Release/smc_verbs.node')"
in_root "$R" /usr/local/bin/smc --help >/dev/null
rm -rf "$R"

# --- lab applications ----------------------------------------------------------------------------
log "layer pause: image/pause.c, static"
R="$WORK/pause"
mkdir -p "$R"
gcc -Os -static -s -Wall -Wextra -Werror -o "$R/pause" "$HERE/pause.c"
write_layer "$R" "$L/pause.tar.gz"

log "layer nginx: nginx (what nginx-light installs), curl"
R="$WORK/nginx"
extract_debs "$R" nginx "${NGINX_PKGS[@]}"
# What nginx-common's postinst does, plus logs to the container's stdout / stderr.
ln -s /etc/nginx/sites-available/default "$R/etc/nginx/sites-enabled/default"
install -D -m 0644 "$R/usr/share/nginx/html/index.html" "$R/var/www/html/index.nginx-debian.html"
mkdir -p "$R/var/log/nginx" "$R/var/lib/nginx"
ln -s /dev/stdout "$R/var/log/nginx/access.log"
ln -s /dev/stderr "$R/var/log/nginx/error.log"
write_layer "$R" "$L/nginx.tar.gz"

log "layer redis: redis-server, redis-tools"
R="$WORK/redis"
extract_debs "$R" redis "${REDIS_PKGS[@]}"
write_layer "$R" "$L/redis.tar.gz"

log "layer iperf3"
R="$WORK/iperf3"
extract_debs "$R" iperf3 "${IPERF_PKGS[@]}"
write_layer "$R" "$L/iperf3.tar.gz"

log "checking the lab images"
R="$WORK/check-lab"
merge_layers "$R" base busybox ssl nginx redis iperf3
check_elf_closure "$R" /usr /lib /lib64 /bin /sbin
in_root "$R" /bin/sh -c 'echo ok | sha256sum | grep -q "^[0-9a-f]\{64\} " && command -v nc sleep >/dev/null'
in_root "$R" /usr/sbin/nginx -t -q
in_root "$R" /usr/bin/curl --version >/dev/null
in_root "$R" /usr/bin/redis-server --version >/dev/null
in_root "$R" /usr/bin/redis-benchmark --version >/dev/null
in_root "$R" /usr/bin/iperf3 --version >/dev/null
rm -rf "$R"
"$WORK/pause/pause" -v >/dev/null

# --- archives ------------------------------------------------------------------------------------
cat >"$WORK/smc.json" <<EOF
{
  "created": "$CREATED",
  "images": [
    {
      "name": "$IMAGE_REPOSITORY:$VERSION",
      "config": {
        "Entrypoint": ["/usr/local/bin/smc"],
        "User": "65532:65532",
        "WorkingDir": "/opt/smc",
        "Env": ["PATH=$PATH_ENV", "NODE_ENV=production"],
        "Labels": {
          "org.opencontainers.image.title": "smc-operator",
          "org.opencontainers.image.description": "SMC-R acceleration of pod-to-pod TCP: operator, node agent, sidecar",
          "org.opencontainers.image.version": "$VERSION",
          "org.opencontainers.image.revision": "$REVISION",
          "org.opencontainers.image.source": "$SOURCE_URL",
          "org.opencontainers.image.created": "$CREATED",
          "org.opencontainers.image.licenses": "Apache-2.0",
          "org.opencontainers.image.base.name": "debian:bookworm (packages)",
          "io.github.smc-operator.nodejs.version": "$NODE_VERSION"
        }
      },
      "layers": [
        { "file": "layers/base.tar.gz", "comment": "debian 12: ${BASE_PKGS[*]}; passwd, group" },
        { "file": "layers/runtime.tar.gz", "comment": "node $NODE_VERSION; debian 12: ${RUNTIME_PKGS[*]}" },
        { "file": "layers/app.tar.gz", "comment": "smc-operator $VERSION (${REVISION:0:12})" }
      ]
    }
  ]
}
EOF

lab_image() { # NAME USER CMD_JSON LAYER...
  local name=$1 user=$2 cmd=$3 layer sep=''
  shift 3
  printf '{ "name": "%s", "config": { %s"Cmd": %s, "Env": ["PATH=%s"], "Labels": { "org.opencontainers.image.source": "%s", "org.opencontainers.image.revision": "%s" } }, "layers": [' \
    "$name" "${user:+"\"User\": \"$user\", "}" "$cmd" "$PATH_ENV" "$SOURCE_URL" "$REVISION"
  for layer in "$@"; do
    printf '%s{ "file": "layers/%s.tar.gz", "comment": "%s" }' "$sep" "$layer" "$(layer_comment "$layer")"
    sep=', '
  done
  printf '] }'
}
layer_comment() {
  case $1 in
    base) echo "debian 12: ${BASE_PKGS[*]}; passwd, group" ;;
    busybox) echo "debian 12: busybox-static, applet links" ;;
    ssl) echo "debian 12: ${SSL_PKGS[*]}" ;;
    pause) echo "image/pause.c" ;;
    nginx) echo "debian 12: ${NGINX_PKGS[*]}" ;;
    redis) echo "debian 12: ${REDIS_PKGS[*]}" ;;
    iperf3) echo "debian 12: ${IPERF_PKGS[*]}" ;;
  esac
}
{
  printf '{ "created": "%s", "images": [\n' "$CREATED"
  # 65535 like registry.k8s.io's pause; the applications run as root like their upstream images.
  lab_image registry.k8s.io/pause:3.10.1 65535:65535 '["/pause"]' pause
  printf ',\n'
  lab_image smc.dev/lab/busybox:1 '' '["/bin/sh"]' base busybox
  printf ',\n'
  lab_image smc.dev/lab/nginx:1 '' '["/usr/sbin/nginx", "-g", "daemon off;"]' base busybox ssl nginx
  printf ',\n'
  lab_image smc.dev/lab/redis:1 '' '["/usr/bin/redis-server", "--protected-mode", "no", "--save", ""]' \
    base busybox ssl redis
  printf ',\n'
  lab_image smc.dev/lab/iperf3:1 '' '["/usr/bin/iperf3", "-s"]' base busybox ssl iperf3
  printf '\n] }\n'
} >"$WORK/lab.json"
: >"$WORK/images.txt"
for pair in smc:smc-operator lab:lab-apps; do
  spec=${pair%%:*} archive=${pair#*:}
  log "writing $OUT/$archive.oci.tar"
  node "$HERE/oci.mjs" layout "$WORK/$spec.oci" "$WORK/$spec.json" | tee -a "$WORK/images.txt" >/dev/null
  write_archive "$WORK/$spec.oci" "$OUT/$archive.oci.tar"
done
mv -f "$WORK/images.txt" "$OUT/images.txt"

echo
printf '%-48s %-73s %10s %10s\n' image 'manifest digest' gzip tar
while read -r name digest gz tarb; do
  printf '%-48s %-73s %7s MiB %6s MiB\n' "$name" "$digest" "$(mib "$gz")" "$(mib "$tarb")"
done <"$OUT/images.txt"
for f in smc-operator lab-apps; do
  printf '%s  %s MiB  sha256:%s\n' "$OUT/$f.oci.tar" "$(mib "$(stat -c %s "$OUT/$f.oci.tar")")" \
    "$(sha256sum "$OUT/$f.oci.tar" | cut -d' ' -f1)"
done
smc_tar="$(awk -v n="$IMAGE_REPOSITORY:$VERSION" '$1 == n { print $4 }' "$OUT/images.txt")"
if ((smc_tar > 200 * 1024 * 1024)); then
  log "warning: the smc image is $(mib "$smc_tar") MiB uncompressed, over the 200 MiB budget"
fi
log "done"
