// Reads the lab dir of bench/burst/run.sh (node1/output: BURST lines; node1/metrics: both sidecars'
// /metrics at base, before, after, settled, the pods' TCP counters around each burst, the client
// sidecar's gauge samples; node0/metrics: web's gauge samples) and prints the table, the goal
// lines and the sidecars' memory. Exit 1 only when the run broke (a burst or the metrics missing).
// Usage: node report.mjs RUN/lab
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const lab = process.argv[2];
const n1 = join(lab, 'node1');
const read = (p) => (existsSync(p) ? readFileSync(p, 'utf8') : '');
const lines = read(join(n1, 'output')).split('\n');
const bursts = new Map(
  lines
    .filter((l) => l.startsWith('BURST '))
    .map((l) => JSON.parse(l.slice(6)))
    .map((b) => [b.label, b]),
);
const direct = bursts.get('direct');
const smcr = bursts.get('smcr');
if (!direct || !smcr) {
  console.error(
    `no BURST line for ${!direct ? 'direct' : 'smcr'} in ${n1}/output: the run did not get that far`,
  );
  process.exit(1);
}
const N = smcr.n;

// Prometheus text: [{ name, labels, value }].
const parse = (text) =>
  text.split('\n').flatMap((l) => {
    const x = /^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})?\s+(\S+)/.exec(l);
    if (!x) return [];
    const labels = Object.fromEntries(
      [...(x[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]),
    );
    return [{ name: x[1], labels, value: Number(x[3]) }];
  });
const snap = (pod, phase) => {
  const t = read(join(n1, 'metrics', `${pod}-${phase}.txt`));
  return t.trim() ? parse(t) : null;
};
const value = (ms, name, labels = {}) => {
  const m = ms?.find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  return m ? m.value : null;
};
// Per-label deltas of a counter between two snapshots: [{ labels, d }] with d != 0.
const deltas = (a, b, name) =>
  (b ?? [])
    .filter((x) => x.name === name)
    .map((x) => ({ labels: x.labels, d: x.value - (value(a, name, x.labels) ?? 0) }))
    .filter((x) => x.d !== 0);
const counted = (pod, from, to) => {
  const ds = deltas(snap(pod, from), snap(pod, to), 'smc_connections_total');
  const sum = (outcome) => ds.filter((x) => x.labels.outcome === outcome).reduce((s, x) => s + x.d, 0);
  const reasons = (outcome) =>
    ds
      .filter((x) => x.labels.outcome === outcome)
      .map((x) => `${x.labels.reason} ${x.d}`)
      .join(', ');
  const resets = deltas(snap(pod, from), snap(pod, to), 'smc_app_resets_total');
  return {
    ok: snap(pod, from) !== null && snap(pod, to) !== null,
    upgraded: sum('upgraded'),
    fallback: sum('fallback'),
    declined: sum('declined'),
    fallbackReasons: reasons('fallback'),
    declinedReasons: reasons('declined'),
    appResets: resets.reduce((s, x) => s + x.d, 0),
    appResetReasons: resets.map((x) => `${x.labels.reason} ${x.d}`).join(', '),
  };
};
const client = counted('client', 'before', 'after');
const web = counted('web', 'before', 'after');
const warm = counted('client', 'base', 'before');

const f = (x, d = 1) => (x == null ? 'n/a' : x.toFixed(d));
const ratio = (x, y) => (x == null || y == null || y === 0 ? null : x / y);
const other = (b) => b.error + b.badAnswer + b.timeout;
const rows = [
  ['direct TCP pod->pod (plain -> legacy)', direct, null],
  ['sidecars, SMC-R (client -> web)', smcr, client],
];
const table = [
  [
    'path',
    'connections',
    'ok',
    'resets',
    'other errors',
    'truncated',
    'upgraded',
    'fallback (by reason)',
    'connect p50 ms',
    'connect p99 ms',
    'first byte p50 ms',
    'first byte p99 ms',
    'full answer p50 ms',
    'full answer p99 ms',
  ],
];
for (const [name, b, c] of rows) {
  table.push([
    name,
    b.n,
    b.ok,
    b.reset,
    other(b),
    b.truncated,
    c ? c.upgraded : '-',
    c ? `${c.fallback}${c.fallbackReasons ? ` (${c.fallbackReasons})` : ''}` : '-',
    f(b.connectMs.p50),
    f(b.connectMs.p99),
    f(b.firstByteMs.p50),
    f(b.firstByteMs.p99),
    f(b.fullMs.p50),
    f(b.fullMs.p99),
  ]);
}
const print = (t) => {
  const w = t[0].map((_, i) => Math.max(...t.map((r) => String(r[i]).length)));
  const row = (r) => `| ${r.map((c, i) => String(c).padEnd(w[i])).join(' | ')} |`;
  console.log(row(t[0]));
  console.log(`|${w.map((n) => '-'.repeat(n + 2)).join('|')}|`);
  for (const r of t.slice(1)) console.log(row(r));
};

const lg = (phase) => value(snap('client', phase), 'smc_link_groups');
console.log(
  `Burst of ${N} concurrent new connections, one two-VM soft-RoCE lab run (TCG), same link; ` +
    `each an HTTP/1.0 GET of a ${smcr.size}-byte file from nginx, server closes; ` +
    `all connect() calls issued within ${f(smcr.issueMs)} ms (direct ${f(direct.issueMs)} ms)`,
);
print(table);
for (const [name, b] of rows) {
  const codes = Object.entries(b.errors)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  if (codes)
    console.log(
      `${name}: not ok: ${codes}${b.resetAfterAnswer ? `; resets after the whole answer ${b.resetAfterAnswer}` : ''}`,
    );
  console.log(
    `${name}: wall ${f(b.wallMs / 1000, 2)} s; connect p90/max ${f(b.connectMs.p90)}/${f(b.connectMs.max)} ms, ` +
      `full answer p90/max ${f(b.fullMs.p90)}/${f(b.fullMs.max)} ms`,
  );
}

// Goals.
const verdict = (good) => (good ? 'OK' : 'MISS');
console.log(
  `resets: ${smcr.reset} (goal 0) ${verdict(smcr.reset === 0)}: ECONNRESET seen by the application through the sidecars; ` +
    `direct TCP ${direct.reset}; sidecars' smc_app_resets_total: client +${client.appResets}` +
    `${client.appResetReasons ? ` (${client.appResetReasons})` : ''}, web +${web.appResets}` +
    `${web.appResetReasons ? ` (${web.appResetReasons})` : ''}`,
);
const sum = client.upgraded + client.fallback;
console.log(
  `counted: upgraded ${client.upgraded} + fallback ${client.fallback} = ${sum} (goal ${N}) ${verdict(client.ok && sum === N)}: ` +
    `client sidecar's smc_connections_total over the burst` +
    `${client.declined ? `; declined ${client.declined} (${client.declinedReasons})` : ''}; ` +
    `web's sidecar: upgraded ${web.upgraded}, fallback ${web.fallback}, declined ${web.declined}` +
    (client.ok ? '' : '; client sidecar metrics missing'),
);
const cr = ratio(smcr.connectMs.p99, direct.connectMs.p99);
const lgBefore = lg('before');
const lgAfter = lg('after');
const fresh = lgBefore != null && lgAfter != null ? lgAfter - lgBefore : null;
console.log(
  `join connect p99 / direct p99: ${f(cr, 2)} (goal <= 2.0) ${verdict(cr != null && cr <= 2)}: ` +
    `${f(smcr.connectMs.p99)} / ${f(direct.connectMs.p99)} ms; client link groups before ${lgBefore ?? 'n/a'}, ` +
    `after ${lgAfter ?? 'n/a'}` +
    (fresh
      ? ` (${fresh} new: a link group holds at most 255 connections; its first one is a first contact and the others wait for it)`
      : ''),
);
console.log(
  `  the connect event through a sidecar is the local redirect to its outbound listener; the CLC handshake and the ` +
    `join are in the first byte: first byte p99 / direct ${f(ratio(smcr.firstByteMs.p99, direct.firstByteMs.p99), 2)}, ` +
    `p50 ${f(ratio(smcr.firstByteMs.p50, direct.firstByteMs.p50), 2)}; full answer p99 / direct ` +
    `${f(ratio(smcr.fullMs.p99, direct.fullMs.p99), 2)}, p50 ${f(ratio(smcr.fullMs.p50, direct.fullMs.p50), 2)}`,
);
const wb = bursts.get('warmup-smcr');
console.log(
  `warm-up through the sidecars: ${wb ? (wb.ok === 1 ? 'ok' : 'not ok') : 'n/a'}, client sidecar counted ` +
    `upgraded ${warm.upgraded}, fallback ${warm.fallback}${warm.fallbackReasons ? ` (${warm.fallbackReasons})` : ''}; ` +
    `link groups after it ${lgBefore ?? 'n/a'}`,
);

// Sidecar memory: snapshots and the peak of the samples taken between burst-start and settled.
const samples = (path) => {
  const all = read(path)
    .split('\n')
    .filter((l) => l.trim())
    .flatMap((l) => {
      try {
        return [JSON.parse(l)];
      } catch {
        return [];
      }
    });
  const start = all.findLastIndex((s) => s.mark === 'burst-start');
  const end = all.findLastIndex((s) => s.mark === 'settled');
  return start < 0 ? [] : all.slice(start, end < 0 ? undefined : end + 1).filter((s) => s.m);
};
const MiB = (x) => (x == null ? 'n/a' : (x / 2 ** 20).toFixed(1));
const mem = [
  [
    'sidecar',
    'RSS MiB base / before / peak / after / settled',
    'registered MiB base / before / peak / after / settled',
    'RMBs in-use / pooled / retiring (peak in-use; settled)',
    'open fds peak / limit',
    'event loop lag max s (peak)',
    'V8 heap total / used / external MiB before; settled',
  ],
];
const peaks = {};
for (const [pod, dir] of [
  ['client', n1],
  ['web', join(lab, 'node0')],
]) {
  const ss = samples(join(dir, 'metrics', `samples-${pod}.jsonl`));
  const peak = (key, phases) => {
    const xs = [
      ...ss.map((s) => s.m[key]),
      ...phases.map((p) => {
        const [name, lbl] = key.split('{');
        const labels = lbl
          ? Object.fromEntries([...lbl.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]))
          : {};
        return value(snap(pod, p), name, labels);
      }),
    ].filter((x) => x != null && !Number.isNaN(x));
    return xs.length ? Math.max(...xs) : null;
  };
  const at = (name, labels = {}) =>
    ['base', 'before', 'after', 'settled'].map((p) => value(snap(pod, p), name, labels));
  const rss = at('process_resident_memory_bytes');
  const reg = at('smc_registered_memory_bytes');
  const rssPeak = peak('process_resident_memory_bytes', ['after']);
  const regPeak = peak('smc_registered_memory_bytes', ['after']);
  const heap = ['before', 'settled'].map((p) =>
    ['nodejs_heap_size_total_bytes', 'nodejs_heap_size_used_bytes', 'nodejs_external_memory_bytes']
      .map((name) => MiB(value(snap(pod, p), name)))
      .join(' / '),
  );
  peaks[pod] = { rss, rssPeak, reg, regPeak };
  const settled = ['in-use', 'pooled', 'retiring'].map((state) =>
    value(snap(pod, 'settled'), 'smc_rmbs', { state }),
  );
  mem.push([
    pod,
    [rss[0], rss[1], rssPeak, rss[2], rss[3]].map(MiB).join(' / '),
    [reg[0], reg[1], regPeak, reg[2], reg[3]].map(MiB).join(' / '),
    `${peak('smc_rmbs{state="in-use"}', ['after']) ?? 'n/a'}; ${settled.map((x) => x ?? 'n/a').join(' / ')}`,
    `${peak('process_open_fds', ['after']) ?? 'n/a'} / ${value(snap(pod, 'before'), 'process_max_fds') ?? 'n/a'}`,
    f(peak('nodejs_eventloop_lag_max_seconds', []), 3),
    heap.join('; '),
  ]);
}
print(mem);
// Memory back to its pre-burst level within the RMB pool's bound: 16 pooled RMBs (each with its
// staging ring) per link group at limits.rmbSize.
const poolBytes = 16 * 2 * Number(process.env.BURST_RMB_SIZE || 65536);
const rssGrowth = Object.fromEntries(
  Object.entries(peaks).map(([pod, p]) => [
    pod,
    p.rss[3] != null && p.rss[1] != null ? p.rss[3] - p.rss[1] : null,
  ]),
);
const rssOk = Object.values(rssGrowth).every((g) => g != null && g <= poolBytes);
console.log(
  `RSS settled - before: ${Object.entries(rssGrowth)
    .map(([pod, g]) => `${pod} ${MiB(g)} MiB`)
    .join(', ')} (goal <= the RMB pool, ${MiB(poolBytes)} MiB) ${verdict(rssOk)}`,
);
console.log(
  `peak: the largest of the samples every ${process.env.BURST_SAMPLE_MS ?? 5000} ms from the burst's start to the settled ` +
    `snapshot (${process.env.BURST_SETTLE_S ?? 10} s after the burst) and the snapshot right after it`,
);

// TCP counters of the pods over each burst: the listen queues (an overflow drops a SYN, sent again
// 1 s later, or a final ACK: latency, not a reset).
const netstat = (pod, phase) => {
  const out = {};
  const ls = read(join(n1, 'metrics', `netstat-${pod}-${phase}.txt`)).split('\n');
  for (let i = 0; i + 1 < ls.length; i++) {
    const [h, v] = [ls[i].split(/\s+/), ls[i + 1].split(/\s+/)];
    if (h[0] !== v[0] || !h[0].endsWith(':') || !/^-?\d+$/.test(v[1] ?? '')) continue;
    h.slice(1).forEach((k, j) => (out[`${h[0]}${k}`] = Number(v[j + 1])));
    i++;
  }
  return out;
};
const KEYS = [
  ['TcpExt:ListenOverflows', 'listen overflows'],
  ['TcpExt:ListenDrops', 'listen drops'],
  ['TcpExt:TCPSynRetrans', 'SYN retransmits'],
  ['TcpExt:TCPReqQFullDrop', 'SYN queue full drops'],
  ['Tcp:OutRsts', 'RSTs sent'],
];
const tcp = [['pod (burst)', ...KEYS.map(([, name]) => name)]];
for (const [pod, phase] of [
  ['plain', 'direct'],
  ['legacy', 'direct'],
  ['client', 'smcr'],
  ['web', 'smcr'],
]) {
  const a = netstat(pod, `${phase}-before`);
  const b = netstat(pod, `${phase}-after`);
  tcp.push([`${pod} (${phase})`, ...KEYS.map(([k]) => (a[k] == null || b[k] == null ? 'n/a' : b[k] - a[k]))]);
}
print(tcp);

console.log(
  `RESULT ${JSON.stringify({
    n: N,
    direct,
    smcr,
    counted: { client, web },
    linkGroups: { before: lgBefore, after: lgAfter },
    memory: peaks,
    goals: {
      resets: smcr.reset === 0,
      counted: client.ok && sum === N,
      joinConnectP99Ratio: cr,
      joinConnectP99: cr != null && cr <= 2,
      rssGrowth,
      rssWithinPool: rssOk,
    },
  })}`,
);
if (!client.ok) {
  console.error('client sidecar metrics missing around the burst');
  process.exitCode = 1;
}
