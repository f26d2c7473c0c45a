/**
 * A real Kubernetes control plane (etcd + kube-apiserver, no controllers, no kubelet) for
 * integration tests, in the manner of controller-runtime's envtest.
 *
 *   const cp = await startControlPlane();          // builds the binaries on first use
 *   const core = cp.kubeConfig.makeApiClient(CoreV1Api);   // admin (system:masters)
 *   const alice = await cp.userKubeConfig('alice', ['smc-viewers']);  // RBAC-checked user
 *   const sa = await cp.serviceAccountKubeConfig('smc-system', 'smc-operator');
 *   await cp.restartApiServer();                   // same port, same etcd data
 *   await cp.helm(['template', 'charts/smc-operator']);
 *   await cp.stop();                               // in afterAll
 *
 * What it runs: etcd on a free 127.0.0.1 port with a data dir in a fresh temp dir, and
 * kube-apiserver bound to 127.0.0.1 (HTTPS only) with a throwaway CA, serving cert,
 * service-account signing key, --authorization-mode=RBAC, client-certificate authentication
 * and the default admission plugins (which include MutatingAdmissionWebhook,
 * ValidatingAdmissionWebhook and ValidatingAdmissionPolicy). Extra flags: `apiServerArgs`.
 *
 * No controller-manager runs, so: namespaces get no `default` ServiceAccount (create one before
 * creating Pods, since the ServiceAccount admission plugin requires it), deleted namespaces stay
 * Terminating, Deployments/DaemonSets create no Pods, garbage collection does not happen.
 *
 * After restartApiServer() the API server's watch cache starts afresh, so a watch resumed from a
 * resourceVersion older than the restart usually gets 410 Gone: relist, as informers do.
 *
 * Files: certificates in `certDir`, logs in `etcdLogPath` / `apiServerLogPath` (the tail of the
 * relevant log is included in any startup error). Processes are killed by `stop()`, on process
 * exit, and by a small watchdog if the test process dies without running either.
 * Set SMC_KEEP_CONTROL_PLANE=1 (or `keepDir: true`) to keep the temp dir after stop.
 *
 * For a cluster with real nodes (test/cluster): `bindAddress`, `advertiseAddress`,
 * `servingCertSans`, `serviceClusterIpRange`, `staticTokens`, `kubelets` and `controllers`
 * (kube-controller-manager and kube-scheduler as two more managed processes).
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { ensureBinaries, type Binaries } from './binaries.js';

export interface ControlPlaneOptions {
  /** Parent directory for the temp dir (default: os.tmpdir()). */
  baseDir?: string;
  /** Keep the temp dir (certs, etcd data, logs) after stop(). Also: SMC_KEEP_CONTROL_PLANE=1. */
  keepDir?: boolean;
  /** Extra kube-apiserver flags, e.g. ['--disable-admission-plugins=ServiceAccount']. */
  apiServerArgs?: string[];
  /** Extra etcd flags. */
  etcdArgs?: string[];
  /** How long to wait for etcd and then for the API server to be ready (default 120 s each). */
  startTimeoutMs?: number;
  /** Binary paths to use instead of ensureBinaries() (which may build them). */
  binaries?: Binaries;
  /** Address the API server listens on (default 127.0.0.1; 0.0.0.0 for every interface). */
  bindAddress?: string;
  /** Address published as the `kubernetes` Service's endpoint (default 127.0.0.1). */
  advertiseAddress?: string;
  /** More subjectAltNames for the serving certificate, e.g. 'IP:10.96.0.1', 'DNS:kubernetes.default.svc'. */
  servingCertSans?: string[];
  /** --service-cluster-ip-range (default 10.0.0.0/24). */
  serviceClusterIpRange?: string;
  /** Bearer tokens the API server accepts (--token-auth-file), e.g. for kubelets. */
  staticTokens?: StaticToken[];
  /**
   * The API server talks to kubelets (logs, exec, port-forward): it gets a client certificate for
   * them and dials their InternalIP.
   */
  kubelets?: boolean;
  /** Also run kube-controller-manager and kube-scheduler once the API server is ready. */
  controllers?: ControllersOptions;
  /**
   * Called once the certificates exist and the port is known, before etcd starts: lets a caller
   * start slow things (VMs) in parallel with the control plane.
   */
  beforeStart?: (info: { server: string; port: number; caCert: string; certDir: string }) => Promise<void>;
}

export interface StaticToken {
  token: string;
  user: string;
  uid: string;
  groups: string[];
}

export interface ControllersOptions {
  kubeControllerManager: string;
  kubeScheduler: string;
  /** Extra kube-controller-manager flags, e.g. ['--cluster-cidr=10.244.0.0/16']. */
  controllerManagerArgs?: string[];
  schedulerArgs?: string[];
}

export interface UserKubeConfig {
  /** Client config authenticating as the user (client cert CN=user, O=each group). */
  kubeConfig: KubeConfig;
  /** The same, written as a kubeconfig file (for helm, kubectl or a spawned operator). */
  kubeconfigPath: string;
}

export interface HelmResult {
  stdout: string;
  stderr: string;
}

export interface ControlPlane {
  /** API server URL, https://127.0.0.1:<port>. */
  readonly server: string;
  /** Admin (CN=admin, O=system:masters) kubeconfig file. */
  readonly kubeconfigPath: string;
  /** Admin client config. */
  readonly kubeConfig: KubeConfig;
  /** Temp dir holding everything below. */
  readonly dir: string;
  /** CA (ca.crt/ca.key), serving cert, service-account keys and client certs. */
  readonly certDir: string;
  /** PEM of the CA that signed the serving and client certs. */
  readonly caCert: string;
  /** etcd client URL, http://127.0.0.1:<port>. */
  readonly etcdEndpoint: string;
  readonly etcdLogPath: string;
  readonly apiServerLogPath: string;
  /** Set when `controllers` was given. */
  readonly controllerManagerLogPath: string | undefined;
  readonly schedulerLogPath: string | undefined;
  readonly binaries: Binaries;
  /** Kubeconfig for `user` in `groups` (no RBAC grants unless the test creates them). */
  userKubeConfig(user: string, groups?: string[]): Promise<UserKubeConfig>;
  /**
   * Kubeconfig that authenticates as ServiceAccount `name` in `namespace` (user
   * system:serviceaccount:<ns>:<name>, groups system:serviceaccounts[:<ns>]), so RBAC written
   * for the ServiceAccount applies. The ServiceAccount object itself need not exist.
   */
  serviceAccountKubeConfig(namespace: string, name: string): Promise<UserKubeConfig>;
  /** Stops the API server (SIGTERM) and starts it again on the same port with the same etcd. */
  restartApiServer(): Promise<void>;
  stopApiServer(): Promise<void>;
  startApiServer(): Promise<void>;
  /** Stops etcd (the API server keeps running and reports it unhealthy). */
  stopEtcd(): Promise<void>;
  startEtcd(): Promise<void>;
  /** Runs the pinned helm against this cluster (admin kubeconfig, isolated helm dirs). */
  helm(args: string[], opts?: { kubeconfigPath?: string; timeoutMs?: number }): Promise<HelmResult>;
  /** Stops both processes and removes the temp dir. Idempotent. */
  stop(): Promise<void>;
}

const LOG_TAIL_LINES = 40;

/** Last `lines` lines of a log file (empty string if unreadable). */
export function tailFile(path: string, lines = LOG_TAIL_LINES): string {
  try {
    const all = readFileSync(path, 'utf8').split('\n');
    return all.slice(Math.max(0, all.length - lines - 1)).join('\n');
  } catch {
    return '';
  }
}

function run(
  cmd: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<HelmResult> {
  return new Promise((resolvePromise, reject) => {
    execFile(
      cmd,
      args,
      { env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) {
          reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stderr}`));
        } else {
          resolvePromise({ stdout, stderr });
        }
      },
    );
  });
}

/** `n` distinct free ports on 127.0.0.1 (all held open until each is known, then released). */
async function freePorts(n: number): Promise<number[]> {
  const servers = Array.from({ length: n }, () => createServer());
  try {
    return await Promise.all(
      servers.map(
        (srv) =>
          new Promise<number>((resolvePromise, reject) => {
            srv.on('error', reject);
            srv.listen(0, '127.0.0.1', () => {
              const addr = srv.address();
              if (typeof addr === 'object' && addr !== null) resolvePromise(addr.port);
              else reject(new Error('no free port'));
            });
          }),
      ),
    );
  } finally {
    await Promise.all(
      servers.map((srv) => new Promise<void>((r) => (srv.listening ? srv.close(() => r()) : r()))),
    );
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// Certificates (openssl CLI, EC P-256 keys).

const subjectPart = (s: string): string => s.replace(/[/\\+,=]/g, (c) => `\\${c}`);

class CertAuthority {
  private constructor(
    readonly dir: string,
    readonly caCertPath: string,
    readonly caKeyPath: string,
  ) {}

  static async create(dir: string): Promise<CertAuthority> {
    await mkdir(dir, { recursive: true });
    const ca = new CertAuthority(dir, join(dir, 'ca.crt'), join(dir, 'ca.key'));
    // prettier-ignore
    await run('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', ca.caKeyPath, '-out', ca.caCertPath, '-days', '3650', '-subj', '/CN=smc-test-ca',
      '-addext', 'basicConstraints=critical,CA:TRUE',
      '-addext', 'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
    ]);
    return ca;
  }

  /** Issues `<name>.crt`/`<name>.key` in the CA dir; returns their paths. */
  async issue(
    name: string,
    subject: string,
    usage: 'server' | 'client',
    sans: string[] = [],
  ): Promise<{ certPath: string; keyPath: string }> {
    const keyPath = join(this.dir, `${name}.key`);
    const certPath = join(this.dir, `${name}.crt`);
    const csrPath = join(this.dir, `${name}.csr`);
    const extPath = join(this.dir, `${name}.ext`);
    const ext = [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      `extendedKeyUsage=${usage === 'server' ? 'serverAuth' : 'clientAuth'}`,
    ];
    if (sans.length > 0) ext.push(`subjectAltName=${sans.join(',')}`);
    await writeFile(extPath, ext.join('\n') + '\n');
    // prettier-ignore
    await run('openssl', [
      'req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', keyPath, '-out', csrPath, '-subj', subject,
    ]);
    // prettier-ignore
    await run('openssl', [
      'x509', '-req', '-in', csrPath, '-CA', this.caCertPath, '-CAkey', this.caKeyPath,
      '-set_serial', `0x${randomBytes(12).toString('hex')}`, '-days', '365',
      '-extfile', extPath, '-out', certPath,
    ]);
    await Promise.all([rm(csrPath, { force: true }), rm(extPath, { force: true })]);
    return { certPath, keyPath };
  }

  /** Client certificate for `user` in `groups` (Kubernetes reads CN as user, O as groups). */
  issueClient(name: string, user: string, groups: string[]): Promise<{ certPath: string; keyPath: string }> {
    const subject = groups.map((g) => `/O=${subjectPart(g)}`).join('') + `/CN=${subjectPart(user)}`;
    return this.issue(name, subject, 'client');
  }
}

// ---------------------------------------------------------------------------------------------
// Child processes.

/** Live child pids of every control plane in this process, killed on process exit. */
const livePids = new Set<number>();
const liveDirs = new Map<string, boolean>(); // dir -> keep
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const pid of livePids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    for (const [dir, keep] of liveDirs) {
      if (!keep) rmSync(dir, { recursive: true, force: true });
    }
  });
}

class ManagedProcess {
  private child: ChildProcess | undefined;
  private exitPromise: Promise<void> = Promise.resolve();
  private exitDescription: string | undefined;

  constructor(
    readonly name: string,
    readonly bin: string,
    readonly args: string[],
    readonly logPath: string,
    readonly pidPath: string,
  ) {}

  get running(): boolean {
    return this.child !== undefined && this.exitDescription === undefined;
  }

  /** Set once the process has exited, e.g. "exit code 1". */
  get exited(): string | undefined {
    return this.child === undefined ? undefined : this.exitDescription;
  }

  start(): void {
    if (this.running) throw new Error(`${this.name} is already running`);
    const fd = openSync(this.logPath, 'a');
    writeSync(fd, `\n=== ${new Date().toISOString()} starting ${this.bin} ${this.args.join(' ')}\n`);
    let child: ChildProcess;
    try {
      child = spawn(this.bin, this.args, { stdio: ['ignore', fd, fd] });
    } finally {
      closeSync(fd);
    }
    this.child = child;
    this.exitDescription = undefined;
    const pid = child.pid;
    if (pid !== undefined) {
      livePids.add(pid);
      // For the watchdog, which kills by pid if this process dies abruptly.
      writeFileSyncSafe(this.pidPath, `${pid}\n`);
    }
    this.exitPromise = new Promise((resolvePromise) => {
      const onGone = (desc: string): void => {
        if (this.child === child && this.exitDescription === undefined) this.exitDescription = desc;
        if (pid !== undefined) livePids.delete(pid);
        resolvePromise();
      };
      child.on('error', (err) => onGone(`failed to start: ${err.message}`));
      child.on('exit', (code, signal) =>
        onGone(signal !== null ? `killed by ${signal}` : `exit code ${code}`),
      );
    });
  }

  /** SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    const child = this.child;
    if (child === undefined || !this.running) return;
    child.kill('SIGTERM');
    const timedOut = await Promise.race([
      this.exitPromise.then(() => false),
      sleep(graceMs).then(() => true),
    ]);
    if (timedOut) {
      child.kill('SIGKILL');
      await this.exitPromise;
    }
    rmSync(this.pidPath, { force: true });
  }

  logTail(): string {
    return `--- last lines of ${this.logPath} ---\n${tailFile(this.logPath)}`;
  }
}

function writeFileSyncSafe(path: string, data: string): void {
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, data);
  } finally {
    closeSync(fd);
  }
}

/**
 * Starts a detached shell that waits for this Node process to die and then kills the control
 * plane's processes (by the pid files in `dir`, only if their command line names `dir`).
 * Covers a test process that is SIGKILLed, where no 'exit' handler runs.
 */
function startWatchdog(dir: string, keep: boolean): ChildProcess {
  const script = `
parent="$1"; dir="$2"; keep="$3"
tail --pid="$parent" -f /dev/null 2>/dev/null
killall_in_dir() {
  for f in "$dir"/*.pid; do
    [ -f "$f" ] || continue
    pid="$(cat "$f" 2>/dev/null)"
    [ -n "$pid" ] && grep -qaF -- "$dir" "/proc/$pid/cmdline" 2>/dev/null && kill "-$1" "$pid" 2>/dev/null
  done
}
killall_in_dir TERM
sleep 3
killall_in_dir KILL
[ "$keep" = 1 ] || rm -rf -- "$dir"
`;
  const child = spawn(
    'bash',
    ['-c', script, 'smc-control-plane-watchdog', String(process.pid), dir, keep ? '1' : '0'],
    {
      detached: true,
      stdio: 'ignore',
    },
  );
  child.unref();
  return child;
}

// ---------------------------------------------------------------------------------------------
// Readiness probes.

interface HttpResult {
  status: number;
  body: string;
}

function httpGet(url: string, tls?: { ca: string; cert: string; key: string }): Promise<HttpResult> {
  return new Promise((resolvePromise, reject) => {
    const u = new URL(url);
    const opts = {
      host: u.hostname,
      port: u.port,
      path: u.pathname + u.search,
      method: 'GET',
      timeout: 3000,
      ...(tls ?? {}),
    };
    const req = (tls ? httpsRequest : httpRequest)(opts, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolvePromise({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

async function waitUntil(
  what: string,
  proc: ManagedProcess,
  timeoutMs: number,
  probe: () => Promise<string | true>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: string;
  for (;;) {
    const exited = proc.exited;
    if (exited !== undefined) {
      throw new Error(`${proc.name} ${exited} before becoming ready\n${proc.logTail()}`);
    }
    try {
      const r = await probe();
      if (r === true) return;
      last = r;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() > deadline) {
      throw new Error(`${what}: not ready after ${timeoutMs} ms (last probe: ${last})\n${proc.logTail()}`);
    }
    await sleep(250);
  }
}

function etcdSupportsNoFsync(etcdBin: string): boolean {
  try {
    const out = execFileSync(etcdBin, ['--version'], { encoding: 'utf8', timeout: 10_000 });
    const m = /etcd Version: (\d+)\.(\d+)/.exec(out);
    return m !== null && (Number(m[1]) > 3 || (Number(m[1]) === 3 && Number(m[2]) >= 5));
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------

function makeKubeConfig(
  server: string,
  caPem: string,
  user: string,
  certPem: string,
  keyPem: string,
): KubeConfig {
  const b64 = (s: string): string => Buffer.from(s).toString('base64');
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'smc-test', server, caData: b64(caPem), skipTLSVerify: false }],
    users: [{ name: user, certData: b64(certPem), keyData: b64(keyPem) }],
    contexts: [{ name: `${user}@smc-test`, cluster: 'smc-test', user }],
    currentContext: `${user}@smc-test`,
  });
  return kc;
}

class ControlPlaneImpl implements ControlPlane {
  readonly server: string;
  readonly etcdEndpoint: string;
  readonly etcdLogPath: string;
  readonly apiServerLogPath: string;
  readonly controllerManagerLogPath: string | undefined;
  readonly schedulerLogPath: string | undefined;
  readonly kubeconfigPath: string;
  kubeConfig!: KubeConfig;
  caCert = '';
  private readonly etcd: ManagedProcess;
  private readonly apiServer: ManagedProcess;
  private readonly controllers: ManagedProcess[] = [];
  private adminTls: { ca: string; cert: string; key: string } | undefined;
  private watchdog: ChildProcess | undefined;
  private ca: CertAuthority | undefined;
  private readonly users = new Map<string, Promise<UserKubeConfig>>();
  private stopped = false;

  constructor(
    readonly dir: string,
    readonly certDir: string,
    readonly binaries: Binaries,
    private readonly opts: ControlPlaneOptions,
    private readonly keep: boolean,
    private readonly ports: {
      etcdClient: number;
      etcdPeer: number;
      apiServer: number;
      controllerManager: number;
      scheduler: number;
    },
  ) {
    const bind = opts.bindAddress ?? '127.0.0.1';
    const local = bind === '0.0.0.0' || bind === '::' ? '127.0.0.1' : bind;
    this.server = `https://${local}:${ports.apiServer}`;
    this.etcdEndpoint = `http://127.0.0.1:${ports.etcdClient}`;
    this.etcdLogPath = join(dir, 'etcd.log');
    this.apiServerLogPath = join(dir, 'kube-apiserver.log');
    const withControllers = opts.controllers !== undefined;
    this.controllerManagerLogPath = withControllers ? join(dir, 'kube-controller-manager.log') : undefined;
    this.schedulerLogPath = withControllers ? join(dir, 'kube-scheduler.log') : undefined;
    this.kubeconfigPath = join(dir, 'admin.kubeconfig');
    const peer = `http://127.0.0.1:${ports.etcdPeer}`;
    const etcdArgs = [
      '--name=default',
      `--data-dir=${join(dir, 'etcd-data')}`,
      `--listen-client-urls=${this.etcdEndpoint}`,
      `--advertise-client-urls=${this.etcdEndpoint}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=default=${peer}`,
    ];
    if (etcdSupportsNoFsync(binaries.etcd)) etcdArgs.push('--unsafe-no-fsync=true');
    this.etcd = new ManagedProcess(
      'etcd',
      binaries.etcd,
      [...etcdArgs, ...(opts.etcdArgs ?? [])],
      this.etcdLogPath,
      join(dir, 'etcd.pid'),
    );
    const c = (f: string): string => join(certDir, f);
    const apiArgs = [
      `--etcd-servers=${this.etcdEndpoint}`,
      `--bind-address=${bind}`,
      `--advertise-address=${opts.advertiseAddress ?? '127.0.0.1'}`,
      `--secure-port=${ports.apiServer}`,
      `--cert-dir=${join(dir, 'apiserver-certs')}`,
      `--tls-cert-file=${c('apiserver.crt')}`,
      `--tls-private-key-file=${c('apiserver.key')}`,
      `--client-ca-file=${c('ca.crt')}`,
      `--service-account-key-file=${c('sa.pub')}`,
      `--service-account-signing-key-file=${c('sa.key')}`,
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      '--api-audiences=https://kubernetes.default.svc.cluster.local',
      `--service-cluster-ip-range=${opts.serviceClusterIpRange ?? '10.0.0.0/24'}`,
      '--authorization-mode=RBAC',
      '--allow-privileged=true',
      '--profiling=false',
      // Bound the HTTP server shutdown to ~2 s after in-flight requests drain; otherwise an open
      // watch holds a SIGTERMed API server up for --request-timeout (60 s).
      '--shutdown-send-retry-after=true',
    ];
    if (opts.staticTokens !== undefined) apiArgs.push(`--token-auth-file=${join(dir, 'tokens.csv')}`);
    if (opts.kubelets === true) {
      apiArgs.push(
        `--kubelet-client-certificate=${c('apiserver-kubelet-client.crt')}`,
        `--kubelet-client-key=${c('apiserver-kubelet-client.key')}`,
        // Node names (node0, ...) do not resolve on the host.
        '--kubelet-preferred-address-types=InternalIP',
      );
    }
    this.apiServer = new ManagedProcess(
      'kube-apiserver',
      binaries.kubeApiserver,
      [...apiArgs, ...(opts.apiServerArgs ?? [])],
      this.apiServerLogPath,
      join(dir, 'kube-apiserver.pid'),
    );
  }

  private get timeoutMs(): number {
    return this.opts.startTimeoutMs ?? 120_000;
  }

  async init(): Promise<void> {
    liveDirs.set(this.dir, this.keep);
    this.watchdog = startWatchdog(this.dir, this.keep);
    const ca = await CertAuthority.create(this.certDir);
    this.ca = ca;
    await ca.issue('apiserver', '/CN=kube-apiserver', 'server', [
      'IP:127.0.0.1',
      'DNS:localhost',
      ...(this.opts.servingCertSans ?? []),
    ]);
    if (this.opts.kubelets === true) {
      await ca.issueClient('apiserver-kubelet-client', 'kube-apiserver-kubelet-client', ['system:masters']);
    }
    if (this.opts.staticTokens !== undefined) {
      // CSV: token,user,uid,"group1,group2"
      const rows = this.opts.staticTokens.map((t) => `${t.token},${t.user},${t.uid},"${t.groups.join(',')}"`);
      await writeFile(join(this.dir, 'tokens.csv'), rows.join('\n') + '\n', { mode: 0o600 });
    }
    const admin = await ca.issueClient('admin', 'admin', ['system:masters']);
    // prettier-ignore
    await run('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', join(this.certDir, 'sa.key')]);
    await run('openssl', [
      'pkey',
      '-in',
      join(this.certDir, 'sa.key'),
      '-pubout',
      '-out',
      join(this.certDir, 'sa.pub'),
    ]);
    this.caCert = await readFile(ca.caCertPath, 'utf8');
    const [cert, key] = await Promise.all([
      readFile(admin.certPath, 'utf8'),
      readFile(admin.keyPath, 'utf8'),
    ]);
    this.adminTls = { ca: this.caCert, cert, key };
    this.kubeConfig = makeKubeConfig(this.server, this.caCert, 'admin', cert, key);
    await writeFile(this.kubeconfigPath, this.kubeConfig.exportConfig(), { mode: 0o600 });
    await this.opts.beforeStart?.({
      server: this.server,
      port: this.ports.apiServer,
      caCert: this.caCert,
      certDir: this.certDir,
    });
    await this.startEtcd();
    await this.startApiServer();
    this.startControllers();
  }

  /** kube-controller-manager and kube-scheduler (admin credentials, no leader election). */
  private startControllers(): void {
    const ctl = this.opts.controllers;
    if (
      ctl === undefined ||
      this.controllerManagerLogPath === undefined ||
      this.schedulerLogPath === undefined
    ) {
      return;
    }
    const common = [
      `--kubeconfig=${this.kubeconfigPath}`,
      `--authentication-kubeconfig=${this.kubeconfigPath}`,
      `--authorization-kubeconfig=${this.kubeconfigPath}`,
      '--leader-elect=false',
      '--bind-address=127.0.0.1',
    ];
    const c = (f: string): string => join(this.certDir, f);
    const kcm = new ManagedProcess(
      'kube-controller-manager',
      ctl.kubeControllerManager,
      [
        ...common,
        `--secure-port=${this.ports.controllerManager}`,
        `--cert-dir=${join(this.dir, 'kcm-certs')}`,
        `--service-account-private-key-file=${c('sa.key')}`,
        `--root-ca-file=${c('ca.crt')}`,
        `--service-cluster-ip-range=${this.opts.serviceClusterIpRange ?? '10.0.0.0/24'}`,
        ...(ctl.controllerManagerArgs ?? []),
      ],
      this.controllerManagerLogPath,
      join(this.dir, 'kube-controller-manager.pid'),
    );
    const sched = new ManagedProcess(
      'kube-scheduler',
      ctl.kubeScheduler,
      [
        ...common,
        `--secure-port=${this.ports.scheduler}`,
        `--cert-dir=${join(this.dir, 'scheduler-certs')}`,
        ...(ctl.schedulerArgs ?? []),
      ],
      this.schedulerLogPath,
      join(this.dir, 'kube-scheduler.pid'),
    );
    this.controllers.push(kcm, sched);
    kcm.start();
    sched.start();
  }

  async startEtcd(): Promise<void> {
    this.etcd.start();
    await waitUntil('etcd', this.etcd, this.timeoutMs, async () => {
      const r = await httpGet(`${this.etcdEndpoint}/health`);
      return r.status === 200 && r.body.includes('"true"') ? true : `HTTP ${r.status} ${r.body}`;
    });
  }

  stopEtcd(): Promise<void> {
    return this.etcd.stop();
  }

  async startApiServer(): Promise<void> {
    const tls = this.adminTls;
    if (tls === undefined) throw new Error('control plane not initialised');
    this.apiServer.start();
    await waitUntil('kube-apiserver', this.apiServer, this.timeoutMs, async () => {
      const r = await httpGet(`${this.server}/readyz`, tls);
      return r.status === 200 ? true : `HTTP ${r.status} ${r.body.slice(0, 2000)}`;
    });
  }

  stopApiServer(): Promise<void> {
    return this.apiServer.stop();
  }

  async restartApiServer(): Promise<void> {
    await this.stopApiServer();
    await this.startApiServer();
  }

  userKubeConfig(user: string, groups: string[] = []): Promise<UserKubeConfig> {
    const key = JSON.stringify([user, groups]);
    let p = this.users.get(key);
    if (p === undefined) {
      p = this.makeUserKubeConfig(user, groups, this.users.size);
      this.users.set(key, p);
    }
    return p;
  }

  serviceAccountKubeConfig(namespace: string, name: string): Promise<UserKubeConfig> {
    return this.userKubeConfig(`system:serviceaccount:${namespace}:${name}`, [
      'system:serviceaccounts',
      `system:serviceaccounts:${namespace}`,
    ]);
  }

  private async makeUserKubeConfig(user: string, groups: string[], index: number): Promise<UserKubeConfig> {
    const ca = this.ca;
    if (ca === undefined) throw new Error('control plane not initialised');
    const name = `user-${index}`;
    const { certPath, keyPath } = await ca.issueClient(name, user, groups);
    const [cert, key] = await Promise.all([readFile(certPath, 'utf8'), readFile(keyPath, 'utf8')]);
    const kubeConfig = makeKubeConfig(this.server, this.caCert, user, cert, key);
    const kubeconfigPath = join(this.dir, `${name}.kubeconfig`);
    await writeFile(kubeconfigPath, kubeConfig.exportConfig(), { mode: 0o600 });
    return { kubeConfig, kubeconfigPath };
  }

  helm(args: string[], opts: { kubeconfigPath?: string; timeoutMs?: number } = {}): Promise<HelmResult> {
    const home = join(this.dir, 'helm');
    return run(this.binaries.helm, args, {
      timeoutMs: opts.timeoutMs ?? 120_000,
      env: {
        ...process.env,
        KUBECONFIG: opts.kubeconfigPath ?? this.kubeconfigPath,
        HELM_CACHE_HOME: join(home, 'cache'),
        HELM_CONFIG_HOME: join(home, 'config'),
        HELM_DATA_HOME: join(home, 'data'),
      },
    });
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await Promise.all(this.controllers.map((p) => p.stop(5_000)));
    // API server first: it retries etcd for a long time if etcd goes away underneath it.
    await this.apiServer.stop(5_000);
    await this.etcd.stop(5_000);
    if (this.watchdog?.pid !== undefined && this.watchdog.exitCode === null) {
      try {
        // Its own process group (detached): the shell and its `tail`.
        process.kill(-this.watchdog.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    liveDirs.delete(this.dir);
    if (!this.keep) await rm(this.dir, { recursive: true, force: true });
  }
}

/** Starts etcd and kube-apiserver; resolves once /readyz answers 200. See the file comment. */
export async function startControlPlane(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  installExitHook();
  const binaries = opts.binaries ?? (await ensureBinaries());
  for (const [name, path] of Object.entries(binaries)) {
    if (!existsSync(path)) throw new Error(`${name} binary not found at ${path}`);
  }
  const keep = opts.keepDir ?? process.env['SMC_KEEP_CONTROL_PLANE'] === '1';
  const dir = await mkdtemp(join(opts.baseDir ?? tmpdir(), 'smc-control-plane-'));
  const [etcdClient = 0, etcdPeer = 0, apiServer = 0, controllerManager = 0, scheduler = 0] = await freePorts(
    opts.controllers !== undefined ? 5 : 3,
  );
  const ports = { etcdClient, etcdPeer, apiServer, controllerManager, scheduler };
  const cp = new ControlPlaneImpl(dir, join(dir, 'certs'), binaries, opts, keep, ports);
  try {
    await cp.init();
  } catch (err) {
    await cp.stop().catch(() => undefined);
    throw err;
  }
  return cp;
}
