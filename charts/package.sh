#!/usr/bin/env bash
# Packages the Helm chart charts/smc-operator into <out>/smc-operator-<version>.tgz, an archive
# `helm push` can send to any OCI registry, after checking it:
#   - the chart's CRD copies (charts/smc-operator/files/crds) equal the repository's crds/;
#   - `helm lint --strict` passes on the chart with its default values and on the archive.
#
# Usage: charts/package.sh [-d OUT_DIR] [--push oci://HOST[:PORT]/PATH [--plain-http]]
#   -d OUT_DIR     where the archive goes (default: dist/charts)
#   --push REF     then `helm push` it there, e.g. oci://ghcr.io/smc-operator/charts
#   --plain-http   push over HTTP (a registry on 127.0.0.1 without TLS)
# Environment: HELM (helm binary; default: helm on PATH, else the pinned helm that
# test/apiserver/tools/build-binaries.sh builds), KUBE_VERSION (for lint; default: the
# Kubernetes version pinned in test/apiserver/tools/versions.env).
# Prints the archive's path as its last line of standard output.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
chart="$repo/charts/smc-operator"
out="$repo/dist/charts"
push=""
plain_http=()

die() {
  echo "package.sh: $*" >&2
  exit 1
}

while (($# > 0)); do
  case "$1" in
    -d)
      [[ $# -ge 2 ]] || die "-d needs a directory"
      out="$2"
      shift 2
      ;;
    --push)
      [[ $# -ge 2 ]] || die "--push needs an oci:// reference"
      push="$2"
      shift 2
      ;;
    --plain-http)
      plain_http=(--plain-http)
      shift
      ;;
    -h | --help)
      sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done
[[ -z "$push" || "$push" == oci://* ]] || die "--push wants an oci:// reference, got $push"

# shellcheck source=../test/apiserver/tools/versions.env
source "$repo/test/apiserver/tools/versions.env"
helm="${HELM:-}"
if [[ -z "$helm" ]]; then
  if command -v helm >/dev/null; then
    helm="$(command -v helm)"
  else
    helm="${SMC_CACHE:-$HOME/.cache/smc-operator}/bin/helm-$HELM_VERSION"
  fi
fi
[[ -x "$helm" ]] || die "no helm at $helm (install Helm 3.8+, or build the pinned one: test/apiserver/tools/build-binaries.sh helm)"
kube_version="${KUBE_VERSION:-${KUBERNETES_VERSION#v}}"

# The chart's CRDs are copies: never package stale ones.
if ! diff -r "$repo/crds" "$chart/files/crds" >/dev/null; then
  diff -r "$repo/crds" "$chart/files/crds" >&2 || true
  die "charts/smc-operator/files/crds differs from crds/: cp crds/*.yaml charts/smc-operator/files/crds/"
fi

"$helm" lint "$chart" --strict --kube-version "$kube_version" >&2
mkdir -p "$out"
version="$(sed -n 's/^version: *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p' "$chart/Chart.yaml")"
[[ -n "$version" ]] || die "no version in $chart/Chart.yaml"
archive="$out/smc-operator-$version.tgz"
rm -f "$archive"
"$helm" package "$chart" --destination "$out" >&2
[[ -f "$archive" ]] || die "helm package did not write $archive"
"$helm" lint "$archive" --strict --kube-version "$kube_version" >&2

if [[ -n "$push" ]]; then
  "$helm" push "$archive" "$push" "${plain_http[@]}" >&2
fi
echo "$archive"
