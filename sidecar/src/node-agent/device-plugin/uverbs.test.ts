import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readRdmaCharDevices, type UverbsPaths } from './uverbs.js';

let root: string;
let paths: UverbsPaths;

async function put(path: string, content: string): Promise<void> {
  await mkdir(dirname(join(root, path)), { recursive: true });
  await writeFile(join(root, path), content);
}

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'smc-uverbs-'));
  paths = {
    infinibandVerbs: join(root, 'sys/class/infiniband_verbs'),
    infiniband: join(root, 'sys/class/infiniband'),
    devInfiniband: join(root, 'dev/infiniband'),
  };
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('readRdmaCharDevices', () => {
  it('finds uverbs nodes by their ibdev in /sys/class/infiniband_verbs', async () => {
    await put('sys/class/infiniband_verbs/uverbs0/ibdev', 'mlx5_0\n');
    await put('sys/class/infiniband_verbs/uverbs1/ibdev', 'rxe0\n');
    await put('sys/class/infiniband_verbs/abi_version', '6\n');
    await put('dev/infiniband/rdma_cm', '');
    const found = await readRdmaCharDevices(['rxe0', 'mlx5_0', 'mlx5_9'], paths);
    expect([...found.uverbs].sort()).toEqual([
      ['mlx5_0', 'uverbs0'],
      ['rxe0', 'uverbs1'],
    ]);
    expect(found.rdmaCm).toBe(true);
  });

  it("falls back to the parent device's infiniband_verbs directory", async () => {
    await put('sys/class/infiniband/mlx5_0/device/infiniband_verbs/uverbs3/ibdev', 'mlx5_1\n');
    await put('sys/class/infiniband/mlx5_0/device/infiniband_verbs/uverbs4/ibdev', 'mlx5_0\n');
    const found = await readRdmaCharDevices(['mlx5_0'], paths);
    expect(found.uverbs.get('mlx5_0')).toBe('uverbs4');
    expect(found.rdmaCm).toBe(false);
  });

  it('finds nothing on a node without RDMA', async () => {
    const found = await readRdmaCharDevices([], paths);
    expect(found.uverbs.size).toBe(0);
    expect(found.rdmaCm).toBe(false);
  });
});
