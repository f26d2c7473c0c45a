#!/usr/bin/env bash
# Builds the control-plane binaries for the apiserver integration tests from Go modules:
#   kube-apiserver-<KUBERNETES_VERSION>, etcd-<ETCD_VERSION>, helm-<HELM_VERSION>,
#   registry-<REGISTRY_VERSION> (the CNCF distribution OCI registry, for the chart push/pull test)
# and, for the two-node cluster of test/cluster (target `cluster`), kubelet, kube-proxy,
# kube-scheduler, kube-controller-manager and kubectl, each <name>-<KUBERNETES_VERSION>,
# into ${SMC_CACHE:-$HOME/.cache/smc-operator}/bin/. Versions are pinned in versions.env.
#
# Idempotent: a binary that already exists is not rebuilt. The Go build and module caches live
# under the cache dir too (go/build, go/mod), so a rebuild after a version bump is incremental.
# A cold kube-apiserver build takes several minutes on 2 cores; progress goes to stderr.
#
# Usage: build-binaries.sh [kube-apiserver|etcd|helm|registry|cluster ...]   (default: all five)
# ETCD_VERSION=system in versions.env skips the etcd build (the harness then uses /usr/bin/etcd).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

cache="${SMC_CACHE:-$HOME/.cache/smc-operator}"
bindir="$cache/bin"
srcdir="$cache/src"
mkdir -p "$bindir" "$srcdir"

export GOCACHE="$cache/go/build"
export GOMODCACHE="$cache/go/mod"
export GOPATH="$cache/go/path"
export GOFLAGS="-trimpath -modcacherw -buildvcs=false"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
export CGO_ENABLED=0
# Share the two cores with whatever else runs: low priority, default parallelism.
nice_cmd=(nice -n 10)

log() { printf '[build-binaries %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

command -v go >/dev/null || { log "go toolchain not found in PATH"; exit 1; }

# Serialize concurrent invocations (e.g. two test processes starting at once).
exec 9>"$cache/.build.lock"
if ! flock -n 9; then
  log "another build is running; waiting for its lock"
  flock 9
fi

# Prints elapsed seconds since $1 (epoch seconds).
since() { echo $(($(date +%s) - $1)); }

# Builds `pkg` inside module dir `moddir` to $bindir/$out atomically.
go_build() {
  local moddir="$1" pkg="$2" out="$3" ldflags="$4"
  local t0
  t0=$(date +%s)
  log "compiling $pkg -> $bindir/$out (this can take a while)"
  (cd "$moddir" && "${nice_cmd[@]}" go build -ldflags="$ldflags" -o "$bindir/.$out.tmp" "$pkg")
  mv -f "$bindir/.$out.tmp" "$bindir/$out"
  log "built $out in $(since "$t0")s ($(du -h "$bindir/$out" | cut -f1))"
}

# Writes a go.mod requiring k8s.io/kubernetes@$KUBERNETES_VERSION into dir $1 (module name $2),
# with every staging module replaced by its published version.
write_kube_gomod() {
  local mod="$1" name="$2" ver="$KUBERNETES_VERSION"
  local staging="v0.${ver#v1.}" # v1.34.4 -> v0.34.4
  mkdir -p "$mod"
  log "resolving k8s.io/kubernetes@$ver (staging modules at $staging)"
  local gomod
  gomod="$(go mod download -json "k8s.io/kubernetes@$ver" | sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p')"
  [[ -f "$gomod" ]] || { log "could not download go.mod of k8s.io/kubernetes@$ver"; exit 1; }
  # The staging modules are required at v0.0.0 and replaced by ./staging/src/... in kubernetes'
  # own go.mod; point every one of them at its published version instead.
  local replaces
  replaces="$(awk '/^replace \(/{f=1;next} f&&/^\)/{f=0} f && $2=="=>" {print $1}' "$gomod")"
  [[ -n "$replaces" ]] || { log "no replace block found in $gomod"; exit 1; }
  local godirective
  godirective="$(awk '$1=="go"{print $2; exit}' "$gomod")"
  {
    echo "module smc-operator.local/$name"
    echo
    echo "go $godirective"
    echo
    grep -E '^godebug ' "$gomod" || true
    echo
    echo "require k8s.io/kubernetes $ver"
    echo
    echo "replace ("
    for m in $replaces; do echo "	$m => $m $staging"; done
    echo ")"
  } >"$mod/go.mod"
}

# -ldflags for a Kubernetes binary: stripped, with the version stamped as a release build does.
kube_ldflags() {
  local ver="$KUBERNETES_VERSION" ver_pkg="k8s.io/component-base/version"
  local minor="${ver#v1.}"
  minor="${minor%%.*}"
  local ldflags="-s -w -X $ver_pkg.gitVersion=$ver -X $ver_pkg.gitMajor=1 -X $ver_pkg.gitMinor=$minor"
  ldflags+=" -X $ver_pkg.gitTreeState=clean -X $ver_pkg.buildDate=1970-01-01T00:00:00Z"
  ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=$ver -X k8s.io/client-go/pkg/version.gitMajor=1"
  ldflags+=" -X k8s.io/client-go/pkg/version.gitMinor=$minor"
  echo "$ldflags"
}

build_kube_apiserver() {
  local ver="$KUBERNETES_VERSION" out="kube-apiserver-$KUBERNETES_VERSION"
  if [[ -x "$bindir/$out" ]]; then
    log "$out present, skipping"
    return
  fi
  local mod="$srcdir/kube-apiserver-$ver"
  # go.sum.done: go.mod and go.sum are complete (written by `go get`); keep them as they are.
  if [[ ! -f "$mod/go.sum.done" ]]; then
    write_kube_gomod "$mod" kube-apiserver-build
    log "resolving module graph for k8s.io/kubernetes/cmd/kube-apiserver"
    (cd "$mod" && "${nice_cmd[@]}" go get "k8s.io/kubernetes/cmd/kube-apiserver@$ver")
    touch "$mod/go.sum.done"
  fi
  go_build "$mod" k8s.io/kubernetes/cmd/kube-apiserver "$out" "$(kube_ldflags)"
}

# The node and controller binaries of test/cluster. One `go build` for all of them: the packages
# they share (client-go, apimachinery, ...) compile once, and the build cache already holds
# everything they share with kube-apiserver (same module versions, same flags).
CLUSTER_CMDS=(kubelet kube-proxy kube-scheduler kube-controller-manager kubectl)
build_cluster() {
  local ver="$KUBERNETES_VERSION" c missing=()
  for c in "${CLUSTER_CMDS[@]}"; do
    [[ -x "$bindir/$c-$ver" ]] || missing+=("$c")
  done
  if ((${#missing[@]} == 0)); then
    log "${CLUSTER_CMDS[*]} ($ver) present, skipping"
    return
  fi
  local mod="$srcdir/kube-cluster-$ver"
  local pkgs=()
  for c in "${missing[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
  if [[ ! -f "$mod/go.sum.done" ]]; then
    write_kube_gomod "$mod" kube-cluster-build
    # Start from the kube-apiserver module's checksums: most of the graph is the same.
    [[ -f "$srcdir/kube-apiserver-$ver/go.sum" ]] && cp "$srcdir/kube-apiserver-$ver/go.sum" "$mod/go.sum"
    log "resolving module graph for ${CLUSTER_CMDS[*]}"
    local all=()
    for c in "${CLUSTER_CMDS[@]}"; do all+=("k8s.io/kubernetes/cmd/$c@$ver"); done
    (cd "$mod" && "${nice_cmd[@]}" go get "${all[@]}")
    touch "$mod/go.sum.done"
  fi
  local t0 tmp="$bindir/.cluster-$ver.tmp"
  t0=$(date +%s)
  rm -rf "$tmp"
  mkdir -p "$tmp"
  log "compiling ${missing[*]} in one go build -> $bindir (a few minutes; longer without a warm build cache)"
  # The trailing slash makes -o a directory: one binary per main package.
  (cd "$mod" && "${nice_cmd[@]}" go build -ldflags="$(kube_ldflags)" -o "$tmp/" "${pkgs[@]}")
  for c in "${missing[@]}"; do
    mv -f "$tmp/$c" "$bindir/$c-$ver"
    log "built $c-$ver ($(du -h "$bindir/$c-$ver" | cut -f1))"
  done
  rm -rf "$tmp"
  log "built ${missing[*]} in $(since "$t0")s"
}

build_etcd() {
  local ver="$ETCD_VERSION" out="etcd-$ETCD_VERSION"
  if [[ "$ver" == "system" ]]; then
    log "ETCD_VERSION=system: using the distribution's etcd, nothing to build"
    return
  fi
  if [[ -x "$bindir/$out" ]]; then
    log "$out present, skipping"
    return
  fi
  # etcd's main package lives in its root module, whose go.mod uses local replaces; a
  # two-line main calling etcdmain.Main (what etcd's own main.go does) builds from the
  # published go.etcd.io/etcd/server/v3 module instead.
  local mod="$srcdir/etcd-$ver"
  mkdir -p "$mod"
  cat >"$mod/go.mod" <<EOF
module smc-operator.local/etcd-build

go 1.23.0

require go.etcd.io/etcd/server/v3 $ver
EOF
  cat >"$mod/main.go" <<'EOF'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
EOF
  if [[ ! -f "$mod/go.sum.done" ]]; then
    log "resolving module graph for go.etcd.io/etcd/server/v3@$ver"
    (cd "$mod" && "${nice_cmd[@]}" go mod tidy)
    touch "$mod/go.sum.done"
  fi
  go_build "$mod" . "$out" "-s -w"
}

# The CNCF distribution registry, for the chart's OCI push/pull test (test/apiserver/chart-oci.test.ts).
build_registry() {
  local ver="$REGISTRY_VERSION" out="registry-$REGISTRY_VERSION"
  if [[ -x "$bindir/$out" ]]; then
    log "$out present, skipping"
    return
  fi
  local t0
  t0=$(date +%s)
  local gobin="$srcdir/registry-$ver-bin"
  mkdir -p "$gobin"
  log "compiling github.com/distribution/distribution/v3/cmd/registry@$ver -> $bindir/$out"
  # -mod=mod: resolve the module graph from the proxy (go install pkg@version ignores vendor/).
  GOBIN="$gobin" GOFLAGS="$GOFLAGS -mod=mod" "${nice_cmd[@]}" go install \
    -ldflags="-s -w -X github.com/distribution/distribution/v3/version.version=$ver" \
    "github.com/distribution/distribution/v3/cmd/registry@$ver"
  mv -f "$gobin/registry" "$bindir/$out"
  log "built $out in $(since "$t0")s ($(du -h "$bindir/$out" | cut -f1))"
}

build_helm() {
  local ver="$HELM_VERSION" out="helm-$HELM_VERSION"
  if [[ -x "$bindir/$out" ]]; then
    log "$out present, skipping"
    return
  fi
  local t0
  t0=$(date +%s)
  local gobin="$srcdir/helm-$ver-bin"
  mkdir -p "$gobin"
  log "compiling helm.sh/helm/v3/cmd/helm@$ver -> $bindir/$out"
  GOBIN="$gobin" "${nice_cmd[@]}" go install \
    -ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$ver -X helm.sh/helm/v3/internal/version.gitTreeState=clean" \
    "helm.sh/helm/v3/cmd/helm@$ver"
  mv -f "$gobin/helm" "$bindir/$out"
  log "built $out in $(since "$t0")s ($(du -h "$bindir/$out" | cut -f1))"
}

targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(kube-apiserver etcd helm registry cluster)
t_all=$(date +%s)
for t in "${targets[@]}"; do
  case "$t" in
    kube-apiserver) build_kube_apiserver ;;
    etcd) build_etcd ;;
    helm) build_helm ;;
    registry) build_registry ;;
    cluster) build_cluster ;;
    *)
      log "unknown target: $t (expected kube-apiserver, etcd, helm, registry or cluster)"
      exit 2
      ;;
  esac
done
log "done in $(since "$t_all")s; binaries in $bindir"
