#!/usr/bin/env node
// Summarises a V8 CPU profile (node --cpu-prof): where the busy time went, by function and by
// file, self time only, so the rows add up.
//
//   node bench/cpu-profile.mjs FILE.cpuprofile [top=25]
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

const [file, topArg] = process.argv.slice(2);
if (file === undefined) {
  console.error('usage: cpu-profile.mjs FILE.cpuprofile [top]');
  process.exit(2);
}
const top = Number(topArg ?? 25);
const profile = JSON.parse(readFileSync(file, 'utf8'));
const wallUs = profile.endTime - profile.startTime;
const samples = profile.samples.length;
const usPerSample = samples > 0 ? wallUs / samples : 0;

const idleNames = new Set(['(idle)', '(program)']);
const byFunction = new Map();
const byFile = new Map();
let busy = 0;
let idle = 0;
const add = (map, key, us) => map.set(key, (map.get(key) ?? 0) + us);
for (const node of profile.nodes) {
  const us = (node.hitCount ?? 0) * usPerSample;
  if (us === 0) continue;
  const { functionName, url, lineNumber } = node.callFrame;
  if (functionName === '(idle)') {
    idle += us;
    continue;
  }
  busy += us;
  const where = url === '' ? '' : `${basename(url)}:${lineNumber + 1}`;
  add(byFunction, `${functionName || '(anonymous)'} ${where}`.trim(), us);
  add(byFile, url === '' ? (idleNames.has(functionName) ? functionName : '(native/V8)') : shorten(url), us);
}

function shorten(url) {
  const path = url.replace(/^file:\/\//, '');
  const i = path.indexOf('/dist/');
  if (i >= 0) return path.slice(i + 1);
  const m = path.indexOf('node_modules/');
  if (m >= 0) return path.slice(m).split('/').slice(0, 2).join('/');
  return path.startsWith('node:') ? path : basename(path);
}

const ms = (us) => (us / 1000).toFixed(0).padStart(7);
const pct = (us) => ((100 * us) / Math.max(busy, 1)).toFixed(1).padStart(5);
console.log(`${file}`);
console.log(
  `wall ${(wallUs / 1e6).toFixed(1)} s, busy ${(busy / 1e6).toFixed(1)} s, idle ${(idle / 1e6).toFixed(1)} s, ${samples} samples`,
);
const print = (title, map, n) => {
  console.log(`  ${title} (self ms, % of busy)`);
  for (const [k, us] of [...map].sort((a, b) => b[1] - a[1]).slice(0, n)) {
    console.log(`  ${ms(us)} ${pct(us)}%  ${k}`);
  }
};
print('by file', byFile, 15);
print('by function', byFunction, top);
