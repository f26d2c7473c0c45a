// Part 2 of `npm run lab`: the two-node soft-RoCE lab. Each VM gets the scenario's pods of its
// node as network namespaces, the sidecars with the environment the webhook injected and the
// directory the operator published (written into the node's $LAB_OUT/input by the inline script
// below), and runs test/lab/node.sh. Results are files in the nodes' out dirs, read here.
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { labReady } from '../vm/lab.js';
import { FLOWS, PODS, type LabPod } from './scenario.js';

export const NFT_MODULES = [
  'nf_tables',
  'nf_conntrack',
  'nf_nat',
  'nft_chain_nat',
  'nft_redir',
  'nft_ct',
  'veth',
];

export type Series = Map<string, number>;

/** Prometheus text -> series (`name{labels}`) -> value. */
export function parseMetrics(text: string): Series {
  const out: Series = new Map();
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?)\s+(\S+)/.exec(line);
    if (m?.[1] && m[2] && !line.startsWith('#')) out.set(m[1], Number(m[2]));
  }
  return out;
}

export function delta(before: Series, after: Series): Series {
  const out: Series = new Map();
  for (const [k, v] of after) {
    const d = v - (before.get(k) ?? 0);
    if (d !== 0) out.set(k, d);
  }
  return out;
}

export interface FlowResult {
  name: string;
  pod: string;
  exitCode: number | null;
  seconds: number;
  output: string;
  error: string;
  delta: Series;
}

export interface LabRun {
  runDir: string;
  exitCode: number | null;
  wallSec: number;
  nodes: { exitCode: number | null; status: string; outDir: string }[];
}

/**
 * test/vm/lab-run with one script for both nodes (lab.ts's runLab locates lab-run next to itself,
 * which from dist/ is not where it lives, hence this small equivalent).
 */
function runLabRun(repo: string, script: string, timeoutSec: number, live: boolean): Promise<LabRun> {
  const runDir = mkdtempSync(join(tmpdir(), 'smc-lab-npm-run-lab-'));
  const path = join(runDir, 'node.sh');
  writeFileSync(path, script);
  const args = [
    '--timeout',
    String(timeoutSec),
    '--keep',
    runDir,
    live ? '--live' : '--quiet',
    '--',
    path,
    path,
  ];
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(join(repo, 'test/vm/lab-run'), args, {
      env: { ...process.env, LAB_EXTRA_MODULES: NFT_MODULES.join(' ') },
      stdio: ['ignore', 2, 2], // progress on stderr; the report alone goes to stdout
    });
    const backstop = setTimeout(() => child.kill('SIGTERM'), (timeoutSec + 60) * 1000);
    child.on('error', (e) => {
      clearTimeout(backstop);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(backstop);
      const nodes = [0, 1].map((n) => {
        const outDir = join(runDir, `node${n}`);
        const rc = read(join(outDir, 'exit-code')).trim();
        return {
          exitCode: rc === '' ? null : Number(rc),
          status: read(join(outDir, 'status')).trim(),
          outDir,
        };
      });
      resolve({ runDir, exitCode: code, wallSec: (Date.now() - started) / 1000, nodes });
    });
  });
}

export interface VmResult {
  lab: LabRun;
  flows: FlowResult[];
  /** Final metrics of every sidecar pod. */
  metrics: Map<string, Series>;
  /** Every sidecar pod's `smc connections` table at the end (what `kubectl smc connections` prints). */
  connectionTables: Map<string, string>;
  /** Per node: rxe hw counter deltas over the run. */
  rxe: [Series, Series];
  /** Per server pod: sha256 of the /blob it served. */
  blobs: Map<string, string>;
}

function read(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function counters(text: string): Series {
  const out: Series = new Map();
  for (const line of text.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined && /^\d+$/.test(v)) out.set(k, Number(v));
  }
  return out;
}

function heredoc(path: string, content: string): string {
  const tag = 'LAB_INPUT_EOF';
  if (content.includes(tag)) throw new Error(`input for ${path} contains ${tag}`);
  return `cat >"${path}" <<'${tag}'\n${content}\n${tag}\n`;
}

/** The inline script of one node: writes the inputs, then runs test/lab/node.sh. */
export function nodeScript(
  directory: Map<string, string>,
  sidecarEnv: (pod: LabPod) => Record<string, string>,
  dataPath: string,
  addon: string,
): string {
  let s = 'set -euo pipefail\nIN="$LAB_OUT/input"\nmkdir -p "$IN/directory"\n';
  for (const [file, json] of directory) s += heredoc(`$IN/directory/${file}`, json);
  s += heredoc(
    '$IN/pods.tsv',
    PODS.map((p) => [p.name, p.node, p.ip, p.sidecar ? 1 : 0, p.role].join(' ')).join('\n'),
  );
  s += heredoc('$IN/flows.tsv', FLOWS.map((f) => [f.name, f.pod, f.command].join('\t')).join('\n'));
  for (const p of PODS.filter((x) => x.sidecar)) {
    const env = Object.entries(sidecarEnv(p))
      .filter(([k]) => !k.startsWith('POD_') && k !== 'NODE_NAME')
      .map(([k, v]) => `${k}=${v}`);
    s += heredoc(`$IN/sidecar-${p.name}.env`, env.join('\n'));
  }
  s += `export LAB_DATA_PATH=${JSON.stringify(dataPath)} LAB_ADDON=${JSON.stringify(addon)}\n`;
  s += 'exec bash "$LAB_REPO/test/lab/node.sh"\n';
  return s;
}

export function vmPrerequisites(repo: string): string[] {
  const missing: string[] = [];
  if (!labReady()) missing.push('the VM kernel and initramfs (test/vm/setup.sh)');
  if (!existsSync(join(repo, 'native/build/Release/smc_verbs.node')))
    missing.push('the native addon (npm run build:native)');
  if (!existsSync(join(repo, 'dist/sidecar/src/main.js')))
    missing.push('the sidecar build (npm run build:ts)');
  return missing;
}

export async function runVmPart(
  repo: string,
  directory: Map<string, string>,
  sidecarEnv: (pod: LabPod) => Record<string, string>,
  opts: { dataPath: string; timeoutSec: number; live: boolean },
): Promise<VmResult> {
  // The VMs load a copy of the addon, so a concurrent native rebuild cannot swap it mid-run.
  const cache = join(repo, 'node_modules/.cache/smc-lab');
  mkdirSync(cache, { recursive: true });
  const addon = join(cache, 'smc_verbs.node');
  copyFileSync(join(repo, 'native/build/Release/smc_verbs.node'), addon);
  const script = nodeScript(directory, sidecarEnv, opts.dataPath, addon);
  const lab = await runLabRun(repo, script, opts.timeoutSec, opts.live);
  const out = (n: 0 | 1): string => join(lab.runDir, `node${n}`);
  const flows: FlowResult[] = FLOWS.map((f) => {
    const node = PODS.find((p) => p.name === f.pod)?.node ?? 1;
    const base = join(out(node), 'flows', f.name);
    const meta = read(`${base}.meta`);
    const rc = /rc=(\d+)/.exec(meta)?.[1];
    const sec = /sec=([\d.]+)/.exec(meta)?.[1];
    return {
      name: f.name,
      pod: f.pod,
      exitCode: rc === undefined ? null : Number(rc),
      seconds: sec === undefined ? NaN : Number(sec),
      output: read(`${base}.out`).trim(),
      error: read(`${base}.err`).trim(),
      delta: delta(parseMetrics(read(`${base}.before`)), parseMetrics(read(`${base}.after`))),
    };
  });
  const metrics = new Map<string, Series>();
  const connectionTables = new Map<string, string>();
  const blobs = new Map<string, string>();
  for (const p of PODS) {
    if (p.sidecar) metrics.set(p.name, parseMetrics(read(join(out(p.node), `metrics-${p.name}.txt`))));
    if (p.sidecar)
      connectionTables.set(p.name, read(join(out(p.node), `connections-${p.name}.txt`)).trimEnd());
    if (p.role === 'server') blobs.set(p.name, read(join(out(p.node), `blob-${p.name}.sha256`)).trim());
  }
  const rxe = ([0, 1] as const).map((n) =>
    delta(counters(read(join(out(n), 'rxe-before.txt'))), counters(read(join(out(n), 'rxe-after.txt')))),
  ) as [Series, Series];
  return { lab, flows, metrics, connectionTables, rxe, blobs };
}
