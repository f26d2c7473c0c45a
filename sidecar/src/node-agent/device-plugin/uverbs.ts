/**
 * Finds each RDMA device's uverbs character device in sysfs, and whether rdma_cm exists.
 *
 * /sys/class/infiniband_verbs/uverbsN/ibdev names the device for every driver, soft-RoCE included
 * (rxe has no parent device, so its uverbs node sits under /sys/devices/virtual). PCI devices also
 * list theirs under /sys/class/infiniband/<dev>/device/infiniband_verbs/, used when the class
 * directory is missing. Paths are parameters so tests run against a fake tree.
 */
import { access, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RdmaCharDevices } from './mapping.js';

export interface UverbsPaths {
  /** /sys/class/infiniband_verbs */
  readonly infinibandVerbs: string;
  /** /sys/class/infiniband */
  readonly infiniband: string;
  /** /dev/infiniband, where rdma_cm is looked for */
  readonly devInfiniband: string;
}

export const DEFAULT_UVERBS_PATHS: UverbsPaths = {
  infinibandVerbs: '/sys/class/infiniband_verbs',
  infiniband: '/sys/class/infiniband',
  devInfiniband: '/dev/infiniband',
};

async function listDir(path: string): Promise<string[]> {
  try {
    return await readdir(path);
  } catch {
    return [];
  }
}

async function readText(path: string): Promise<string | null> {
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch {
    return null;
  }
}

const UVERBS = /^uverbs\d+$/;

/** Looks up the uverbs node of each named device; devices without one are absent from the map. */
export async function readRdmaCharDevices(
  deviceNames: readonly string[],
  paths: UverbsPaths = DEFAULT_UVERBS_PATHS,
): Promise<RdmaCharDevices> {
  const wanted = new Set(deviceNames);
  const uverbs = new Map<string, string>();
  for (const node of (await listDir(paths.infinibandVerbs)).filter((n) => UVERBS.test(n)).sort()) {
    const ibdev = await readText(join(paths.infinibandVerbs, node, 'ibdev'));
    if (ibdev !== null && wanted.has(ibdev) && !uverbs.has(ibdev)) uverbs.set(ibdev, node);
  }
  for (const name of wanted) {
    if (uverbs.has(name)) continue;
    const dir = join(paths.infiniband, name, 'device', 'infiniband_verbs');
    for (const node of (await listDir(dir)).filter((n) => UVERBS.test(n)).sort()) {
      // A parent device with several RDMA devices lists all their uverbs nodes: match by ibdev.
      const ibdev = await readText(join(dir, node, 'ibdev'));
      if (ibdev === null || ibdev === name) {
        uverbs.set(name, node);
        break;
      }
    }
  }
  let rdmaCm: boolean;
  try {
    await access(join(paths.devInfiniband, 'rdma_cm'));
    rdmaCm = true;
  } catch {
    rdmaCm = false;
  }
  return { uverbs, rdmaCm };
}
