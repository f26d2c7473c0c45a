#!/usr/bin/env bash
# smc-operator on a kind cluster with soft-RoCE (rdma_rxe): see docs/kind.md.
#
#   docs/kind/up.sh          create (or reuse) the cluster, install the chart, run the demo
#   docs/kind/up.sh down     delete the cluster
#
# Needs a Linux host with rootful Docker or Podman (KIND_EXPERIMENTAL_PROVIDER=podman), kind,
# kubectl, helm, root or sudo (modprobe), and the image archives of `npm run image`.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"

CLUSTER="${KIND_CLUSTER_NAME:-smc}"
CONFIG="${KIND_CONFIG:-$HERE/kind-config.yaml}"
NODE_IMAGE="${KIND_NODE_IMAGE:-}"
IMAGE_ARCHIVE="${SMC_IMAGE_ARCHIVE:-$REPO/dist/image/smc-operator.oci.tar}"
IMAGE_REPOSITORY="${SMC_IMAGE_REPOSITORY:-ghcr.io/smc-operator/smc-operator}"
APPS_ARCHIVE="${SMC_APPS_ARCHIVE:-$REPO/dist/image/lab-apps.oci.tar}"
APP_IMAGE="${SMC_APP_IMAGE:-smc.dev/lab/nginx:1}"
RELEASE="${SMC_RELEASE:-smc-operator}"
RELEASE_NS="${SMC_RELEASE_NAMESPACE:-smc-system}"
DEMO_NS="${SMC_DEMO_NAMESPACE:-smc-demo}"
CHART="$REPO/charts/smc-operator"
CTX="kind-$CLUSTER"

log() { printf '==> %s\n' "$*" >&2; }
warn() { printf 'up.sh: warning: %s\n' "$*" >&2; }
die() {
  printf 'up.sh: %s\n' "$*" >&2
  exit 1
}
need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found: $2"; }
k() { kubectl --context "$CTX" "$@"; }

# Host steps (modprobe, mkdir under /dev) need root; everything else runs as the caller.
as_root() {
  if [[ $EUID -eq 0 ]]; then
    "$@"
  else
    command -v sudo >/dev/null 2>&1 || die "run as root, or install sudo: '$*' needs root"
    sudo -- "$@"
  fi
}

# Polls "$@" every 2 s until it succeeds or $1 seconds pass.
wait_for() {
  local secs="$1" what="$2"
  shift 2
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < end)) || die "timed out after ${secs}s waiting for $what"
    sleep 2
  done
}

# --- engine and tools -------------------------------------------------------------------------
[[ "$(uname -s)" == Linux ]] || die "needs a Linux host: kind nodes share the host kernel, which must run rdma_rxe"
need kind "install kind (https://kind.sigs.k8s.io/docs/user/quick-start/#installation)"
need kubectl "install kubectl (https://kubernetes.io/docs/tasks/tools/)"
need helm "install Helm 3 (https://helm.sh/docs/intro/install/)"

case "${KIND_EXPERIMENTAL_PROVIDER:-}" in
  "")
    if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
      ENGINE=docker
    elif command -v podman >/dev/null 2>&1 && podman info >/dev/null 2>&1; then
      ENGINE=podman
    else
      die "no working container engine: install Docker or Podman (and start it), or set KIND_EXPERIMENTAL_PROVIDER"
    fi
    ;;
  docker | podman) ENGINE="$KIND_EXPERIMENTAL_PROVIDER" ;;
  *) die "KIND_EXPERIMENTAL_PROVIDER=$KIND_EXPERIMENTAL_PROVIDER: this script supports docker and podman" ;;
esac
need "$ENGINE" "install $ENGINE, or set KIND_EXPERIMENTAL_PROVIDER to the engine you have"
"$ENGINE" info >/dev/null 2>&1 || die "$ENGINE is installed but does not answer ('$ENGINE info' fails): start it"
export KIND_EXPERIMENTAL_PROVIDER="$ENGINE"
# Rootless engines cannot give the nodes CAP_NET_ADMIN over RDMA links or raise RLIMIT_MEMLOCK.
if [[ $ENGINE == podman ]] && [[ "$(podman info --format '{{.Host.Security.Rootless}}' 2>/dev/null)" == true ]]; then
  die "rootless podman cannot create rxe devices in the nodes: run as root (sudo -E $0)"
fi
if [[ $ENGINE == docker ]] && docker info --format '{{.SecurityOptions}}' 2>/dev/null | grep rootless >/dev/null; then
  die "rootless Docker cannot create rxe devices in the nodes: use the rootful daemon"
fi

if [[ ${1:-} == down ]]; then
  kind delete cluster --name "$CLUSTER"
  exit 0
fi
[[ $# -eq 0 ]] || die "usage: $0 [down]"

[[ -f $IMAGE_ARCHIVE ]] || die "no image archive at $IMAGE_ARCHIVE: build it with 'npm run image' (as root)"
if [[ $APP_IMAGE == smc.dev/lab/* ]] && [[ ! -f $APPS_ARCHIVE ]]; then
  die "no demo image archive at $APPS_ARCHIVE: build it with 'npm run image', or set SMC_APP_IMAGE to an image with sh, nginx and curl"
fi
VERSION="$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p' "$CHART/Chart.yaml")"
[[ -n $VERSION ]] || die "no appVersion in $CHART/Chart.yaml"
IMAGE="${SMC_IMAGE_TAG:+$IMAGE_REPOSITORY:$SMC_IMAGE_TAG}"
IMAGE="${IMAGE:-$IMAGE_REPOSITORY:$VERSION}"

# --- host kernel: soft-RoCE and uverbs ---------------------------------------------------------
log "loading ib_uverbs, rdma_ucm and rdma_rxe on the host"
# rdma_rxe needs a crc32 implementation; where modules cannot be auto-requested, load it first.
as_root modprobe crc32_generic 2>/dev/null || true
for m in ib_uverbs rdma_ucm rdma_rxe; do
  as_root modprobe "$m" || die "cannot load $m: the host kernel needs the RDMA modules (Debian: linux-image-amd64; Ubuntu: linux-modules-extra-\$(uname -r))"
done
# rdma_ucm creates /dev/infiniband/rdma_cm; the directory must exist before the nodes bind-mount it.
[[ -d /dev/infiniband ]] || as_root mkdir -p /dev/infiniband
if command -v rdma >/dev/null 2>&1; then
  netns_mode="$(rdma system show 2>/dev/null | sed -n 's/.*netns \([a-z]*\).*/\1/p' || true)"
  [[ -z $netns_mode || $netns_mode == shared ]] ||
    die "RDMA netns mode is '$netns_mode': pods see no RDMA device; run 'rdma system set netns shared' with no containers running, or set ib_core netns_mode=1"
fi

# --- cluster -----------------------------------------------------------------------------------
if kind get clusters 2>/dev/null | grep -x "$CLUSTER" >/dev/null; then
  log "reusing kind cluster $CLUSTER"
else
  log "creating kind cluster $CLUSTER ($ENGINE)"
  args=(create cluster --name "$CLUSTER" --config "$CONFIG" --wait 180s)
  [[ -z $NODE_IMAGE ]] || args+=(--image "$NODE_IMAGE")
  kind "${args[@]}"
fi
k get nodes >/dev/null || die "kubectl cannot reach context $CTX"
mapfile -t WORKERS < <(k get nodes -l '!node-role.kubernetes.io/control-plane' \
  -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}' | sort)
((${#WORKERS[@]} >= 2)) || die "the demo needs two worker nodes; $CLUSTER has ${#WORKERS[@]} (delete it and use $CONFIG)"

in_node() {
  local node="$1"
  shift
  "$ENGINE" exec "$node" "$@"
}

# --- per node: memlock, rxe device -------------------------------------------------------------
NETNS_RXE=1
for node in "${WORKERS[@]}"; do
  in_node "$node" test -d /dev/infiniband ||
    die "$node has no /dev/infiniband: the cluster was not created with $CONFIG (extraMounts); delete it first"
  in_node "$node" sh -c 'command -v rdma' >/dev/null || die "$node has no 'rdma' tool (iproute2) in its node image"

  # containerd passes its own RLIMIT_MEMLOCK to every container; RDMA memory registration needs it high.
  log "$node: containerd LimitMEMLOCK=infinity"
  # shellcheck disable=SC2016 # expanded by the node's shell
  in_node "$node" sh -c '
    set -e
    f=/etc/systemd/system/containerd.service.d/memlock.conf
    if ! grep -qs "^LimitMEMLOCK=infinity" "$f"; then
      mkdir -p "${f%/*}"
      printf "[Service]\nLimitMEMLOCK=infinity\n" >"$f"
      systemctl daemon-reload
      systemctl restart containerd
    fi
    pid="$(systemctl show -p MainPID --value containerd)"
    grep "^Max locked memory" "/proc/$pid/limits"' |
    grep unlimited >/dev/null || die "$node: containerd still runs with a finite memlock limit"

  # One rxe device per node, on the netdev that carries the node's InternalIP: its RoCE v2 GIDs are
  # the node's addresses, which is how each sidecar finds its node's device (SMC_GID_ADDRESS).
  ip="$(k get node "$node" -o jsonpath='{.status.addresses[?(@.type=="InternalIP")].address}' | awk '{print $1}')"
  [[ $ip =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "$node: no IPv4 InternalIP (got '$ip')"
  netdev="$(in_node "$node" ip -o addr show to "$ip" | awk 'NR == 1 { print $2 }')"
  [[ -n $netdev ]] || die "$node: no netdev carries $ip"
  rxe="rxe_${node//[^a-zA-Z0-9]/_}"
  if ! in_node "$node" rdma link show "$rxe/1" >/dev/null 2>&1; then
    log "$node: rdma link add $rxe type rxe netdev $netdev ($ip)"
    in_node "$node" rdma link add "$rxe" type rxe netdev "$netdev" ||
      die "$node: 'rdma link add $rxe type rxe netdev $netdev' failed"
  fi
  IFS=. read -r a b c d <<<"$ip"
  gid="$(printf '0000:0000:0000:0000:0000:ffff:%02x%02x:%02x%02x' "$a" "$b" "$c" "$d")"
  wait_for 20 "$node: a GID $gid on $rxe" \
    in_node "$node" sh -c "grep -qsx '$gid' /sys/class/infiniband/$rxe/ports/1/gids/*"
  # rxe with network-namespace support opens its UDP port 4791 in the netdev's namespace; without
  # it the socket stays in the host's namespace and RoCE packets to this node are dropped.
  if [[ -z "$(in_node "$node" ss -Hlun 'sport = :4791' 2>/dev/null)" ]]; then
    NETNS_RXE=0
    warn "$node: no RoCE v2 socket (UDP 4791) in the node's network namespace: this kernel's rdma_rxe does not support devices on netdevs outside the host namespace; connections will fall back to TCP (see docs/kind.md)"
  fi
done
wait_for 180 "nodes Ready after the containerd restarts" k wait --for=condition=Ready node --all --timeout=5s

# --- images ------------------------------------------------------------------------------------
log "kind load image-archive $IMAGE_ARCHIVE"
kind load image-archive "$IMAGE_ARCHIVE" --name "$CLUSTER"
if [[ $APP_IMAGE == smc.dev/lab/* ]]; then
  log "kind load image-archive $APPS_ARCHIVE"
  kind load image-archive "$APPS_ARCHIVE" --name "$CLUSTER"
fi
for node in "${WORKERS[@]}"; do
  in_node "$node" ctr -n k8s.io images ls -q | grep -x "$IMAGE" >/dev/null ||
    die "$node has no image $IMAGE after loading $IMAGE_ARCHIVE (set SMC_IMAGE_REPOSITORY / SMC_IMAGE_TAG to the name it was built with)"
done

# --- chart -------------------------------------------------------------------------------------
log "helm upgrade --install $RELEASE ($IMAGE)"
helm --kube-context "$CTX" upgrade --install "$RELEASE" "$CHART" \
  --namespace "$RELEASE_NS" --create-namespace \
  --set cluster="$CTX" \
  --set image.repository="$IMAGE_REPOSITORY" \
  --set image.tag="${IMAGE##*:}" \
  --set image.pullPolicy=Never \
  --wait --timeout 5m
webhook="$(k get mutatingwebhookconfiguration -l app.kubernetes.io/instance="$RELEASE" -o name | awk 'NR == 1')"
[[ -n $webhook ]] || die "the release has no MutatingWebhookConfiguration"
# shellcheck disable=SC2317 # called through wait_for
has_ca_bundle() { [[ -n "$(k get "$webhook" -o jsonpath='{.webhooks[0].clientConfig.caBundle}')" ]]; }
wait_for 120 "the operator to set the webhook's caBundle" has_ca_bundle
# shellcheck disable=SC2317 # called through wait_for
has_rdma_resource() {
  [[ "$(k get node "$1" -o jsonpath='{.status.allocatable.smc\.dev/rdma}')" =~ ^[1-9] ]]
}
for node in "${WORKERS[@]}"; do
  wait_for 120 "$node to advertise smc.dev/rdma (the node agent's device plugin)" has_rdma_resource "$node"
done

# --- demo: policy, server on worker 1, client on worker 2 --------------------------------------
SERVER_NODE="${WORKERS[0]}"
CLIENT_NODE="${WORKERS[1]}"
log "demo in namespace $DEMO_NS: web on $SERVER_NODE, client on $CLIENT_NODE"
k apply -f - <<EOF
apiVersion: v1
kind: Namespace
metadata:
  name: $DEMO_NS
  labels:
    smc.dev/injection: enabled
    pod-security.kubernetes.io/enforce: privileged
---
# The tenant admits the demo namespace (written by a cluster admin; policies may name only a
# tenant whose SmcTenant admits their namespace).
apiVersion: smc.dev/v1alpha1
kind: SmcTenant
metadata:
  name: demo
spec:
  namespaces: [$DEMO_NS]
---
apiVersion: smc.dev/v1alpha1
kind: SmcPolicy
metadata:
  name: demo
  namespace: $DEMO_NS
spec:
  tenant: demo
  mode: Prefer
  podSelector:
    matchLabels:
      smc-demo: "true"
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-nginx
  namespace: $DEMO_NS
data:
  nginx.conf: |
    worker_processes 1;
    pid /tmp/nginx.pid;
    error_log stderr warn;
    events { worker_connections 256; }
    http {
      access_log off;
      client_body_temp_path /tmp/body;
      proxy_temp_path /tmp/proxy;
      fastcgi_temp_path /tmp/fastcgi;
      uwsgi_temp_path /tmp/uwsgi;
      scgi_temp_path /tmp/scgi;
      server { listen 8080; root /srv; }
    }
EOF
# The webhook injects only pods an SmcPolicy selects when they are created: the policy comes first.
# Pods of an earlier run are replaced, so they are injected by this release and their counters start at 0.
k -n "$DEMO_NS" delete pod web client --ignore-not-found --wait=true
k apply -f - <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: $DEMO_NS
  labels: { smc-demo: "true", app: web }
spec:
  nodeSelector: { kubernetes.io/hostname: $SERVER_NODE }
  terminationGracePeriodSeconds: 2
  containers:
    - name: nginx
      image: $APP_IMAGE
      imagePullPolicy: IfNotPresent
      command: ["/bin/sh", "-c", "head -c 8388608 /dev/urandom >/srv/blob && exec nginx -c /etc/nginx-demo/nginx.conf -g 'daemon off;'"]
      ports: [{ containerPort: 8080 }]
      volumeMounts:
        - { name: conf, mountPath: /etc/nginx-demo }
        - { name: srv, mountPath: /srv }
  volumes:
    - { name: conf, configMap: { name: web-nginx } }
    - { name: srv, emptyDir: { sizeLimit: 64Mi } }
---
apiVersion: v1
kind: Pod
metadata:
  name: client
  namespace: $DEMO_NS
  labels: { smc-demo: "true", app: client }
spec:
  nodeSelector: { kubernetes.io/hostname: $CLIENT_NODE }
  terminationGracePeriodSeconds: 2
  containers:
    - name: curl
      image: $APP_IMAGE
      imagePullPolicy: IfNotPresent
      command: ["/bin/sh", "-c", "exec sleep 2147483647"]
EOF
k -n "$DEMO_NS" wait --for=condition=Ready pod/web pod/client --timeout=180s
for pod in web client; do
  # A native sidecar (Kubernetes 1.29+) is among the init containers, a plain one among the containers.
  k -n "$DEMO_NS" get pod "$pod" -o jsonpath='{.spec.initContainers[*].name} {.spec.containers[*].name}' |
    grep -w smc-sidecar >/dev/null ||
    die "pod $pod has no smc-sidecar: it was not injected (kubectl -n $DEMO_NS get pod $pod -o yaml)"
done
# shellcheck disable=SC2317 # called through wait_for
policy_ready() { [[ "$(k -n "$DEMO_NS" get smcpolicy demo -o jsonpath='{.status.readyPods}')" == 2 ]]; }
wait_for 60 "SmcPolicy demo to count 2 ready pods" policy_ready

# The sidecar's RLIMIT_MEMLOCK, read on its node (crictl and /proc of the node's containers).
sidecar_id="$(in_node "$CLIENT_NODE" crictl ps -q --name smc-sidecar --label "io.kubernetes.pod.name=client" | awk 'NR == 1')"
if [[ -n $sidecar_id ]]; then
  pid="$(in_node "$CLIENT_NODE" crictl inspect -o go-template --template '{{.info.pid}}' "$sidecar_id")"
  log "client's smc-sidecar: $(in_node "$CLIENT_NODE" grep '^Max locked memory' "/proc/$pid/limits" | tr -s ' ')"
fi

metrics() { k get --raw "/api/v1/namespaces/$DEMO_NS/pods/$1:15190/proxy/metrics"; }
upgraded() { metrics client | awk '/^smc_connections_total\{.*outcome="upgraded"/ { n += $2 } END { exit !(n > 0) }'; }

WEB_IP="$(k -n "$DEMO_NS" get pod web -o jsonpath='{.status.podIP}')"
log "curl http://$WEB_IP:8080/blob from client (until one connection is upgraded, at most 60 s)"
end=$((SECONDS + 60))
while :; do
  k -n "$DEMO_NS" exec client -c curl -- \
    curl -sS -o /dev/null -w 'HTTP %{http_code}, %{size_download} bytes in %{time_total} s\n' "http://$WEB_IP:8080/blob" || true
  upgraded && break
  ((SECONDS < end)) || break
  sleep 3
done

for pod in client web; do
  printf '\n--- %s sidecar metrics ---\n' "$pod"
  metrics "$pod" | grep -E '^smc_(connections_total|bytes_total|link_groups|links|data_path_info)' || true
done
printf '\n'
k -n "$DEMO_NS" get smcpolicy demo

if upgraded; then
  log "upgraded: the client's connections to web ran over SMC-R (smc_bytes_total{path=\"rdma\"} counts the bytes)"
  exit 0
fi
warn "no connection was upgraded; the reason label of smc_connections_total above says why"
if ((NETNS_RXE == 0)); then
  warn "expected on this kernel: its rdma_rxe keeps RoCE in the host's network namespace (see docs/kind.md)"
fi
warn "sidecar logs: kubectl --context $CTX -n $DEMO_NS logs client -c smc-sidecar"
exit 1
