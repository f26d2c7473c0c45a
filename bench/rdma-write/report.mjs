// Parses node0's output of a benchmark run (perftest tables + BENCH lines) and prints the
// addon's figures next to perftest's, with ratios. Usage: node report.mjs NODE0_OUTPUT_FILE
import { readFileSync } from 'node:fs';

const text = readFileSync(process.argv[2], 'utf8');
const lines = text.split('\n');
const bench = lines.filter((l) => l.startsWith('BENCH ')).map((l) => JSON.parse(l.slice(6)));
const addonBw = bench.find((b) => b.mode === 'bw');
const addonLat = bench.find((b) => b.mode === 'lat');

// perftest data rows: first column #bytes, then numbers.
function perftestRow(section) {
  const start = lines.findIndex((l) => l.includes(section));
  for (let i = start + 1; i > 0 && i < lines.length; i++) {
    if (lines[i].startsWith('==')) break;
    const cols = lines[i].trim().split(/\s+/);
    if (cols.length >= 4 && /^\d+$/.test(cols[0]) && /^\d+$/.test(cols[1])) return cols.map(Number);
  }
  return null;
}
const bwRow = perftestRow('== perftest ib_write_bw'); // bytes iters peak avg msgrate
const latRow = perftestRow('== perftest ib_write_lat'); // bytes iters min max typical avg stdev p99 p99.9

const result = {
  perftest: {
    writeBwMiBps: bwRow ? bwRow[3] : null,
    writeLatTypicalUs: latRow ? latRow[4] : null,
    writeLatAvgUs: latRow ? latRow[5] : null,
  },
  addon: {
    writeBwMiBps: addonBw ? addonBw.MiBps : null,
    writeLatTypicalUs: addonLat ? addonLat.tTypicalUs : null,
    writeLatAvgUs: addonLat ? addonLat.tAvgUs : null,
  },
};
const ratio = (a, b) => (a != null && b != null && b > 0 ? a / b : null);
result.ratios = {
  bw: ratio(result.addon.writeBwMiBps, result.perftest.writeBwMiBps),
  latTypical: ratio(result.addon.writeLatTypicalUs, result.perftest.writeLatTypicalUs),
  latAvg: ratio(result.addon.writeLatAvgUs, result.perftest.writeLatAvgUs),
};
const f = (x, d = 1) => (x == null ? 'n/a' : x.toFixed(d));
console.log('RDMA WRITE over soft-RoCE (two TCG VMs), same link, same run');
console.log('                          perftest      addon     addon/perftest');
console.log(
  `bandwidth 64 KiB [MiB/s]  ${f(result.perftest.writeBwMiBps).padStart(8)}  ${f(result.addon.writeBwMiBps).padStart(9)}  ${f(result.ratios.bw, 2).padStart(10)}`,
);
console.log(
  `latency 64 B typ. [us]    ${f(result.perftest.writeLatTypicalUs).padStart(8)}  ${f(result.addon.writeLatTypicalUs).padStart(9)}  ${f(result.ratios.latTypical, 2).padStart(10)}`,
);
console.log(
  `latency 64 B avg  [us]    ${f(result.perftest.writeLatAvgUs).padStart(8)}  ${f(result.addon.writeLatAvgUs).padStart(9)}  ${f(result.ratios.latAvg, 2).padStart(10)}`,
);
console.log(
  '(latency: one-way = round trip / 2; perftest busy-polls memory, the addon waits on its completion channel)',
);
console.log(`RESULT ${JSON.stringify(result)}`);
if (result.ratios.bw == null || result.ratios.latTypical == null) process.exitCode = 1;
