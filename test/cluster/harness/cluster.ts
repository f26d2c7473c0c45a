/**
 * A real two-node Kubernetes cluster on the two soft-RoCE lab VMs, for end-to-end tests.
 *
 *   const cluster = await startCluster({ images: ['dist/image/lab-apps.oci.tar'] });
 *   const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
 *   await cluster.kubectl(['get', 'nodes', '-o', 'wide']);
 *   await cluster.stop();
 *
 * Layout (see docs/vm-lab.md for the VMs themselves):
 *
 *   host: etcd, kube-apiserver (0.0.0.0:<port>, advertised as 10.78.0.254), kube-scheduler,
 *         kube-controller-manager; bridge smcbr0 10.78.0.254/24 with routes to the nodes'
 *         10.77.0.x and pod subnets 10.244.N.0/24 (created by `lab-run --hostnet`)
 *   node0 / node1 (qemu VMs): eth0 10.77.0.1 / .2 (the RoCE link, rxe0; pod-to-pod traffic),
 *         eth1 10.78.0.1 / .2 (to the host), containerd + CNI bridge (pods 10.244.0.0/24 and
 *         10.244.1.0/24), kubelet (InternalIP = eth0's address), kube-proxy (iptables)
 *
 * The host reaches pod IPs and kubelets directly, so the API server serves `kubectl logs/exec`
 * and calls webhooks served by pods (--enable-aggregator-routing: Services resolve to endpoint
 * pod IPs, as the host has no kube-proxy). Pods reach the API server through the `kubernetes`
 * Service (10.96.0.1:443 -> 10.78.0.254:<port>).
 *
 * Nothing is built here: the binaries (test/apiserver/tools/build-binaries.sh, targets
 * kube-apiserver etcd helm cluster), test/vm/setup.sh and Debian's containerd, runc and
 * containernetworking-plugins must be in place (ClusterPrerequisiteError says what is missing).
 * Images are never pulled: `images` are OCI archives imported on both nodes before kubelet
 * starts; one of them must hold the sandbox image (PAUSE_IMAGE in versions.env). Pods should use
 * `imagePullPolicy: Never` or `IfNotPresent`.
 *
 * Needs root (tap devices, bridge, routes). One cluster per machine at a time (lab-run --hostnet
 * holds a lock; a second startCluster waits for the first to stop).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, KubeConfig, type V1Node } from '@kubernetes/client-node';
import { cacheDir, expectedBinaries, isExecutable, type Versions } from '../../apiserver/harness/binaries.js';
import { startControlPlane, tailFile, type ControlPlane } from '../../apiserver/harness/control-plane.js';
import { labCacheDir, labReady } from '../../vm/lab.js';

const here = dirname(fileURLToPath(import.meta.url));
/** The repo root (the harness runs from dist/test/cluster/harness or test/cluster/harness). */
const REPO = resolve(here, existsSync(join(here, '..', 'node.sh')) ? '../../..' : '../../../..');
const NODE_SCRIPT = join(REPO, 'test', 'cluster', 'node.sh');
const LAB_RUN = join(REPO, 'test', 'vm', 'lab-run');

export const NODE_NAMES = ['node0', 'node1'] as const;
export type NodeName = (typeof NODE_NAMES)[number];
/** The host's address on the bridge to the nodes' eth1; the `kubernetes` Service's endpoint. */
export const HOST_IP = '10.78.0.254';
export const SERVICE_CIDR = '10.96.0.0/12';
export const KUBERNETES_SERVICE_IP = '10.96.0.1';
export const CLUSTER_CIDR = '10.244.0.0/16';

/**
 * Modules the nodes need beyond the lab's own (the VM kernel cannot autoload from the host):
 * overlayfs for containerd, bridge netfilter and veth for the CNI bridge, and netfilter for
 * kube-proxy's iptables (nft) rules and the portmap plugin.
 */
export const NODE_MODULES = [
  'overlay',
  'br_netfilter',
  'veth',
  'nf_tables',
  'nft_compat',
  'nft_chain_nat',
  'nf_conntrack',
  'nf_nat',
  'xt_conntrack',
  'xt_comment',
  'xt_mark',
  'xt_MASQUERADE',
  'xt_statistic',
  'xt_addrtype',
  'xt_nat',
  'xt_tcpudp',
  'xt_multiport',
  'nft_reject_inet',
  'nf_reject_ipv4',
  'ipt_REJECT',
  // kube-proxy also programs IPv6 (ip6tables works here, so it runs dual-stack).
  'ip6t_REJECT',
  // The injected init container's nftables redirect (smc intercept install).
  'nft_redir',
  'nft_ct',
] as const;

export interface ClusterOptions {
  /** OCI image archives (host paths) imported on every node before kubelet starts. */
  images: string[];
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
  /**
   * How long to wait for both nodes to be Ready and kube-proxy synced (default 600 s), counted
   * from the VMs' start: waiting for another cluster to release the lab's host network is not
   * counted (lab-run gives up after LAB_HOSTNET_WAIT, default 600 s).
   */
  timeoutMs?: number;
  /** RAM per VM in MiB (LAB_MEM; default 2048). */
  memMiB?: number;
  /** Keep the run dir (logs, certs, node outputs) after stop(). Also: SMC_KEEP_CLUSTER=1. */
  keep?: boolean;
  /** Parent directory of the run dir (default os.tmpdir()). */
  baseDir?: string;
}

export interface ClusterNode {
  name: NodeName;
  /** eth0 address, the Node's InternalIP (the RoCE link). */
  internalIp: string;
  /** eth1 address (link to the host). */
  hostnetIp: string;
  podCidr: string;
  /** The node's lab out dir on the host: output, console.log, phase, logs/{kubelet,containerd,kube-proxy}.log. */
  outDir: string;
}

export interface KubectlResult {
  stdout: string;
  stderr: string;
}

export interface Cluster {
  /** Admin (system:masters) kubeconfig file. */
  readonly kubeconfigPath: string;
  /** https://127.0.0.1:<port> (the API server listens on every host address). */
  readonly apiServerUrl: string;
  /** Admin client config. */
  readonly kubeConfig: KubeConfig;
  readonly nodes: readonly ['node0', 'node1'];
  readonly nodeInfo: readonly [ClusterNode, ClusterNode];
  /** Everything of this cluster: control plane dir, node configs, lab run dir. */
  readonly runDir: string;
  /** The kubectl built with the cluster binaries (same version as the cluster). */
  readonly kubectlPath: string;
  /** etcd + kube-apiserver + controllers (certs, log paths, helm, user kubeconfigs). */
  readonly controlPlane: ControlPlane;
  /** Seconds from startCluster() to ready. */
  readonly startupSec: number;
  /** Runs kubectl with the admin kubeconfig; rejects with KubectlError on a non-zero exit. */
  kubectl(args: string[], opts?: { timeoutMs?: number; input?: string }): Promise<KubectlResult>;
  /** Kills the VMs, removes the bridge and taps, stops the control plane. Idempotent. */
  stop(): Promise<void>;
}

/** Something the cluster needs is not installed or built. */
export class ClusterPrerequisiteError extends Error {
  constructor(readonly missing: string[]) {
    super(`the test cluster cannot start; missing:\n  - ${missing.join('\n  - ')}`);
    this.name = 'ClusterPrerequisiteError';
  }
}

/** The cluster did not come up; `phase` says how far it got, the message carries log tails. */
export class ClusterStartError extends Error {
  constructor(
    readonly phase: string,
    message: string,
    readonly runDir: string,
  ) {
    super(`cluster start failed (${phase}): ${message}`);
    this.name = 'ClusterStartError';
  }
}

export class KubectlError extends Error {
  constructor(
    readonly args: string[],
    readonly exitCode: number | null,
    readonly stdout: string,
    readonly stderr: string,
  ) {
    super(
      `kubectl ${args.join(' ')} failed (exit ${exitCode ?? 'signal'}): ${stderr.trim() || stdout.trim()}`,
    );
    this.name = 'KubectlError';
  }
}

export interface ClusterBinaries {
  kubeApiserver: string;
  etcd: string;
  helm: string;
  kubelet: string;
  kubeProxy: string;
  kubeScheduler: string;
  kubeControllerManager: string;
  kubectl: string;
}

/**
 * test/apiserver/tools/versions.env as a map. Read from the repo root rather than through
 * binaries.ts's readVersions(), which looks next to its own file (absent in dist/).
 */
function readVersionsEnv(): Map<string, string> {
  const vars = new Map<string, string>();
  const text = readFileSync(join(REPO, 'test', 'apiserver', 'tools', 'versions.env'), 'utf8');
  for (const m of text.matchAll(/^([A-Z_]+)=(\S+)/gm)) {
    if (m[1] !== undefined && m[2] !== undefined) vars.set(m[1], m[2]);
  }
  return vars;
}

function versionVar(name: string): string {
  const v = readVersionsEnv().get(name);
  if (v === undefined) throw new Error(`versions.env: ${name} is not set`);
  return v;
}

/** Where the cluster's binaries are expected (KUBE_APISERVER_BIN etc. override the first three). */
export function clusterBinaries(): ClusterBinaries {
  const versions: Versions = {
    kubernetes: versionVar('KUBERNETES_VERSION'),
    etcd: versionVar('ETCD_VERSION'),
    helm: versionVar('HELM_VERSION'),
  };
  const bin = join(cacheDir(), 'bin');
  const k = (name: string): string => join(bin, `${name}-${versions.kubernetes}`);
  return {
    ...expectedBinaries(versions),
    kubelet: k('kubelet'),
    kubeProxy: k('kube-proxy'),
    kubeScheduler: k('kube-scheduler'),
    kubeControllerManager: k('kube-controller-manager'),
    kubectl: k('kubectl'),
  };
}

/** Everything startCluster needs, as a list of human-readable problems (empty: all there). */
export function clusterPrerequisites(images: string[] = []): string[] {
  const missing: string[] = [];
  const bins = clusterBinaries();
  const absent = Object.entries(bins).filter(([, p]) => !isExecutable(p));
  if (absent.length > 0) {
    missing.push(
      `binaries ${absent.map(([, p]) => p).join(', ')} ` +
        '(run test/apiserver/tools/build-binaries.sh kube-apiserver etcd helm cluster)',
    );
  }
  if (!labReady()) missing.push(`the VM lab in ${labCacheDir()} (run test/vm/setup.sh)`);
  const pkgs: [string, string][] = [
    ['/usr/bin/containerd', 'containerd'],
    ['/usr/sbin/runc', 'runc'],
    ['/usr/lib/cni/bridge', 'containernetworking-plugins'],
    ['/usr/bin/curl', 'curl'],
    ['/usr/sbin/iptables', 'iptables'],
  ];
  const absentPkgs = pkgs.filter(([p]) => !existsSync(p)).map(([, pkg]) => pkg);
  if (absentPkgs.length > 0) missing.push(`Debian packages: apt-get install ${absentPkgs.join(' ')}`);
  if (process.getuid?.() !== 0) missing.push('root (lab-run --hostnet creates tap devices and a bridge)');
  if (!existsSync('/dev/net/tun')) missing.push('/dev/net/tun');
  if (images.length === 0) missing.push('image archives (options.images is empty)');
  for (const img of images) {
    try {
      if (!statSync(img).isFile()) missing.push(`image archive ${img} (not a file)`);
    } catch {
      missing.push(`image archive ${img}`);
    }
  }
  return missing;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function readOr(path: string, fallback = ''): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return fallback;
  }
}

function nodeKubeconfig(server: string, caPem: string, name: string, token: string): string {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [
      { name: 'smc-lab', server, caData: Buffer.from(caPem).toString('base64'), skipTLSVerify: false },
    ],
    users: [{ name, token }],
    contexts: [{ name, cluster: 'smc-lab', user: name }],
    currentContext: name,
  });
  return kc.exportConfig();
}

function nodeReady(node: V1Node): boolean {
  return (node.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
}

/** Emits the complete lines appended to a file since the last call. */
class FileFollower {
  private offset = 0;
  private partial = '';

  constructor(private readonly path: string) {}

  lines(): string[] {
    let fd: number;
    try {
      fd = openSync(this.path, 'r');
    } catch {
      return [];
    }
    try {
      const buf = Buffer.alloc(64 * 1024);
      for (;;) {
        const n = readSync(fd, buf, 0, buf.length, this.offset);
        if (n <= 0) break;
        this.offset += n;
        this.partial += buf.subarray(0, n).toString('utf8');
      }
    } finally {
      closeSync(fd);
    }
    const lines = this.partial.split('\n');
    this.partial = lines.pop() ?? '';
    return lines;
  }
}

/** Kills `pid` (SIGTERM, then SIGKILL) when this process dies, even by SIGKILL. */
function startWatchdog(pid: number): ChildProcess {
  const script = `tail --pid="$1" -f /dev/null 2>/dev/null
kill -TERM "$2" 2>/dev/null
for _ in $(seq 1 100); do kill -0 "$2" 2>/dev/null || exit 0; sleep 0.2; done
kill -KILL "$2" 2>/dev/null`;
  const child = spawn('bash', ['-c', script, 'smc-cluster-watchdog', String(process.pid), String(pid)], {
    detached: true,
    stdio: 'ignore',
  });
  child.unref();
  return child;
}

/** Starts the control plane and both nodes; resolves once both Nodes are Ready and kube-proxy synced. */
export async function startCluster(opts: ClusterOptions): Promise<Cluster> {
  const t0 = Date.now();
  const secs = (): string => ((Date.now() - t0) / 1000).toFixed(1);
  const out = opts.log ?? ((line: string): void => void process.stderr.write(`${line}\n`));
  const log = (line: string): void => out(`[cluster ${secs()}s] ${line}`);
  const images = opts.images.map((p) => resolve(p));
  const missing = clusterPrerequisites(images);
  if (missing.length > 0) throw new ClusterPrerequisiteError(missing);
  const bins = clusterBinaries();
  const keep = opts.keep ?? process.env['SMC_KEEP_CLUSTER'] === '1';
  const timeoutMs = opts.timeoutMs ?? 600_000;

  const runDir = await mkdtemp(join(opts.baseDir ?? tmpdir(), 'smc-cluster-'));
  await chmod(runDir, 0o755);
  const configDir = join(runDir, 'config');
  const labDir = join(runDir, 'lab');
  await mkdir(configDir, { recursive: true });
  const nodeInfo: [ClusterNode, ClusterNode] = [0, 1].map((n) => ({
    name: NODE_NAMES[n] ?? 'node0',
    internalIp: `10.77.0.${n + 1}`,
    hostnetIp: `10.78.0.${n + 1}`,
    podCidr: `10.244.${n}.0/24`,
    outDir: join(labDir, `node${n}`),
  })) as [ClusterNode, ClusterNode];

  // Test cluster: kubelets and kube-proxies authenticate with static tokens and are
  // system:masters (RBAC is the only authorizer; there is no Node authorizer or NodeRestriction).
  const tokens = nodeInfo.map((n) => ({
    token: randomBytes(24).toString('hex'),
    user: `system:node:${n.name}`,
    uid: n.name,
    groups: ['system:masters', 'system:nodes'],
  }));

  let lab: ChildProcess | undefined;
  let labExit: string | undefined;
  let labLog = '';
  let watchdog: ChildProcess | undefined;
  let cp: ControlPlane | undefined;
  let stopped = false;
  // The nodes' script output (progress lines, failures), followed for the life of the cluster.
  const followers = nodeInfo.map((n) => ({ name: n.name, f: new FileFollower(join(n.outDir, 'output')) }));
  const followNodes = (): void => {
    for (const { name, f } of followers) for (const line of f.lines()) log(`[${name}] ${line}`);
  };
  const followTimer = setInterval(followNodes, 1000);
  followTimer.unref();
  const killLabOnExit = (): void => {
    if (lab?.pid !== undefined && lab.exitCode === null) lab.kill('SIGTERM');
  };

  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    clearInterval(followTimer);
    followNodes();
    const ts = Date.now();
    const child = lab;
    if (child !== undefined && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      // lab-run kills the VMs (their state is all tmpfs) and removes the taps and the bridge.
      child.kill('SIGTERM');
      const done = await Promise.race([exited.then(() => true), sleep(30_000).then(() => false)]);
      if (!done) {
        child.kill('SIGKILL');
        await exited;
      }
    }
    process.off('exit', killLabOnExit);
    if (watchdog?.pid !== undefined && watchdog.exitCode === null) {
      try {
        process.kill(-watchdog.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await cp?.stop();
    if (!keep) await rm(runDir, { recursive: true, force: true });
    log(`stopped in ${((Date.now() - ts) / 1000).toFixed(1)}s${keep ? `; kept ${runDir}` : ''}`);
  };

  const startNodes = async (info: { server: string; port: number; caCert: string }): Promise<void> => {
    const server = `https://${HOST_IP}:${info.port}`;
    const env = [
      `KUBELET=${bins.kubelet}`,
      `KUBE_PROXY=${bins.kubeProxy}`,
      `PAUSE_IMAGE=${versionVar('PAUSE_IMAGE')}`,
      `CLUSTER_CIDR=${CLUSTER_CIDR}`,
      `KUBERNETES_SVC_IP=${KUBERNETES_SERVICE_IP}`,
    ];
    await writeFile(join(configDir, 'cluster.env'), env.join('\n') + '\n');
    await writeFile(join(configDir, 'images.txt'), images.join('\n') + '\n');
    await Promise.all(
      nodeInfo.map((n, i) =>
        writeFile(
          join(configDir, `${n.name}.kubeconfig`),
          nodeKubeconfig(server, info.caCert, n.name, tokens[i]?.token ?? ''),
          { mode: 0o600 },
        ),
      ),
    );
    const wrapper = `export SMC_CLUSTER_DIR=${configDir}; exec bash ${NODE_SCRIPT}`;
    const args = ['--hostnet', '--timeout', String(7 * 24 * 3600), '--keep', labDir, '--quiet'];
    args.push('-e', wrapper, '-e', wrapper);
    const env2 = {
      ...process.env,
      LAB_EXTRA_MODULES: [process.env['LAB_EXTRA_MODULES'] ?? '', ...NODE_MODULES].join(' ').trim(),
      LAB_MEM: String(opts.memMiB ?? 2048),
    };
    log(`starting the VMs (lab-run --hostnet, run dir ${labDir})`);
    const child = spawn(LAB_RUN, args, { env: env2, stdio: ['ignore', 'pipe', 'pipe'] });
    lab = child;
    process.on('exit', killLabOnExit);
    if (child.pid !== undefined) watchdog = startWatchdog(child.pid);
    const onData = (buf: Buffer, partial: { s: string }): void => {
      partial.s += buf.toString('utf8');
      const lines = partial.s.split('\n');
      partial.s = lines.pop() ?? '';
      for (const line of lines) {
        labLog += `${line}\n`;
        if (labLog.length > 200_000) labLog = labLog.slice(-100_000);
        out(`[cluster ${secs()}s] ${line}`);
      }
    };
    const o = { s: '' };
    const e = { s: '' };
    child.stdout?.on('data', (b: Buffer) => onData(b, o));
    child.stderr?.on('data', (b: Buffer) => onData(b, e));
    child.on('exit', (code, signal) => {
      labExit = signal !== null ? `killed by ${signal}` : `exit code ${code}`;
      if (!stopped) log(`lab-run ended (${labExit})`);
    });
  };

  const failure = (phase: string, message: string): ClusterStartError => {
    followNodes();
    const tails = nodeInfo
      .map((n) => {
        const logs = ['kubelet', 'kube-proxy', 'containerd']
          .map((l) => `--- ${n.name} ${l}.log ---\n${tailFile(join(n.outDir, 'logs', `${l}.log`), 15)}`)
          .join('\n');
        const console = `--- ${n.name} console ---\n${tailFile(join(n.outDir, 'console.log'), 8)}`;
        return `--- ${n.name} phase: ${readOr(join(n.outDir, 'phase')).trim()}\n${logs}\n${console}`;
      })
      .join('\n');
    const cpLogs = cp ? `--- kube-apiserver ---\n${tailFile(cp.apiServerLogPath, 15)}\n` : '';
    const labTail = labLog.split('\n').slice(-40).join('\n');
    const where = keep ? `run dir kept: ${runDir}` : 'run dir removed; SMC_KEEP_CLUSTER=1 keeps it';
    return new ClusterStartError(
      phase,
      `${message} (${where})\n--- lab-run ---\n${labTail}\n${cpLogs}${tails}`,
      runDir,
    );
  };

  let phase = 'control plane';
  try {
    log(`starting etcd, kube-apiserver, kube-controller-manager, kube-scheduler (run dir ${runDir})`);
    cp = await startControlPlane({
      baseDir: runDir,
      keepDir: true, // runDir as a whole is removed by stop()
      binaries: { kubeApiserver: bins.kubeApiserver, etcd: bins.etcd, helm: bins.helm },
      bindAddress: '0.0.0.0',
      advertiseAddress: HOST_IP,
      servingCertSans: [
        `IP:${HOST_IP}`,
        `IP:${KUBERNETES_SERVICE_IP}`,
        'DNS:kubernetes',
        'DNS:kubernetes.default',
        'DNS:kubernetes.default.svc',
        'DNS:kubernetes.default.svc.cluster.local',
      ],
      serviceClusterIpRange: SERVICE_CIDR,
      staticTokens: tokens,
      kubelets: true,
      // The host has no kube-proxy: webhooks and aggregated APIs are called at endpoint pod IPs.
      apiServerArgs: ['--enable-aggregator-routing=true'],
      controllers: {
        kubeControllerManager: bins.kubeControllerManager,
        kubeScheduler: bins.kubeScheduler,
        // Each node has a fixed /24 (its CNI config), so no node CIDR allocation.
        controllerManagerArgs: [`--cluster-cidr=${CLUSTER_CIDR}`, '--allocate-node-cidrs=false'],
      },
      // The VMs boot while etcd and the API server start; kubelets retry until it answers.
      beforeStart: startNodes,
    });
    const controlPlane = cp;
    log(`control plane ready at ${cp.server}`);

    phase = 'nodes';
    const core = cp.kubeConfig.makeApiClient(CoreV1Api);
    // Set once lab-run holds the host network lock and has prepared the nodes.
    let deadline: number | undefined;
    const seen = new Set<string>();
    const milestone = (key: string, text: string): void => {
      if (seen.has(key)) return;
      seen.add(key);
      log(text);
    };
    for (;;) {
      if (labExit !== undefined) throw failure(phase, `lab-run ended early (${labExit})`);
      for (const n of nodeInfo) {
        const p = readOr(join(n.outDir, 'phase')).trim();
        if (p.startsWith('FAILED')) throw failure(phase, `${n.name}: ${p}`);
      }
      let nodes: V1Node[] = [];
      try {
        nodes = (await core.listNode()).items;
      } catch {
        // transient
      }
      for (const node of nodes) {
        const name = node.metadata?.name ?? '?';
        milestone(`reg-${name}`, `${name} registered`);
        if (nodeReady(node)) milestone(`ready-${name}`, `${name} Ready`);
      }
      for (const n of nodeInfo) {
        if (existsSync(join(n.outDir, 'cluster-ready'))) {
          milestone(`proxy-${n.name}`, `${n.name}: kube-proxy synced (kubernetes Service reachable)`);
        }
      }
      let saReady = false;
      try {
        await core.readNamespacedServiceAccount({ name: 'default', namespace: 'default' });
        saReady = true;
        milestone('sa', 'default ServiceAccount present (controller-manager running)');
      } catch {
        // not yet
      }
      const allReady =
        NODE_NAMES.every((name) => nodes.some((n) => n.metadata?.name === name && nodeReady(n))) &&
        nodeInfo.every((n) => existsSync(join(n.outDir, 'cluster-ready'))) &&
        saReady;
      if (allReady) break;
      if (deadline === undefined && existsSync(join(labDir, 'node0', 'lab.env')))
        deadline = Date.now() + timeoutMs;
      if (deadline !== undefined && Date.now() > deadline) {
        throw failure(phase, `not ready ${timeoutMs / 1000}s after the VMs started`);
      }
      await sleep(1000);
    }
    const startupSec = (Date.now() - t0) / 1000;
    log(`cluster ready in ${startupSec.toFixed(1)}s`);

    const kubectl = (
      args: string[],
      o: { timeoutMs?: number; input?: string } = {},
    ): Promise<KubectlResult> =>
      new Promise((resolvePromise, reject) => {
        const child = execFile(
          bins.kubectl,
          args,
          {
            env: { ...process.env, KUBECONFIG: controlPlane.kubeconfigPath },
            timeout: o.timeoutMs ?? 60_000,
            maxBuffer: 64 * 1024 * 1024,
          },
          (err, stdout, stderr) => {
            if (err) {
              const code = typeof err.code === 'number' ? err.code : null;
              reject(new KubectlError(args, code, stdout, stderr));
            } else {
              resolvePromise({ stdout, stderr });
            }
          },
        );
        if (o.input !== undefined) child.stdin?.end(o.input);
        else child.stdin?.end();
      });

    return {
      kubeconfigPath: cp.kubeconfigPath,
      apiServerUrl: cp.server,
      kubeConfig: cp.kubeConfig,
      nodes: NODE_NAMES,
      nodeInfo,
      runDir,
      kubectlPath: bins.kubectl,
      controlPlane,
      startupSec,
      kubectl,
      stop,
    };
  } catch (err) {
    const wrapped =
      err instanceof ClusterStartError
        ? err
        : failure(phase, err instanceof Error ? err.message : String(err));
    await stop().catch(() => undefined);
    throw wrapped;
  }
}
