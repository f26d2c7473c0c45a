// `npm run lab`: the operator on a real API server (part 1), then the two-node soft-RoCE lab where
// real programs' connections go through the sidecars (part 2), and a report of what was upgraded,
// what fell back and why, and how many bytes went over RDMA and TCP. Exit 0 only when every
// expected outcome happened. See docs/lab.md.
//
//   npm run lab [-- --operator-only | --vm-only] [--data-path auto|native|link-only] [--keep] [--quiet]
import { rmSync } from 'node:fs';
import { declineCodeFor, type FallbackReason } from '../../sidecar/src/policy/reasons.js';
import { declineCodeInfo } from '../../sidecar/src/protocol/clc/decline-codes.js';
import { REPO, runOperatorPart, type OperatorResult } from './operator-part.js';
import { FLOWS, NAMESPACE, PODS, fallbackDirectory, fallbackSidecarEnv, type LabPod } from './scenario.js';
import { runVmPart, vmPrerequisites, type Series, type VmResult } from './vm-part.js';

interface Args {
  operator: boolean;
  vm: boolean;
  dataPath: string;
  keep: boolean;
  live: boolean;
  timeoutSec: number;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { operator: true, vm: true, dataPath: 'native', keep: false, live: true, timeoutSec: 300 };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--operator-only') a.vm = false;
    else if (arg === '--vm-only') a.operator = false;
    else if (arg === '--keep') a.keep = true;
    else if (arg === '--quiet') a.live = false;
    else if (arg === '--data-path') a.dataPath = argv[++i] ?? '';
    else if (arg === '--timeout') a.timeoutSec = Number(argv[++i]);
    else if (arg === '-h' || arg === '--help') {
      process.stdout.write(
        'usage: npm run lab [-- --operator-only | --vm-only] [--data-path auto|native|link-only] [--timeout SEC] [--keep] [--quiet]\n',
      );
      process.exit(0);
    } else {
      process.stderr.write(`lab: unknown argument ${arg ?? ''}\n`);
      process.exit(2);
    }
  }
  if (!a.operator && !a.vm) {
    process.stderr.write('lab: --operator-only and --vm-only exclude each other\n');
    process.exit(2);
  }
  if (!['auto', 'native', 'link-only'].includes(a.dataPath) || !(a.timeoutSec > 0)) {
    process.stderr.write('lab: bad --data-path or --timeout\n');
    process.exit(2);
  }
  return a;
}

const t0 = Date.now();
const progress = (msg: string): void => {
  process.stderr.write(`[lab ${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s] ${msg}\n`);
};

function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  return [line(headers), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

interface Check {
  what: string;
  ok: boolean;
  detail: string;
}

const mib = (n: number): string => (n / 1048576).toFixed(2);
const sum = (s: Series, re: RegExp): number =>
  [...s].filter(([k]) => re.test(k)).reduce((a, [, v]) => a + v, 0);
const bytes = (s: Series, path: 'rdma' | 'tcp', dir?: 'tx' | 'rx'): number =>
  sum(s, new RegExp(`^smc_bytes_total\\{.*path="${path}"${dir ? `.*direction="${dir}"` : ''}`));

/** Connections counted in a series set, as "outcome/reason" -> count. */
function connections(s: Series): Map<string, number> {
  const out = new Map<string, number>();
  for (const [k, v] of s) {
    const m = /^smc_connections_total\{(.*)\}$/.exec(k);
    if (!m?.[1] || v === 0) continue;
    const outcome = /outcome="([^"]*)"/.exec(m[1])?.[1] ?? '?';
    const reason = /reason="([^"]*)"/.exec(m[1])?.[1] ?? '?';
    out.set(`${outcome}/${reason}`, (out.get(`${outcome}/${reason}`) ?? 0) + v);
  }
  return out;
}

function declineCode(reason: string): string {
  if (reason === 'none') return '-';
  const code = declineCodeFor(reason as FallbackReason);
  if (code === null) return 'none (no CLC)';
  return `${declineCodeInfo(code)?.name ?? '?'} 0x${code.toString(16).padStart(8, '0')}`;
}

function operatorReport(r: OperatorResult, checks: Check[]): string {
  const parts: string[] = [];
  parts.push(
    table(
      ['pod', 'node', 'labels', 'init containers', 'containers', 'sidecar env (tenant/mode/peers)'],
      r.pods.map((p) => [
        p.pod.name,
        `node${p.pod.node}`,
        Object.entries(p.pod.labels)
          .map(([k, v]) => `${k}=${v}`)
          .join(','),
        p.initContainers.join(',') || '-',
        p.containers.join(','),
        p.injected
          ? `${p.sidecarEnv['SMC_TENANT'] ?? '?'}/${p.sidecarEnv['SMC_MODE'] ?? '?'}/${p.sidecarEnv['SMC_ALLOWED_PEER_TENANTS'] || '-'}`
          : '-',
      ]),
    ),
  );
  parts.push(
    table(
      ['SmcPolicy', 'matched', 'ready', 'conditions'],
      r.policies.map((p) => [
        p.name,
        String(p.status?.matchedPods ?? '?'),
        String(p.status?.readyPods ?? '?'),
        (p.status?.conditions ?? []).map((c) => `${c.type}=${c.status} (${c.reason})`).join(', '),
      ]),
    ),
  );
  parts.push(
    table(
      ['directory endpoint', 'pod', 'tenant'],
      [...r.endpoints].sort((a, b) => a.podIP.localeCompare(b.podIP)).map((e) => [e.podIP, e.pod, e.tenant]),
    ) + `\n(ConfigMaps in ${NAMESPACE}: ${r.directoryConfigMaps.join(', ')})`,
  );
  for (const p of r.pods) {
    checks.push({
      what: `webhook ${p.pod.sidecar ? 'injected' : 'skipped'} ${p.pod.name}`,
      ok: p.injected === p.pod.sidecar && (!p.injected || p.initContainers.includes('smc-init')),
      detail: p.containers.join(','),
    });
  }
  const want = PODS.filter((p) => p.sidecar)
    .map((p) => p.ip)
    .sort()
    .join(',');
  const got = r.endpoints
    .map((e) => e.podIP)
    .sort()
    .join(',');
  checks.push({ what: 'directory = the pods with a sidecar', ok: want === got, detail: got });
  return parts.join('\n\n');
}

function vmReport(r: VmResult, checks: Check[]): string {
  const parts: string[] = [];
  const rows: string[][] = [];
  for (const f of FLOWS) {
    const res = r.flows.find((x) => x.name === f.name);
    const conns = res ? connections(res.delta) : new Map<string, number>();
    const got = [...conns].map(([k, v]) => `${v}x ${k}`).join(', ') || '(none counted)';
    const rdma = res ? bytes(res.delta, 'rdma') : 0;
    const tcp = res ? bytes(res.delta, 'tcp') : 0;
    let verified = res?.exitCode === 0 ? 'exit 0' : `exit ${String(res?.exitCode ?? 'none')}`;
    let ok = res?.exitCode === 0;
    if (f.blobOf) {
      const sha = res?.output.split(/\s+/)[0] ?? '';
      const match = sha !== '' && sha === r.blobs.get(f.blobOf);
      verified += match ? ', sha256 ok' : ', sha256 MISMATCH';
      ok &&= match;
    } else if (res?.output) {
      verified += `, ${res.output.replace(/\n/g, '; ')}`;
    }
    const key = `${f.expect.outcome}/${f.expect.reason}`;
    const outcomeOk = (conns.get(key) ?? 0) >= 1 && [...conns.keys()].every((k) => k === key);
    const pathOk = f.expect.outcome === 'upgraded' ? rdma > 0 && tcp === 0 : tcp > 0 && rdma === 0;
    rows.push([
      f.name,
      `${f.pod} -> ${f.target}`,
      f.program,
      got,
      [...conns.keys()].map((k) => declineCode(k.split('/')[1] ?? 'none')).join(', ') || '-',
      mib(rdma),
      mib(tcp),
      res ? res.seconds.toFixed(1) : '-',
      verified,
    ]);
    checks.push({
      what: `${f.name}: ${key}`,
      ok: ok && outcomeOk && pathOk,
      detail: `${got}; rdma ${mib(rdma)} MiB, tcp ${mib(tcp)} MiB; ${verified}${res?.error ? `; stderr: ${res.error.slice(0, 200)}` : ''}`,
    });
  }
  parts.push(
    "Connections, attributed per flow from the client sidecar's smc_connections_total / smc_bytes_total\n" +
      table(
        [
          'flow',
          'from -> to',
          'program',
          'outcome/reason (count)',
          'CLC decline code',
          'RDMA MiB',
          'TCP MiB',
          's',
          'verified',
        ],
        rows,
      ),
  );
  parts.push(
    'Sidecar totals at the end (/metrics on :15190 in each pod)\n' +
      table(
        ['pod', 'connections', 'RDMA tx/rx MiB', 'TCP tx/rx MiB'],
        [...r.metrics].map(([pod, s]) => [
          pod,
          [...connections(s)].map(([k, v]) => `${v}x ${k}`).join(', ') || '-',
          `${mib(bytes(s, 'rdma', 'tx'))} / ${mib(bytes(s, 'rdma', 'rx'))}`,
          `${mib(bytes(s, 'tcp', 'tx'))} / ${mib(bytes(s, 'tcp', 'rx'))}`,
        ]),
      ),
  );
  parts.push(
    'Per connection in each pod: `smc connections` (what `kubectl smc connections POD` prints; live ones and the last closed)\n' +
      [...r.connectionTables].map(([pod, t]) => `${pod}:\n${t === '' ? '(no answer)' : t}`).join('\n\n'),
  );
  checks.push({
    what: 'every sidecar lists its connections (smc connections)',
    ok: [...r.connectionTables.values()].every((t) => /^ID\b/m.test(t)),
    detail: [...r.connectionTables].map(([pod, t]) => `${pod}: ${t.split('\n').length - 1} rows`).join('; '),
  });
  const names = ['sent_pkts', 'rcvd_pkts', 'rdma_sends', 'rdma_recvs', 'send_err', 'retry_exceeded_err'];
  parts.push(
    'soft-RoCE (rxe0) hw_counters, change over the run\n' +
      table(
        ['node', ...names],
        r.rxe.map((s, n) => [`node${n}`, ...names.map((k) => String(s.get(k) ?? 0))]),
      ),
  );
  const upgradedRdma = FLOWS.filter((f) => f.expect.outcome === 'upgraded').length;
  checks.push({
    what: 'rxe carried packets both ways',
    ok:
      r.rxe.every((s) => (s.get('sent_pkts') ?? 0) > 0 && (s.get('rcvd_pkts') ?? 0) > 0) ||
      upgradedRdma === 0,
    detail: r.rxe
      .map((s, n) => `node${n} sent ${s.get('sent_pkts') ?? 0} rcvd ${s.get('rcvd_pkts') ?? 0}`)
      .join('; '),
  });
  checks.push({
    what: 'both VMs finished',
    ok: r.lab.nodes.every((n) => n.exitCode === 0),
    detail: r.lab.nodes.map((n, i) => `node${i} ${n.status} exit ${String(n.exitCode)}`).join(', '),
  });
  return parts.join('\n\n');
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const checks: Check[] = [];
  const report: string[] = [];
  const timings: string[] = [];
  let directory = fallbackDirectory();
  let sidecarEnv: (p: LabPod) => Record<string, string> = fallbackSidecarEnv;
  if (args.vm) {
    const missing = vmPrerequisites(REPO);
    if (missing.length > 0) {
      process.stderr.write(`lab: not set up: missing ${missing.join(', ')}; run .ci/setup\n`);
      return 3;
    }
  }
  if (args.operator) {
    progress('part 1: the operator on a real kube-apiserver + etcd');
    const r = await runOperatorPart(progress);
    timings.push(`part 1 (operator on the API server): ${r.seconds.toFixed(1)} s`);
    report.push(
      `## Part 1: operator, webhook, policy status, directory (real kube-apiserver)\n\n${operatorReport(r, checks)}`,
    );
    directory = r.directory;
    const byPod = new Map(r.pods.map((p) => [p.pod.name, p.sidecarEnv]));
    sidecarEnv = (p) => byPod.get(p.name) ?? {};
  }
  if (args.vm) {
    progress(
      `part 2: two soft-RoCE VMs; pods ${PODS.map((p) => `${p.name}@node${p.node}`).join(', ')}; ` +
        `directory ${args.operator ? 'as published in part 1' : 'built from the scenario'}; data path ${args.dataPath}`,
    );
    const r = await runVmPart(REPO, directory, sidecarEnv, {
      dataPath: args.dataPath,
      timeoutSec: args.timeoutSec,
      live: args.live,
    });
    timings.push(`part 2 (two VMs, boot to power-off): ${r.lab.wallSec.toFixed(1)} s`);
    report.push(`## Part 2: real programs through the sidecars over soft-RoCE\n\n${vmReport(r, checks)}`);
    if (args.keep || checks.some((c) => !c.ok)) {
      report.push(`Run dir kept: ${r.lab.runDir} (node0/, node1/: output, logs/, flows/, metrics-*.txt)`);
    } else {
      rmSync(r.lab.runDir, { recursive: true, force: true });
    }
  }
  const ok = checks.every((c) => c.ok);
  report.push(
    `## Checks\n\n${table(
      ['', 'expected', 'observed'],
      checks.map((c) => [c.ok ? 'PASS' : 'FAIL', c.what, c.detail]),
    )}`,
  );
  timings.push(`total: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  report.push(`${timings.join('\n')}\n\nRESULT: ${ok ? 'PASS' : 'FAIL'}`);
  process.stdout.write(`\n${report.join('\n\n')}\n`);
  return ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`lab: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
