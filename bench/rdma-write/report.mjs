// Parses node0's output of a benchmark run (perftest tables and BENCH lines, per round) and prints
// the addon's figures next to perftest's with per-round ratios and their medians; then, when the run
// had the isolation step (BENCH_ISOLATION=1), its table: PD per link group vs type 2 memory windows.
// Usage: node report.mjs NODE0_OUTPUT_FILE
import { readFileSync } from 'node:fs';

const lines = readFileSync(process.argv[2], 'utf8').split('\n');

// Split into sections "== round N <what>" (key "N|<what>") and "== isolation" (key "isolation").
const sections = new Map();
let key = null;
for (const l of lines) {
  const m = /^== (?:round (\d+) )?(.+)$/.exec(l);
  if (m) {
    key = m[1] ? `${m[1]}|${m[2]}` : m[2];
    sections.set(key, []);
  } else if (key) sections.get(key).push(l);
}
const rounds = [
  ...new Set([...sections.keys()].filter((k) => k.includes('|')).map((k) => Number(k.split('|')[0]))),
].sort((a, b) => a - b);

// A perftest data row: #bytes #iterations then numbers.
function perftestRow(body) {
  for (const l of body ?? []) {
    const cols = l.trim().split(/\s+/);
    if (cols.length >= 4 && /^\d+$/.test(cols[0]) && /^\d+$/.test(cols[1])) return cols.map(Number);
  }
  return null;
}
function benchLine(body) {
  const l = (body ?? []).find((x) => x.startsWith('BENCH '));
  return l ? JSON.parse(l.slice(6)) : null;
}
const ratio = (a, b) => (a != null && b != null && b > 0 ? a / b : null);
const median = (xs) => {
  const v = xs.filter((x) => x != null).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};

const perRound = rounds.map((r) => {
  const bw = perftestRow(sections.get(`${r}|perftest ib_write_bw`)); // bytes iters peak avg msgrate
  const lat = perftestRow(sections.get(`${r}|perftest ib_write_lat`)); // bytes iters min max typ avg ...
  const abw = benchLine(sections.get(`${r}|addon bw`));
  const alat = benchLine(sections.get(`${r}|addon lat`));
  const elat = perftestRow(sections.get(`${r}|perftest ib_send_lat -e`)); // event-driven reference
  const row = {
    round: r,
    perftestBwMiBps: bw ? bw[3] : null,
    addonBwMiBps: abw ? abw.MiBps : null,
    perftestLatTypUs: lat ? lat[4] : null,
    addonLatTypUs: alat ? alat.tTypicalUs : null,
    perftestLatAvgUs: lat ? lat[5] : null,
    addonLatAvgUs: alat ? alat.tAvgUs : null,
    perftestEventLatTypUs: elat ? elat[4] : null,
  };
  row.bwRatio = ratio(row.addonBwMiBps, row.perftestBwMiBps);
  row.latTypRatio = ratio(row.addonLatTypUs, row.perftestLatTypUs);
  row.latAvgRatio = ratio(row.addonLatAvgUs, row.perftestLatAvgUs);
  row.latTypVsEventRatio = ratio(row.addonLatTypUs, row.perftestEventLatTypUs);
  return row;
});
const retries = lines.filter((l) => l.startsWith('RETRY ')).length;
const summary = {
  addonRetries: retries,
  rounds: perRound.length,
  medianBwRatio: median(perRound.map((r) => r.bwRatio)),
  medianLatTypRatio: median(perRound.map((r) => r.latTypRatio)),
  medianLatAvgRatio: median(perRound.map((r) => r.latAvgRatio)),
  medianLatTypVsEventRatio: median(perRound.map((r) => r.latTypVsEventRatio)),
};

const f = (x, d = 1) => (x == null ? 'n/a' : x.toFixed(d));
if (rounds.length > 0) printRounds();
function printRounds() {
  console.log('RDMA WRITE over soft-RoCE (two TCG VMs), perftest and the addon on the same link, same run');
  console.log(
    'round | bw 64KiB MiB/s: perftest addon ratio | lat 64B typ us: perftest addon ratio | avg us: perftest addon ratio',
  );
  for (const r of perRound) {
    console.log(
      `${String(r.round).padStart(5)} | ${f(r.perftestBwMiBps).padStart(24)} ${f(r.addonBwMiBps).padStart(5)} ${f(r.bwRatio, 2).padStart(5)} |` +
        ` ${f(r.perftestLatTypUs).padStart(24)} ${f(r.addonLatTypUs).padStart(6)} ${f(r.latTypRatio, 2).padStart(5)} |` +
        ` ${f(r.perftestLatAvgUs).padStart(16)} ${f(r.addonLatAvgUs).padStart(6)} ${f(r.latAvgRatio, 2).padStart(5)}`,
    );
  }
  console.log(
    `median ratios (addon/perftest): bandwidth ${f(summary.medianBwRatio, 2)} (higher is better), ` +
      `latency typical ${f(summary.medianLatTypRatio, 2)}, average ${f(summary.medianLatAvgRatio, 2)} (lower is better)`,
  );
  console.log(
    `event-driven reference ib_send_lat -e typical [us] per round: ${perRound.map((r) => f(r.perftestEventLatTypUs)).join(' ')}; ` +
      `addon/that median ${f(summary.medianLatTypVsEventRatio, 2)}`,
  );
  if (retries > 0) console.log(`addon steps retried after an rxe error completion: ${retries}`);
  console.log(
    'latency is one-way = round trip / 2; ib_write_lat busy-polls memory, the addon waits on its completion channel',
  );
}

// ---- isolation: PD per link group vs type 2 memory windows ----
const isoRan = sections.has('isolation');
const iso = isoRan ? benchLine(sections.get('isolation')) : null;
const isolation = isoRan ? isolationSummary(iso) : undefined;
if (isoRan) printIsolation(iso, isolation);

function isolationSummary(b) {
  if (!b) return { ok: false, error: 'the isolation step printed no BENCH line' };
  const group = (prefix) => {
    const cs = (b.checks ?? []).filter((c) => c.name.startsWith(prefix));
    return cs.length > 0 && cs.every((c) => c.ok);
  };
  const s = {
    iters: b.iters,
    rmbSize: b.rmbSize,
    pdPerLinkGroup: {
      perLinkGroup: { node0: b.costs?.node0?.pdAllocDealloc, node1: b.costs?.node1?.pdAllocDealloc },
      perConnection: { node0: b.costs?.node0?.rmbRegDereg, node1: b.costs?.node1?.rmbRegDereg },
      isolationOk: group('pd:'),
    },
    mwType2: {
      perLinkGroup: null,
      perConnection: { node0: b.costs?.node0?.mwCycle, node1: b.costs?.node1?.mwCycle },
      bwRatio: ratio(b.bw?.mw?.MiBps, b.bw?.mr?.MiBps),
      latTypRatio: ratio(b.lat?.mw?.tTypicalUs, b.lat?.mr?.tTypicalUs),
      latAvgRatio: ratio(b.lat?.mw?.tAvgUs, b.lat?.mr?.tAvgUs),
      isolationOk: group('mw:'),
    },
    costs: b.costs,
    bw: b.bw,
    lat: b.lat,
    checks: b.checks,
    invalidate: b.invalidate,
  };
  s.ok = s.pdPerLinkGroup.isolationOk && s.mwType2.isolationOk;
  return s;
}

function printIsolation(b, s) {
  console.log('');
  if (!b) {
    console.log('isolation: FAIL, the step printed no BENCH line (see the node outputs)');
    return;
  }
  const cost = (st) => (st ? `${f(st.medianUs, 0)}/${f(st.p99Us, 0)}` : 'n/a');
  const both = (x) => `n0 ${cost(x?.node0)}, n1 ${cost(x?.node1)}`;
  const okFail = (ok) => (ok ? 'OK' : 'FAIL');
  console.log(
    `Isolation of ${b.rmbSize / 1024} KiB RMBs: PD per link group vs type 2 memory windows ` +
      `(${b.iters} iterations; costs median/p99 us on node0 (n0) and node1 (n1))`,
  );
  const rows = [
    [
      'mechanism',
      'per-link-group cost',
      'per-connection cost',
      'WRITE bw MW/MR',
      'WRITE lat MW/MR',
      'isolation check',
    ],
    [
      'pd-per-link-group',
      both(s.pdPerLinkGroup.perLinkGroup),
      both(s.pdPerLinkGroup.perConnection),
      '1 (reference)',
      '1 (reference)',
      okFail(s.pdPerLinkGroup.isolationOk),
    ],
    [
      'mw-type-2',
      'none (one PD per device)',
      both(s.mwType2.perConnection),
      f(s.mwType2.bwRatio, 2),
      f(s.mwType2.latTypRatio, 2),
      okFail(s.mwType2.isolationOk),
    ],
  ];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows)
    console.log(
      r
        .map((c, i) => c.padEnd(widths[i]))
        .join(' | ')
        .trimEnd(),
    );
  console.log(
    'per-link-group: ibv_alloc_pd + ibv_dealloc_pd. per-connection: pd-per-link-group, a new RMB registered for ' +
      "remote write in the group's PD + deregistered (a pooled RMB costs nothing); mw-type-2, alloc MW + BIND_MW " +
      'and its completion + LOCAL_INV and its completion + dealloc MW (completions through the completion channel)',
  );
  const c0 = b.costs?.node0;
  const c1 = b.costs?.node1;
  const detail = (name, k) => `${name} n0 ${cost(c0?.[k])}, n1 ${cost(c1?.[k])}`;
  console.log(
    `mw-type-2 parts: ${detail('RMB reg+dereg with MW_BIND (once per RMB)', 'rmbMwBindRegDereg')}; ` +
      `${detail('alloc+dealloc MW', 'mwAllocDealloc')}; ${detail('BIND_MW', 'bind')}; ` +
      `${detail('LOCAL_INV', 'localInv')}; ${detail('LOCAL_INV + BIND_MW (RMB reused)', 'rebind')}`,
  );
  console.log(
    `data path (one QP pair, halves MR MW MW MR): bw node0 -> node1 ${b.bw?.size / 1024} KiB ` +
      `MR ${f(b.bw?.mr?.MiBps)} MW ${f(b.bw?.mw?.MiBps)} MiB/s; lat ping-pong ${b.lat?.size} B one-way typical ` +
      `MR ${f(b.lat?.mr?.tTypicalUs)} MW ${f(b.lat?.mw?.tTypicalUs)} us, average MR ${f(b.lat?.mr?.tAvgUs)} ` +
      `MW ${f(b.lat?.mw?.tAvgUs)} us (MW/MR ${f(s.mwType2.latAvgRatio, 2)})`,
  );
  console.log(`isolation checks (node1's LOCAL_INV of its window: ${b.invalidate ?? 'n/a'}):`);
  for (const c of b.checks ?? []) {
    console.log(
      `  ${okFail(c.ok).padEnd(4)} ${c.name}: ${c.status} (expected ${c.expect}), target memory ${c.memory}`,
    );
  }
}

console.log(`RESULT ${JSON.stringify({ summary, perRound, ...(isolation ? { isolation } : {}) })}`);
if (rounds.length > 0 || !isoRan) {
  if (summary.medianBwRatio == null || summary.medianLatTypRatio == null) process.exitCode = 1;
}
if (isolation && !isolation.ok) process.exitCode = 1;
