// The chart as a release artifact: charts/package.sh packages it, `helm push` sends the archive to
// a real OCI registry (the CNCF distribution registry, built from its Go module by
// test/apiserver/tools/build-binaries.sh registry, listening on 127.0.0.1 over plain HTTP), and
// `helm show chart`, `helm pull` and `helm template` read it back from there. The registry's own
// API confirms the artifact is stored with Helm's OCI media types. Without the registry binary
// these tests fail (with the command that builds it); they never skip.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadAllYaml, loadYaml } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectedBinaries, isExecutable, readVersions, registryBinary } from './harness/binaries.js';
import { freePort } from './operator/helpers.js';

const repo = (p: string): string => fileURLToPath(new URL(`../../${p}`, import.meta.url));
const KUBE_VERSION = readVersions().kubernetes.replace(/^v/, '');

interface ChartMeta {
  apiVersion: string;
  name: string;
  version: string;
  appVersion: string;
  kubeVersion: string;
  type: string;
  home: string;
  sources: string[];
  description: string;
  annotations: Record<string, string>;
}

const CHART_YAML = loadYaml<ChartMeta>(readFileSync(repo('charts/smc-operator/Chart.yaml'), 'utf8'));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      { env: { ...process.env, ...env }, maxBuffer: 64 * 1024 * 1024, timeout: 180_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

const sha256 = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');

describe('chart package pushed to and pulled from an OCI registry', () => {
  let dir = '';
  let helmBin = '';
  let registry: ChildProcess | undefined;
  let registryLog = '';
  let port = 0;
  let archive = '';
  let pushedDigest = '';
  // helm's config, cache and registry credentials stay in the temp dir.
  let helmEnv: NodeJS.ProcessEnv = {};

  const helm = (args: string[]): Promise<Run> => run(helmBin, args, helmEnv);
  const ref = (): string => `oci://127.0.0.1:${port}/charts`;

  async function registryGet(path: string, accept?: string): Promise<Response> {
    return fetch(`http://127.0.0.1:${port}${path}`, accept ? { headers: { Accept: accept } } : {});
  }

  beforeAll(async () => {
    const started = Date.now();
    // Fails here, with the build command, when the registry was not built (no silent skip).
    const registryBin = registryBinary();
    helmBin = expectedBinaries().helm;
    if (!isExecutable(helmBin)) {
      throw new Error(`helm is missing at ${helmBin}: bash test/apiserver/tools/build-binaries.sh helm`);
    }
    dir = mkdtempSync(join(tmpdir(), 'smc-chart-oci-'));
    helmEnv = {
      HELM: helmBin,
      HELM_CONFIG_HOME: join(dir, 'helm', 'config'),
      HELM_CACHE_HOME: join(dir, 'helm', 'cache'),
      HELM_DATA_HOME: join(dir, 'helm', 'data'),
      HELM_REGISTRY_CONFIG: join(dir, 'helm', 'registry.json'),
    };
    port = await freePort();
    const config = join(dir, 'registry.yml');
    writeFileSync(
      config,
      [
        'version: 0.1',
        'log:',
        '  level: warn',
        '  accesslog:',
        '    disabled: true',
        'storage:',
        '  filesystem:',
        `    rootdirectory: ${join(dir, 'registry-data')}`,
        '  delete:',
        '    enabled: true',
        'http:',
        `  addr: 127.0.0.1:${port}`,
        '',
      ].join('\n'),
    );
    // No tracing exporter: there is no collector, and nothing may leave the machine.
    registry = spawn(registryBin, ['serve', config], {
      env: { ...process.env, OTEL_TRACES_EXPORTER: 'none', OTEL_SDK_DISABLED: 'true' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const collect = (b: Buffer): void => {
      registryLog = (registryLog + b.toString('utf8')).slice(-8_000);
    };
    registry.stdout?.on('data', collect);
    registry.stderr?.on('data', collect);
    const exited = new Promise<never>((_, reject) =>
      registry?.once('exit', (code, signal) =>
        reject(new Error(`registry exited (${signal ?? code}) before it served:\n${registryLog}`)),
      ),
    );
    exited.catch(() => undefined);
    const deadline = Date.now() + 30_000;
    for (;;) {
      const ok = await Promise.race([
        registryGet('/v2/').then(
          (r) => r.status === 200,
          () => false,
        ),
        exited,
      ]);
      if (ok) break;
      if (Date.now() > deadline) throw new Error(`registry not serving /v2/ within 30 s:\n${registryLog}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    process.stderr.write(
      `[chart-oci] registry ${registryBin} on 127.0.0.1:${port} in ${Date.now() - started} ms\n`,
    );
  });

  afterAll(async () => {
    const r = registry;
    if (r && r.exitCode === null) {
      const gone = new Promise((res) => r.once('exit', res));
      r.kill('SIGTERM');
      await Promise.race([gone, new Promise((res) => setTimeout(res, 5_000))]);
      if (r.exitCode === null) r.kill('SIGKILL');
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('charts/package.sh lints and packages the chart into smc-operator-<version>.tgz', async () => {
    const r = await run('bash', [repo('charts/package.sh'), '-d', join(dir, 'dist')], helmEnv);
    expect(r.code, r.stderr).toBe(0);
    archive = r.stdout.trim().split('\n').pop() ?? '';
    expect(archive).toBe(join(dir, 'dist', `smc-operator-${CHART_YAML.version}.tgz`));
    expect(r.stderr).toContain('1 chart(s) linted, 0 chart(s) failed');
    // The archive holds the templates, the CRD copies the templates render, the schema and the dashboard.
    const list = await run('tar', ['tzf', archive]);
    const files = list.stdout.trim().split('\n');
    for (const f of [
      'smc-operator/Chart.yaml',
      'smc-operator/values.yaml',
      'smc-operator/values.schema.json',
      'smc-operator/templates/crds.yaml',
      'smc-operator/templates/webhook-certmanager.yaml',
      'smc-operator/files/crds/smc.dev_smcpolicies.yaml',
      'smc-operator/files/crds/smc.dev_smcnodes.yaml',
      'smc-operator/dashboards/smc-operator.json',
    ]) {
      expect(files, f).toContain(f);
    }
    // The chart's CI values are for the repository's tests, not for users.
    expect(files.filter((f) => f.startsWith('smc-operator/ci/'))).toEqual([]);
  });

  it('a stale CRD copy stops the packaging', async () => {
    // A copy of the chart next to a crds/ that differs: package.sh refuses it.
    const fake = join(dir, 'fake-repo');
    const cp = await run('bash', [
      '-c',
      `mkdir -p "${fake}/test/apiserver/tools" "${fake}/charts" && cp -r "${repo('charts/smc-operator')}" "${fake}/charts/" && ` +
        `cp "${repo('charts/package.sh')}" "${fake}/charts/" && cp "${repo('test/apiserver/tools/versions.env')}" "${fake}/test/apiserver/tools/" && ` +
        `cp -r "${repo('crds')}" "${fake}/crds" && echo '# changed' >> "${fake}/crds/smc.dev_smcnodes.yaml"`,
    ]);
    expect(cp.code, cp.stderr).toBe(0);
    const r = await run('bash', [join(fake, 'charts/package.sh'), '-d', join(fake, 'out')], helmEnv);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/files\/crds differs from crds\//);
  });

  it('helm push stores it in the registry with the OCI media types of a Helm chart', async () => {
    const r = await helm(['push', archive, ref(), '--plain-http']);
    expect(r.code, r.stderr).toBe(0);
    const out = r.stdout + r.stderr;
    expect(out).toContain(`Pushed: 127.0.0.1:${port}/charts/smc-operator:${CHART_YAML.version}`);
    pushedDigest = /Digest: (sha256:[0-9a-f]{64})/.exec(out)?.[1] ?? '';
    expect(pushedDigest).not.toBe('');

    const tags = (await (await registryGet('/v2/charts/smc-operator/tags/list')).json()) as {
      tags: string[];
    };
    expect(tags.tags).toEqual([CHART_YAML.version]);
    const res = await registryGet(
      `/v2/charts/smc-operator/manifests/${CHART_YAML.version}`,
      'application/vnd.oci.image.manifest.v1+json',
    );
    expect(res.status).toBe(200);
    expect(res.headers.get('docker-content-digest')).toBe(pushedDigest);
    const manifest = (await res.json()) as {
      config: { mediaType: string };
      layers: { mediaType: string; digest: string; size: number }[];
      annotations?: Record<string, string>;
    };
    expect(manifest.config.mediaType).toBe('application/vnd.cncf.helm.config.v1+json');
    expect(manifest.layers).toHaveLength(1);
    const layer = manifest.layers[0];
    expect(layer?.mediaType).toBe('application/vnd.cncf.helm.chart.content.v1.tar+gzip');
    // The layer is the archive, byte for byte.
    expect(layer?.digest).toBe(`sha256:${sha256(archive)}`);
    expect(manifest.annotations?.['org.opencontainers.image.version']).toBe(CHART_YAML.version);
    expect(manifest.annotations?.['org.opencontainers.image.title']).toBe('smc-operator');
  });

  it('charts/package.sh --push packages and pushes in one step', async () => {
    const r = await run(
      'bash',
      [
        repo('charts/package.sh'),
        '-d',
        join(dir, 'dist-push'),
        '--push',
        `oci://127.0.0.1:${port}/staging`,
        '--plain-http',
      ],
      helmEnv,
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`Pushed: 127.0.0.1:${port}/staging/smc-operator:${CHART_YAML.version}`);
    const tags = (await (await registryGet('/v2/staging/smc-operator/tags/list')).json()) as {
      tags: string[];
    };
    expect(tags.tags).toEqual([CHART_YAML.version]);
    const bad = await run(
      'bash',
      [repo('charts/package.sh'), '--push', 'https://example.invalid/x'],
      helmEnv,
    );
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/--push wants an oci:\/\/ reference/);
  });

  it('helm show chart reads the Chart.yaml back from the registry', async () => {
    const r = await helm([
      'show',
      'chart',
      `${ref()}/smc-operator`,
      '--version',
      CHART_YAML.version,
      '--plain-http',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const shown = loadYaml<ChartMeta>(r.stdout);
    expect(shown).toMatchObject({
      apiVersion: 'v2',
      name: 'smc-operator',
      type: 'application',
      version: CHART_YAML.version,
      appVersion: CHART_YAML.appVersion,
      kubeVersion: CHART_YAML.kubeVersion,
      home: CHART_YAML.home,
      sources: CHART_YAML.sources,
    });
    expect(shown.annotations['artifacthub.io/license']).toBe('Apache-2.0');
  });

  it('helm pull returns the same archive, and it renders', async () => {
    const into = join(dir, 'pulled');
    mkdirSync(into); // helm pull writes into an existing directory only
    const r = await helm([
      'pull',
      `${ref()}/smc-operator`,
      '--version',
      CHART_YAML.version,
      '--plain-http',
      '--destination',
      into,
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).toContain(pushedDigest);
    const pulled = join(into, `smc-operator-${CHART_YAML.version}.tgz`);
    expect(sha256(pulled)).toBe(sha256(archive));

    // Installable as users would: straight from the registry reference.
    const t = await helm([
      'template',
      'smc-operator',
      `${ref()}/smc-operator`,
      '--version',
      CHART_YAML.version,
      '--plain-http',
      '--namespace',
      'smc-system',
      '--kube-version',
      KUBE_VERSION,
    ]);
    expect(t.code, t.stderr).toBe(0);
    const kinds = (loadAllYaml(t.stdout) as ({ kind: string; metadata: { name: string } } | null)[])
      .filter((o) => o !== null)
      .map((o) => `${o.kind}/${o.metadata.name}`);
    expect(kinds).toEqual(
      expect.arrayContaining([
        'CustomResourceDefinition/smcpolicies.smc.dev',
        'CustomResourceDefinition/smcnodes.smc.dev',
        'Deployment/smc-operator',
        'MutatingWebhookConfiguration/smc-operator',
      ]),
    );
  });
});
