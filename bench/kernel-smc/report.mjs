// Parses node0's output of bench/kernel-smc/run.sh (BENCH / KSTATS lines) and prints TCP vs
// kernel SMC-R: medians over the rounds and the ratio SMC-R/TCP. Usage: node report.mjs FILE
import { existsSync, readFileSync } from 'node:fs';

if (!existsSync(process.argv[2])) {
  console.error(`no node0 output (${process.argv[2]}): the lab run did not get that far`);
  process.exit(1);
}
const lines = readFileSync(process.argv[2], 'utf8').split('\n');
const bench = lines.filter((l) => l.startsWith('BENCH ')).map((l) => JSON.parse(l.slice(6)));
const kstats = (tag) => {
  const l = lines.find((x) => x.startsWith(`KSTATS ${tag} `));
  return l ? JSON.parse(l.slice(`KSTATS ${tag} `.length)) : null;
};
const smcConns = Number((lines.find((l) => l.startsWith('SMC_CONNS ')) ?? 'SMC_CONNS 0').split(' ')[1]);

const median = (xs) => {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const pick = (prefix, key) => median(bench.filter((b) => b.label.startsWith(prefix)).map((b) => b[key]));
const rows = [
  ['RTT 64 B p50 [us]', 'rtt', 'p50_us'],
  ['RTT 64 B p99 [us]', 'rtt', 'p99_us'],
  ['bulk [MiB/s]', 'bulk', 'mib_s'],
  ['connect [ms]', 'rtt', 'connect_ms'],
].map(([name, op, key]) => {
  const tcp = pick(`tcp-${op}-`, key);
  const smc = pick(`smc-${op}-`, key);
  // Per-round ratios (round n of TCP against round n of SMC-R): how much the run drifted.
  const perRound = bench
    .filter((b) => b.label.startsWith(`tcp-${op}-`))
    .map((t) => {
      const s = bench.find((b) => b.label === t.label.replace(/^tcp-/, 'smc-'));
      return s && t[key] > 0 ? s[key] / t[key] : null;
    })
    .filter((x) => x != null);
  return { name, tcp, smc, ratio: tcp && smc != null ? smc / tcp : null, perRound };
});

// Every SMC connection of the rounds must have been SMC-R: client v2 successes moved by the
// number of SMC connections, the fallback counter did not move.
const before = kstats('before');
const after = kstats('after');
let smcrOk = false;
let check = 'no kernel stats';
if (before && after) {
  const succ = after.stats.smcr.clnt_v2_succ - before.stats.smcr.clnt_v2_succ;
  const fb = after.fallback.clnt_cnt - before.fallback.clnt_cnt;
  const bytes = after.stats.smcr.tx_bytes - before.stats.smcr.tx_bytes;
  smcrOk = succ === smcConns && fb === 0;
  check = `SMC-R connections ${succ}/${smcConns}, client fallbacks ${fb}, SMC-R tx ${(bytes / 1048576).toFixed(1)} MiB`;
}

const rounds = bench.filter((b) => b.label.startsWith('tcp-rtt-')).length;
const bulkMiB = bench.find((b) => b.op === 'bulk')?.bytes / 1048576;
const pings = bench.find((b) => b.op === 'rtt')?.count;
const f = (x, d = 1) => (x == null ? 'n/a' : x.toFixed(d));
console.log(
  `TCP vs kernel SMC-R over soft-RoCE (two TCG VMs), same link, same run: median of ${rounds} round(s), ` +
    `${pings} pings of 64 B, ${bulkMiB} MiB bulk`,
);
console.log('                        TCP      SMC-R   SMC-R/TCP   per round');
for (const r of rows) {
  console.log(
    `${r.name.padEnd(20)}${f(r.tcp).padStart(7)}  ${f(r.smc).padStart(9)}  ${f(r.ratio, 2).padStart(9)}   ` +
      r.perRound.map((x) => f(x, 2)).join(' '),
  );
}
console.log(`kernel counters: ${check}${smcrOk ? '' : '  <-- NOT all SMC-R'}`);
const result = Object.fromEntries(
  rows.map((r) => [r.name, { tcp: r.tcp, smc: r.smc, ratio: r.ratio, perRound: r.perRound }]),
);
console.log(`RESULT ${JSON.stringify({ rounds, rows: result, smcrOk, check })}`);
if (!smcrOk || rows.some((r) => r.ratio == null)) process.exitCode = 1;
