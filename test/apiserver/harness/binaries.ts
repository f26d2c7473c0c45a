/**
 * Locates the kube-apiserver, etcd and helm binaries used by the apiserver integration tests,
 * building any that are missing with ../tools/build-binaries.sh (from Go modules, into
 * `${SMC_CACHE:-~/.cache/smc-operator}/bin/<name>-<version>`; versions in ../tools/versions.env).
 *
 * Environment overrides, each the path of a ready binary: KUBE_APISERVER_BIN, ETCD_BIN, HELM_BIN.
 * `ETCD_VERSION=system` in versions.env selects the distribution's /usr/bin/etcd.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const toolsDir = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'tools');

/** Path of the script that builds the binaries (idempotent). */
export const buildScript = join(toolsDir, 'build-binaries.sh');

export interface Versions {
  kubernetes: string;
  etcd: string;
  helm: string;
}

export interface Binaries {
  kubeApiserver: string;
  etcd: string;
  helm: string;
}

type BuildTarget = 'kube-apiserver' | 'etcd' | 'helm';

/** The KEY=value lines of tools/versions.env. */
function readVersionVars(): Map<string, string> {
  const vars = new Map<string, string>();
  for (const raw of readFileSync(join(toolsDir, 'versions.env'), 'utf8').split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq > 0) vars.set(line.slice(0, eq).trim(), line.slice(eq + 1).trim());
  }
  return vars;
}

/** Pinned versions, read from tools/versions.env. */
export function readVersions(): Versions {
  const vars = readVersionVars();
  const get = (key: string): string => {
    const value = vars.get(key);
    if (value === undefined || value === '') throw new Error(`versions.env: ${key} is not set`);
    return value;
  };
  return { kubernetes: get('KUBERNETES_VERSION'), etcd: get('ETCD_VERSION'), helm: get('HELM_VERSION') };
}

/** The cache root: $SMC_CACHE or ~/.cache/smc-operator. */
export function cacheDir(): string {
  const fromEnv = process.env['SMC_CACHE'];
  return fromEnv !== undefined && fromEnv !== '' ? fromEnv : join(homedir(), '.cache', 'smc-operator');
}

/** Where each binary is expected, without building anything. */
export function expectedBinaries(versions: Versions = readVersions()): Binaries {
  const bin = join(cacheDir(), 'bin');
  const env = process.env;
  return {
    kubeApiserver: env['KUBE_APISERVER_BIN'] || join(bin, `kube-apiserver-${versions.kubernetes}`),
    etcd:
      env['ETCD_BIN'] || (versions.etcd === 'system' ? '/usr/bin/etcd' : join(bin, `etcd-${versions.etcd}`)),
    helm: env['HELM_BIN'] || join(bin, `helm-${versions.helm}`),
  };
}

/** Whether `path` exists and may be executed. */
export function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function runBuild(targets: BuildTarget[]): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    process.stderr.write(
      `[apiserver harness] building ${targets.join(', ')} with ${buildScript}` +
        (targets.includes('kube-apiserver') ? ' (a cold kube-apiserver build takes several minutes)' : '') +
        '\n',
    );
    // Progress lines go straight to our stderr so a long test setup shows what it is doing.
    const child = spawn('bash', [buildScript, ...targets], { stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (code === 0) resolvePromise();
      else reject(new Error(`${buildScript} ${targets.join(' ')} failed (${signal ?? `exit ${code}`})`));
    });
  });
}

let pending: Promise<Binaries> | undefined;

/**
 * Returns the paths of the three binaries, building missing ones first. An overridden path
 * (env var) that is not executable is an error rather than a trigger to build.
 */
export function ensureBinaries(): Promise<Binaries> {
  pending ??= (async (): Promise<Binaries> => {
    const bins = expectedBinaries();
    const env = process.env;
    const checks: [BuildTarget, string, string][] = [
      ['kube-apiserver', bins.kubeApiserver, 'KUBE_APISERVER_BIN'],
      ['etcd', bins.etcd, 'ETCD_BIN'],
      ['helm', bins.helm, 'HELM_BIN'],
    ];
    const missing: BuildTarget[] = [];
    for (const [target, path, envName] of checks) {
      if (isExecutable(path)) continue;
      if (env[envName]) throw new Error(`${envName}=${path} is not an executable file`);
      if (target === 'etcd' && path === '/usr/bin/etcd') {
        throw new Error('ETCD_VERSION=system but /usr/bin/etcd is missing (apt-get install etcd-server)');
      }
      missing.push(target);
    }
    if (missing.length > 0) {
      await runBuild(missing);
      for (const [target, path] of checks) {
        if (!isExecutable(path)) throw new Error(`build finished but ${target} is missing at ${path}`);
      }
    }
    return bins;
  })();
  pending.catch(() => {
    pending = undefined;
  });
  return pending;
}

/**
 * The CNCF distribution registry (an OCI registry) of the chart's push/pull test: $REGISTRY_BIN,
 * else `registry-<REGISTRY_VERSION>` in the cache, which .ci/setup builds (build-binaries.sh
 * registry). Not built on demand: a missing binary is an error that says how to build it.
 */
export function registryBinary(): string {
  const fromEnv = process.env['REGISTRY_BIN'];
  if (fromEnv) {
    if (!isExecutable(fromEnv)) throw new Error(`REGISTRY_BIN=${fromEnv} is not an executable file`);
    return fromEnv;
  }
  const version = readVersionVars().get('REGISTRY_VERSION');
  if (!version) throw new Error('versions.env: REGISTRY_VERSION is not set');
  const path = join(cacheDir(), 'bin', `registry-${version}`);
  if (!isExecutable(path)) {
    throw new Error(
      `the OCI registry binary is missing at ${path}: build it with \`bash ${buildScript} registry\` ` +
        '(.ci/setup does), or point REGISTRY_BIN at a distribution registry binary',
    );
  }
  return path;
}
