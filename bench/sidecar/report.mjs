// Reads node1's out dir of bench/sidecar/run.sh (output: BENCH/KSTATS lines; metrics/: the
// client sidecar's /metrics around each sidecar measurement) and prints the table: medians over
// the rounds, ratios to direct TCP (and sidecar SMC-R / raw RDMA WRITE, kernel SMC-R / node TCP).
// Usage: node report.mjs RUN/lab/node1
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2];
const read = (p) => (existsSync(p) ? readFileSync(p, 'utf8') : '');
const lines = read(join(dir, 'output')).split('\n');
const bench = lines.filter((l) => l.startsWith('BENCH ')).map((l) => JSON.parse(l.slice(6)));
if (bench.length === 0) {
  console.error(`no BENCH lines in ${dir}/output: the lab run did not get that far`);
  process.exit(1);
}
const median = (xs) => {
  const s = xs.filter((x) => x != null && !Number.isNaN(x)).sort((a, b) => a - b);
  if (s.length === 0) return null;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const of = (path, op) => bench.filter((b) => b.path === path && b.op === op);
const cpu = (b) => b.cpu_sidecar_s + b.cpu_client_s + b.cpu_server_s;

// Which way each sidecar connection went: smc_connections_total / smc_bytes_total deltas.
const metrics = (text) => {
  const m = new Map();
  for (const l of text.split('\n')) {
    const x = /^(\w+\{[^}]*\})\s+(\S+)/.exec(l);
    if (x) m.set(x[1], Number(x[2]));
  }
  return m;
};
const outcome = (label) => {
  const a = metrics(read(join(dir, 'metrics', `${label}.before`)));
  const b = metrics(read(join(dir, 'metrics', `${label}.after`)));
  const parts = [];
  let rdma = 0;
  let tcp = 0;
  for (const [k, v] of b) {
    const d = v - (a.get(k) ?? 0);
    if (d === 0) continue;
    const o = /^smc_connections_total\{.*outcome="([^"]+)".*reason="([^"]+)"/.exec(k);
    if (o) parts.push(`${d}x ${o[1]}/${o[2]}`);
    if (k.startsWith('smc_bytes_total') && k.includes('path="rdma"')) rdma += d;
    if (k.startsWith('smc_bytes_total') && k.includes('path="tcp"')) tcp += d;
  }
  return { text: parts.join(', ') || 'none', rdma, tcp };
};

const PATHS = [
  ['direct', 'direct TCP pod->pod'],
  ['sidecar-smcr', 'sidecars, SMC-R'],
  ['sidecar-fallback', 'sidecars, TCP fallback'],
  ['sidecar-bypass', 'sidecars, not redirected'],
  ['tcp-node', 'TCP node->node'],
  ['kernel-smcr', 'kernel SMC-R node->node'],
  ['kernel-sidecar', 'kernel SMC-R -> sidecar pod'],
];
const rows = PATHS.map(([path, name]) => {
  const rtt = of(path, 'rtt');
  const bulk = of(path, 'bulk');
  return {
    path,
    name,
    p50: median(rtt.map((b) => b.p50_us)),
    p99: median(rtt.map((b) => b.p99_us)),
    mibs: median(bulk.map((b) => b.mib_s)),
    // CPU per GiB moved by the bulk runs; CPU per round trip of the ping-pong runs.
    cpuGiB: median(bulk.map((b) => cpu(b) / (b.bytes / 2 ** 30))),
    sidecarGiB: median(bulk.map((b) => b.cpu_sidecar_s / (b.bytes / 2 ** 30))),
    cpuRtt: median(rtt.map((b) => (cpu(b) / (b.count + 50)) * 1e6)),
    checks: [...rtt, ...bulk].map((b) => (path.startsWith('sidecar') ? outcome(b.label) : null)),
  };
});
const rdma = median(bench.filter((b) => b.op === 'rdma-bw').map((b) => b.MiBps));
const direct = rows[0];
const f = (x, d = 1) => (x == null ? 'n/a' : x.toFixed(d));
const r = (x, y) => (x == null || y == null || y === 0 ? 'n/a' : (x / y).toFixed(2));
const rounds = of('direct', 'rtt').length;
const any = (op) => bench.find((b) => b.op === op);
const table = [
  [
    'path',
    'bulk MiB/s',
    'x direct',
    'RTT p50 us',
    'x direct',
    'RTT p99 us',
    'x direct',
    'CPU s/GiB',
    'x direct',
    'of which sidecars',
    'CPU us/RTT',
    'x direct',
  ],
];
for (const x of rows) {
  table.push([
    x.name,
    f(x.mibs, 2),
    r(x.mibs, direct.mibs),
    f(x.p50, 0),
    r(x.p50, direct.p50),
    f(x.p99, 0),
    r(x.p99, direct.p99),
    f(x.cpuGiB, 1),
    r(x.cpuGiB, direct.cpuGiB),
    x.path.includes('sidecar') ? f(x.sidecarGiB, 1) : '-',
    f(x.cpuRtt, 0),
    r(x.cpuRtt, direct.cpuRtt),
  ]);
}
if (rdma != null)
  table.push([
    'raw RDMA WRITE (addon, 64 KiB)',
    f(rdma, 2),
    r(rdma, direct.mibs),
    '-',
    '',
    '-',
    '',
    '-',
    '',
    '-',
    '-',
    '',
  ]);
const w = table[0].map((_, i) => Math.max(...table.map((t) => String(t[i]).length)));
const row = (t) => `| ${t.map((c, i) => String(c).padEnd(w[i])).join(' | ')} |`;
console.log(
  `Sidecar data path vs references, one two-VM soft-RoCE lab run (TCG), same link; smc-perf, ` +
    `median of ${rounds} round(s): ${any('rtt')?.count} pings of 64 B, ${any('bulk')?.bytes / 2 ** 20} MiB bulk` +
    (process.env.BENCH_RMB_SIZE ? `; sidecar RMB ${Number(process.env.BENCH_RMB_SIZE) / 1024} KiB` : ''),
);
console.log(row(table[0]));
console.log(`|${w.map((n) => '-'.repeat(n + 2)).join('|')}|`);
for (const t of table.slice(1)) console.log(row(t));
const smcr = rows.find((x) => x.path === 'sidecar-smcr');
const kern = rows.find((x) => x.path === 'kernel-smcr');
const ksc = rows.find((x) => x.path === 'kernel-sidecar');
const tcpn = rows.find((x) => x.path === 'tcp-node');
console.log(
  `sidecar SMC-R bulk / raw RDMA WRITE: ${r(smcr.mibs, rdma)} (goal >= 0.80); ` +
    `sidecar SMC-R / kernel SMC-R: bulk ${r(smcr.mibs, kern.mibs)}, p50 ${r(smcr.p50, kern.p50)}; ` +
    `kernel SMC-R / node TCP: bulk ${r(kern.mibs, tcpn.mibs)}, p50 ${r(kern.p50, tcpn.p50)}; ` +
    `kernel SMC-R -> sidecar / kernel SMC-R: bulk ${r(ksc.mibs, kern.mibs)}, p50 ${r(ksc.p50, kern.p50)}`,
);
// The goals (issue: the data path at kernel SMC-R parity, and fallback that costs nothing), each
// with its ratio in this run and OK/MISS. `atMost`: the ratio must not exceed the goal.
const bypass = rows.find((x) => x.path === 'sidecar-bypass');
const relayed = rows.find((x) => x.path === 'sidecar-fallback');
const goal = (name, x, y, want, atMost) => {
  const ratio = x == null || y == null || y === 0 ? null : x / y;
  const met = ratio != null && (atMost ? ratio <= want : ratio >= want);
  console.log(
    `goal ${name}: ${ratio == null ? 'n/a' : ratio.toFixed(2)} (goal ${atMost ? '<=' : '>='} ${want.toFixed(2)}) ${met ? 'OK' : 'MISS'}`,
  );
};
goal('not redirected RTT p50 / direct', bypass.p50, direct.p50, 1.05, true);
goal('not redirected bulk / direct', bypass.mibs, direct.mibs, 1 / 1.05, false);
goal('not redirected CPU per RTT / direct', bypass.cpuRtt, direct.cpuRtt, 1.05, true);
goal('not redirected CPU per GiB / direct', bypass.cpuGiB, direct.cpuGiB, 1.05, true);
goal('relayed fallback RTT p50 / direct', relayed.p50, direct.p50, 1.3, true);
goal('relayed fallback bulk / direct', relayed.mibs, direct.mibs, 0.9, false);
goal('SMC-R RTT p50 / kernel SMC-R', smcr.p50, kern.p50, 1.0, true);
goal('SMC-R CPU per RTT / kernel SMC-R', smcr.cpuRtt, kern.cpuRtt, 2.0, true);
goal('SMC-R bulk / kernel SMC-R', smcr.mibs, kern.mibs, 1.0, false);
goal('SMC-R bulk / raw RDMA WRITE', smcr.mibs, rdma, 0.8, false);
// Checks: the sidecar paths went the expected way, kernel SMC-R did not fall back.
let ok = true;
for (const [path, want] of [
  ['sidecar-smcr', 'upgraded/none'],
  ['sidecar-fallback', 'fallback/tenant-not-allowed'],
  ['sidecar-bypass', null],
]) {
  const cs = rows.find((x) => x.path === path).checks;
  const carried = (c) => {
    if (path === 'sidecar-smcr') return c.tcp === 0 && c.rdma > 0;
    if (path === 'sidecar-fallback') return c.rdma === 0 && c.tcp > 0;
    return c.rdma === 0 && c.tcp === 0; // not redirected: the sidecar never saw it
  };
  const good = cs.length > 0 && cs.every((c) => c && c.text === (want ? `1x ${want}` : 'none') && carried(c));
  ok &&= good;
  console.log(
    `${good ? 'PASS' : 'FAIL'} ${path}: every connection ${want ?? 'passed the sidecar by'}: ${cs.map((c) => c?.text).join('; ')}`,
  );
}
const ks = (tag) => {
  const l = lines.find((x) => x.startsWith(`KSTATS ${tag} `));
  return l ? JSON.parse(l.slice(`KSTATS ${tag} `.length)) : null;
};
const kb = ks('before');
const ka = ks('after');
const conns = Number((lines.find((l) => l.startsWith('SMC_CONNS ')) ?? 'SMC_CONNS 0').split(' ')[1]);
if (kb && ka) {
  const succ = ka.stats.smcr.clnt_v2_succ - kb.stats.smcr.clnt_v2_succ;
  const fb = ka.fallback.clnt_cnt - kb.fallback.clnt_cnt;
  const good = succ === conns && fb === 0;
  ok &&= good;
  console.log(
    `${good ? 'PASS' : 'FAIL'} kernel-smcr, kernel-sidecar: kernel SMC-R connections ${succ}/${conns}, client fallbacks ${fb}`,
  );
} else {
  ok = false;
  console.log('FAIL kernel-smcr: no kernel counters');
}
const missing = rows.filter((x) => x.mibs == null || x.p50 == null).map((x) => x.path);
if (missing.length) {
  ok = false;
  console.log(`FAIL no result for: ${missing.join(', ')}`);
}
console.log(
  'CPU: utime+stime from /proc/<pid>/stat (all threads) of the two sidecars on the path (client pod, web) and of the ' +
    'smc-perf server, plus the client (bash `time`: smc-perf and its ip-netns/setpriv/timeout exec chain); ' +
    'kernel work in softirq (TCP/IP, rxe) is not attributed to any process and not included.',
);
console.log(
  `RESULT ${JSON.stringify({ rows: rows.map(({ checks: _checks, ...x }) => x), rdmaMiBps: rdma, ok })}`,
);
if (!ok) process.exitCode = 1;
