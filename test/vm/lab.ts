// Programmatic front end of test/vm/lab-run: boots two qemu VMs joined by a soft-RoCE link,
// runs one bash script on each and returns what they printed. See docs/vm-lab.md.
//
//   const { nodes } = await runLab({
//     name: 'perftest',
//     timeoutSec: 120,
//     scripts: ['ib_write_bw -d "$LAB_RXE" -x 1 "$LAB_PEER_IP"', 'ib_write_bw -d "$LAB_RXE" -x 1'],
//   });
//   expect(nodes[0].exitCode).toBe(0);
//
// A script is inline bash text (a string) or `{ file: '/path/to/script.sh' }`.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/** Path of the lab-run script. */
export const LAB_RUN = join(here, 'lab-run');

/** Inline bash text, or a script file on the host (the VMs see the host's files). */
export type LabScript = string | { file: string };

export type NodeIndex = 0 | 1;

/** `crashed`: the VM died on its own (a guest kernel panic); `stopped`: killed because another node crashed. */
export type NodeStatus = 'exited' | 'timeout' | 'killed' | 'crashed' | 'stopped';

export interface NodeResult {
  /** The script's exit code; null if it did not finish (timeout, killed, crashed VM). 125 = lab setup failed. */
  exitCode: number | null;
  /** The run hit timeoutSec while this node was still running. */
  timedOut: boolean;
  /** The VM was killed on request (poweroff-now file, or killNodeWhen). */
  killed: boolean;
  status: NodeStatus;
  /** The script's stdout and stderr, interleaved as written. */
  output: string;
  /** The node's out dir on the host (LAB_OUT in the guest, same path): output, exit-code, console.log, ... */
  outDir: string;
  /** Seconds of guest uptime when rxe0 became ACTIVE (boot time), or null. */
  readyUptimeSec: number | null;
}

export interface KillNodeWhen {
  /** The node whose VM is killed (as if it lost power). */
  node: NodeIndex;
  /** A file name relative to the out dir of `inNode`; the kill happens once it exists. */
  whenFileExists: string;
  /** Whose out dir to watch; defaults to `node`. */
  inNode?: NodeIndex;
}

export interface LabOptions {
  scripts: [LabScript, LabScript];
  timeoutSec: number;
  /** Used in the run dir's name and log lines. */
  name?: string;
  /** Kill one VM mid-run once a file appears in an out dir (polled every 100 ms). */
  killNodeWhen?: KillNodeWhen;
  /** Stream the nodes' output to stderr while running (default: env SMC_LAB_LIVE=1). */
  live?: boolean;
  /** Extra kernel modules to modprobe in both VMs before the scripts run. */
  extraModules?: string[];
  /** 2: a second NIC and rxe device per VM (LAB_LINKS=2: rxe1 on 10.79.0.0/24). */
  links?: 1 | 2;
}

export interface LabResult {
  nodes: [NodeResult, NodeResult];
  /** Exit code of lab-run: 0 all scripts exited 0 (or were killed on request), 124 timeout, 1 failure. */
  exitCode: number | null;
  /** The run dir (node0/, node1/ inside); kept after the run. */
  runDir: string;
  /** lab-run's own log lines (start, ready times, summary, console tails of crashed nodes). */
  log: string;
  wallSec: number;
}

/** Where test/vm/setup.sh puts the kernel and initramfs. */
export function labCacheDir(): string {
  return join(process.env['SMC_CACHE'] ?? join(homedir(), '.cache', 'smc-operator'), 'vm');
}

/** True if test/vm/setup.sh has prepared the cache. */
export function labReady(): boolean {
  const dir = labCacheDir();
  return existsSync(join(dir, 'initramfs.cpio.gz')) && existsSync(join(dir, 'kver'));
}

function readOrEmpty(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function parseStatus(s: string): NodeStatus {
  const t = s.trim();
  return t === 'exited' || t === 'timeout' || t === 'killed' || t === 'stopped' ? t : 'crashed';
}

function nodeResult(outDir: string): NodeResult {
  const status = parseStatus(readOrEmpty(join(outDir, 'status')));
  const codeText = readOrEmpty(join(outDir, 'exit-code')).trim();
  const code = codeText === '' ? null : Number.parseInt(codeText, 10);
  const readyText = readOrEmpty(join(outDir, 'ready-uptime')).trim();
  const ready = readyText === '' ? null : Number.parseFloat(readyText);
  return {
    exitCode: code !== null && Number.isFinite(code) ? code : null,
    timedOut: status === 'timeout',
    killed: status === 'killed',
    status,
    output: readOrEmpty(join(outDir, 'output')),
    outDir,
    readyUptimeSec: ready !== null && Number.isFinite(ready) ? ready : null,
  };
}

function writeScript(dir: string, index: number, script: LabScript): string {
  if (typeof script === 'string') {
    const path = join(dir, `script${index}.sh`);
    writeFileSync(path, script.endsWith('\n') ? script : `${script}\n`);
    return path;
  }
  return resolve(script.file);
}

interface RunOnce {
  runDir: string;
  scriptPaths: string[];
  single: boolean;
  timeoutSec: number;
  name: string;
  killNodeWhen?: KillNodeWhen | undefined;
  live: boolean;
  extraModules: string[];
  links?: 1 | 2 | undefined;
}

function spawnLab(o: RunOnce): Promise<{ exitCode: number | null; log: string; wallSec: number }> {
  const args = ['--timeout', String(o.timeoutSec), '--keep', o.runDir];
  args.push(o.live ? '--live' : '--quiet');
  if (o.single) args.push('--single');
  args.push('--', ...o.scriptPaths);
  const env = { ...process.env };
  if (o.extraModules.length > 0) env['LAB_EXTRA_MODULES'] = o.extraModules.join(' ');
  env['LAB_LINKS'] = String(o.links ?? 1);
  const started = Date.now();
  return new Promise((resolvePromise, reject) => {
    const child = spawn(LAB_RUN, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    child.stdout.on('data', (d: Buffer) => {
      if (o.live) process.stderr.write(d);
    });
    child.stderr.on('data', (d: Buffer) => {
      const text = d.toString('utf8');
      log += text;
      if (o.live) process.stderr.write(text.replace(/^\[lab\]/gm, `[lab ${o.name}]`));
    });
    let poll: NodeJS.Timeout | undefined;
    const kill = o.killNodeWhen;
    if (kill) {
      const watched = join(o.runDir, `node${kill.inNode ?? kill.node}`, kill.whenFileExists);
      const trigger = join(o.runDir, `node${kill.node}`, 'poweroff-now');
      poll = setInterval(() => {
        if (existsSync(watched)) {
          writeFileSync(trigger, `killNodeWhen ${kill.whenFileExists}\n`);
          clearInterval(poll);
          poll = undefined;
        }
      }, 100);
    }
    // lab-run enforces the timeout itself; this is a backstop if lab-run itself hangs.
    const backstop = setTimeout(
      () => {
        child.kill('SIGTERM');
      },
      (o.timeoutSec + 60) * 1000,
    );
    child.on('error', (err) => {
      clearTimeout(backstop);
      if (poll) clearInterval(poll);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(backstop);
      if (poll) clearInterval(poll);
      resolvePromise({ exitCode: code, log, wallSec: (Date.now() - started) / 1000 });
    });
  });
}

function prepare(name: string): string {
  if (!labReady()) {
    throw new Error(`VM lab not prepared (${labCacheDir()}): run test/vm/setup.sh first`);
  }
  const safe = name.replace(/[^A-Za-z0-9_.-]/g, '_');
  return mkdtempSync(join(tmpdir(), `smc-lab-${safe}-`));
}

/** Boot two VMs, run scripts[0] on node0 (10.77.0.1) and scripts[1] on node1 (10.77.0.2). */
/**
 * The guests' stock kernel (Debian 6.12, rdma_rxe) now and then panics inside rxe under heavy RDMA
 * traffic on TCG: a double fault allocating an skb in rxe's receiver, with the trace in the node's
 * console.log. That is the lab's kernel failing, not the code under test, so such a run is repeated
 * once and the first run's directory kept; a second panic, or any other failure, fails as usual.
 */
export async function runLab(opts: LabOptions): Promise<LabResult> {
  const first = await runLabOnce(opts);
  const panic = rxePanic(first.runDir);
  if (panic === null) return first;
  process.stderr.write(
    `[lab] ${opts.name ?? 'lab'}: ${panic} (${first.runDir} kept); running it once more\n`,
  );
  return runLabOnce(opts);
}

/** Which node's kernel panicked in rdma_rxe during a run, or null. */
export function rxePanic(runDir: string): string | null {
  for (const node of ['node0', 'node1']) {
    const text = readOrEmpty(join(runDir, node, 'console.log'));
    if (text.includes('Kernel panic - not syncing') && text.includes('[rdma_rxe]'))
      return `${node}'s kernel panicked in rdma_rxe`;
  }
  return null;
}

async function runLabOnce(opts: LabOptions): Promise<LabResult> {
  const name = opts.name ?? 'lab';
  const runDir = prepare(name);
  const scriptPaths = opts.scripts.map((s, i) => writeScript(runDir, i, s));
  const r = await spawnLab({
    runDir,
    scriptPaths,
    single: false,
    timeoutSec: opts.timeoutSec,
    name,
    killNodeWhen: opts.killNodeWhen,
    live: opts.live ?? process.env['SMC_LAB_LIVE'] === '1',
    extraModules: opts.extraModules ?? [],
    links: opts.links,
  });
  return {
    nodes: [nodeResult(join(runDir, 'node0')), nodeResult(join(runDir, 'node1'))],
    exitCode: r.exitCode,
    runDir,
    log: r.log,
    wallSec: r.wallSec,
  };
}

export interface SingleLabOptions {
  script: LabScript;
  timeoutSec: number;
  name?: string;
  live?: boolean;
  extraModules?: string[];
}

export interface SingleLabResult {
  node: NodeResult;
  exitCode: number | null;
  runDir: string;
  log: string;
  wallSec: number;
}

/** Boot one VM (node0, 10.77.0.1, rxe0 on eth0 with no peer) and run one script. */
export async function runLabSingle(opts: SingleLabOptions): Promise<SingleLabResult> {
  const name = opts.name ?? 'lab';
  const runDir = prepare(name);
  const r = await spawnLab({
    runDir,
    scriptPaths: [writeScript(runDir, 0, opts.script)],
    single: true,
    timeoutSec: opts.timeoutSec,
    name,
    live: opts.live ?? process.env['SMC_LAB_LIVE'] === '1',
    extraModules: opts.extraModules ?? [],
  });
  return {
    node: nodeResult(join(runDir, 'node0')),
    exitCode: r.exitCode,
    runDir,
    log: r.log,
    wallSec: r.wallSec,
  };
}

/** A one-line summary per node, for assertion messages. */
export function describeResult(r: LabResult | SingleLabResult): string {
  const nodes = 'nodes' in r ? r.nodes : [r.node];
  const parts = nodes.map(
    (n, i) => `--- node${i}: ${n.status} exit=${String(n.exitCode)} (${n.outDir})\n${n.output.slice(-4000)}`,
  );
  return `${parts.join('\n')}\n--- lab-run log:\n${r.log}`;
}

/** Delete a run's directory (runLab keeps it so tests can read files from the out dirs). */
export function removeRunDir(r: { runDir: string }): void {
  rmSync(r.runDir, { recursive: true, force: true });
}
