#!/usr/bin/env bash
# One node of the two-node Kubernetes cluster of test/cluster (harness/cluster.ts), run by
# `test/vm/lab-run --hostnet` in each VM: containerd + CNI bridge + kubelet + kube-proxy, joined
# to the API server on the host (10.78.0.254, reached over eth1).
#
# Input: SMC_CLUSTER_DIR, a host directory the harness filled before the VMs booted:
#   cluster.env        KUBELET KUBE_PROXY (host paths) PAUSE_IMAGE CLUSTER_CIDR KUBERNETES_SVC_IP
#   images.txt         OCI image archives to import (host paths, one per line)
#   node<N>.kubeconfig credentials of kubelet and kube-proxy on node<N>
# Output, in $LAB_OUT (the host sees it live): logs/{containerd,kubelet,kube-proxy}.log,
# `phase` (the last step reached), `cluster-ready` once the node can reach the API server through
# the `kubernetes` Service's ClusterIP (kube-proxy has synced).
# Stops (exit 0) when $LAB_OUT/stop appears; exits 1 if kubelet, containerd or kube-proxy dies.
#
# Networking: eth0 (10.77.0.x, rxe0) carries pod-to-pod traffic between the nodes; pods of node N
# get 10.244.N.0/24 on the bridge cni0 and the other node's pod subnet is routed via its eth0.
# eth1 (10.78.0.x) joins the host, which routes pod IPs and 10.77.0.x through it.
set -euo pipefail

: "${SMC_CLUSTER_DIR:?}" "${LAB_NODE:?}" "${LAB_IP:?}" "${LAB_PEER_IP:?}" "${LAB_OUT:?}"
: "${LAB_HOSTNET_IP:?lab-run --hostnet is required}"
# Host paths under the guest's tmpfs mounts (/tmp, /root, ...) are hidden; /run/hostfs is the
# host's / without them.
host_path() { echo "/run/hostfs$1"; }
CFG=$(host_path "$SMC_CLUSTER_DIR")
# shellcheck source=/dev/null
source "$CFG/cluster.env"
PEER_NODE=$((1 - LAB_NODE))
POD_CIDR="10.244.$LAB_NODE.0/24"
NODE_NAME="node$LAB_NODE"
LOGS=$LAB_OUT/logs
mkdir -p "$LOGS"

phase() {
  local up _
  read -r up _ </proc/uptime
  echo "$*" >"$LAB_OUT/phase"
  printf 'uptime %5.1fs: %s\n' "$up" "$*"
}
die() {
  phase "FAILED: $*"
  exit 1
}

# --- file systems: / is the host's, read-only; kubelet and containerd need /var/lib and /var/log
# (several paths under /var/lib/kubelet are hard-coded).
mount -t tmpfs -o mode=0755,size=90% tmpfs /var/lib
mount -t tmpfs -o mode=0755 tmpfs /var/log
mkdir -p /run/cni/net.d /run/cni/ipam /run/kubernetes /var/lib/kubelet /var/lib/containerd

sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1 net.bridge.bridge-nf-call-ip6tables=1

# --- containerd (Debian 12's 1.6): state on tmpfs, no systemd, CNI plugins from Debian's package.
cat >/run/containerd-config.toml <<EOF
version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "/run/containerd/containerd.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "/var/lib/containerd-opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "/run/cni/net.d"
EOF
phase "starting containerd"
# Containers inherit the shim's, hence containerd's, limits: RDMA memory registration in pods
# needs an unlimited memlock limit.
ulimit -l unlimited
ulimit -n 1048576
containerd --config /run/containerd-config.toml >"$LOGS/containerd.log" 2>&1 &
# shellcheck disable=SC2034 # read through ${!pid} in alive()
CONTAINERD_PID=$!
lab_retry 90 ctr version >/dev/null 2>&1 || die "containerd did not answer within 90 s"

# --- images: nothing is pulled; the harness names OCI archives to import. Before kubelet starts,
# so that a Ready node has them all. (Importing while kubelet and kube-proxy start was slower
# overall: the VM has one vCPU and all three are CPU-bound under TCG.)
while IFS= read -r img; do
  [[ -n "$img" ]] || continue
  phase "importing $(basename "$img")"
  ctr -n k8s.io images import "$(host_path "$img")" >/dev/null || die "ctr images import $img"
done <"$CFG/images.txt"
imported=$(ctr -n k8s.io images ls -q)
grep -qxF "$PAUSE_IMAGE" <<<"$imported" || die "the image archives lack the sandbox image $PAUSE_IMAGE"

# --- pod network: bridge cni0 with this node's /24, the peer's /24 via the peer's eth0.
cat >/run/cni/net.d/10-smc-bridge.conflist <<EOF
{
  "cniVersion": "0.4.0",
  "name": "smc-pods",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "hairpinMode": true,
      "ipMasq": false,
      "ipam": {
        "type": "host-local",
        "dataDir": "/run/cni/ipam",
        "ranges": [[{ "subnet": "$POD_CIDR" }]],
        "routes": [{ "dst": "0.0.0.0/0" }]
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
EOF
ip route replace "10.244.$PEER_NODE.0/24" via "$LAB_PEER_IP" dev eth0
# Everything else (ClusterIPs included: the node's own connections are routed before kube-proxy's
# DNAT, so they need some route) goes to the host.
ip route replace default via "$LAB_HOSTNET_HOST_IP" dev eth1

# --- kubelet
cat >/run/kubelet-config.yaml <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# Pods see ConfigMap updates (the operator's peer directory) after at most about one sync period:
# 10 s instead of the default minute keeps the test's waits short.
syncFrequency: 10s
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
failSwapOn: false
# Test cluster only: every kubelet API call is allowed without credentials (the API server's
# logs/exec/port-forward, and anyone else who reaches :10250 on the lab network).
authentication:
  anonymous: { enabled: true }
  webhook: { enabled: false }
authorization:
  mode: AlwaysAllow
readOnlyPort: 0
clusterDomain: cluster.local
volumePluginDir: /var/lib/kubelet/volume-plugins
# Everything lives on tmpfs (RAM): keep eviction and image GC out of the way.
evictionHard:
  memory.available: 20Mi
  nodefs.available: 1%
  imagefs.available: 1%
  nodefs.inodesFree: 1%
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
EOF
phase "starting kubelet"
"$(host_path "$KUBELET")" --config /run/kubelet-config.yaml \
  --kubeconfig "$CFG/$NODE_NAME.kubeconfig" --hostname-override "$NODE_NAME" --node-ip "$LAB_IP" \
  --v=1 >"$LOGS/kubelet.log" 2>&1 &
KUBELET_PID=$!

# --- kube-proxy (iptables mode): ClusterIP Services, including `kubernetes` -> the host.
cat >/run/kube-proxy-config.yaml <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clusterCIDR: $CLUSTER_CIDR
hostnameOverride: $NODE_NAME
clientConnection:
  kubeconfig: $CFG/$NODE_NAME.kubeconfig
conntrack:
  maxPerCore: 0
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: [primary]
iptables:
  minSyncPeriod: 1s
EOF
phase "starting kube-proxy"
"$(host_path "$KUBE_PROXY")" --config /run/kube-proxy-config.yaml --v=1 \
  >"$LOGS/kube-proxy.log" 2>&1 &
PROXY_PID=$!

alive() {
  local name pid
  for name in CONTAINERD KUBELET PROXY; do
    pid=${name}_PID
    kill -0 "${!pid}" 2>/dev/null || { echo "$name"; return 1; }
  done
}

# Ready for the harness once the API server answers through the ClusterIP (kube-proxy synced the
# `kubernetes` Service; any HTTP status will do).
phase "waiting for the kubernetes Service (https://$KUBERNETES_SVC_IP)"
until code=$(curl -sk -m 3 -o /dev/null -w '%{http_code}' "https://$KUBERNETES_SVC_IP/healthz") &&
  [[ "$code" != 000 ]]; do
  dead=$(alive) || die "$dead exited (see $LOGS)"
  [[ -e "$LAB_OUT/stop" ]] && exit 0
  sleep 1
done
: >"$LAB_OUT/cluster-ready"
phase "ready (kubernetes Service answered HTTP $code)"

until [[ -e "$LAB_OUT/stop" ]]; do
  dead=$(alive) || die "$dead exited (see $LOGS)"
  sleep 1
done
phase "stop requested"
kill "$PROXY_PID" "$KUBELET_PID" 2>/dev/null || true
exit 0
