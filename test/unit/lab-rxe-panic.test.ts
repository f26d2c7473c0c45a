import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { rxePanic } from '../vm/lab.js';

// The end of a guest console from a run where rxe's receiver double-faulted (trimmed).
const PANIC = `[   56.396943] traps: PANIC: double fault, error_code: 0x0
[   56.400846] Workqueue: rxe_wq do_work [rdma_rxe]
[   56.402111] RIP: 0010:kmem_cache_alloc_node_noprof+0x6e/0x310
[   56.404454]  prepare_ack_packet+0x67/0x1c0 [rdma_rxe]
[   56.405878] Kernel panic - not syncing: Fatal exception in interrupt
`;

describe('a lab run whose guest kernel panicked in rdma_rxe', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  function run(consoles: [string, string]): string {
    const dir = mkdtempSync(join(tmpdir(), 'smc-lab-panic-'));
    dirs.push(dir);
    consoles.forEach((text, i) => {
      mkdirSync(join(dir, `node${i}`));
      writeFileSync(join(dir, `node${i}`, 'console.log'), text);
    });
    return dir;
  }

  it('is recognised by the console of either node', () => {
    expect(rxePanic(run(['[lab-init 7.33] node0 ready\n', PANIC]))).toBe(
      "node1's kernel panicked in rdma_rxe",
    );
    expect(rxePanic(run([PANIC, '']))).toBe("node0's kernel panicked in rdma_rxe");
  });

  it('is not claimed for a clean run or a panic elsewhere', () => {
    expect(rxePanic(run(['[lab-init 7.33] node0 ready\n', 'script exit code 1; powering off\n']))).toBeNull();
    expect(rxePanic(run(['Kernel panic - not syncing: VFS: Unable to mount root fs\n', '']))).toBeNull();
  });
});
