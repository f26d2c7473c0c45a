// Parses node0's output of a benchmark run (perftest tables and BENCH lines, per round) and prints
// the addon's figures next to perftest's with per-round ratios and their medians.
// Usage: node report.mjs NODE0_OUTPUT_FILE
import { readFileSync } from 'node:fs';

const lines = readFileSync(process.argv[2], 'utf8').split('\n');

// Split into sections "== round N <what>".
const sections = new Map();
let key = null;
for (const l of lines) {
  const m = /^== round (\d+) (.+)$/.exec(l);
  if (m) {
    key = `${m[1]}|${m[2]}`;
    sections.set(key, []);
  } else if (key) sections.get(key).push(l);
}
const rounds = [...new Set([...sections.keys()].map((k) => Number(k.split('|')[0])))].sort((a, b) => a - b);

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
console.log(`RESULT ${JSON.stringify({ summary, perRound })}`);
if (summary.medianBwRatio == null || summary.medianLatTypRatio == null) process.exitCode = 1;
