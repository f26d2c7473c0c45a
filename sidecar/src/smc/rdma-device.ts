import { readFileSync } from 'node:fs';
import type { CompletionChannel, Context, GidEntry, Mtu, PortAttr } from '../../../native/index.js';
import type { SidecarConfig } from '../config/schema.js';
import type { VerbsModule } from '../native-loader.js';
import { parseIp } from '../net/ip.js';
import { FallbackReason } from '../policy/reasons.js';
import { IB_MTU } from '../protocol/clc/constants.js';
import { candidateDevices, selectGidByAddress, type DeviceGids } from './gid-select.js';
import { LinkSetupError } from './link-errors.js';

/**
 * The opened RoCE device and the per-device objects every link shares. No
 * protection domain: each link group allocates its own (link-group.ts).
 */
export interface RdmaDevice {
  readonly verbs: VerbsModule;
  readonly context: Context;
  readonly channel: CompletionChannel;
  readonly ibPort: number;
  readonly gidIndex: number;
  /** Our GID, 16 bytes, and as text for modifyToRtr. */
  readonly gid: Buffer;
  readonly gidText: string;
  readonly mac: Buffer;
  readonly mtu: Mtu;
  /** The same MTU as enum ib_mtu, for CLC. */
  readonly ibMtu: number;
  close(): void;
}

/** MAC of a RoCE GID's network device, from sysfs. */
export function netdevMac(netdev: string | null): Buffer | null {
  if (netdev === null) return null;
  try {
    const text = readFileSync(`/sys/class/net/${netdev}/address`, 'utf8').trim();
    return /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(text) ? Buffer.from(text.replace(/:/g, ''), 'hex') : null;
  } catch {
    return null;
  }
}

/** Checks the port and GID entry the configuration names; pure, so the rules are testable. */
export function checkPortAndGid(
  port: PortAttr,
  gids: readonly GidEntry[],
  gidIndex: number,
): { gid: GidEntry } | { problem: string } {
  if (port.state !== 'ACTIVE') return { problem: `port ${port.port} is ${port.state}, not ACTIVE` };
  if (port.linkLayer !== 'Ethernet') return { problem: `port ${port.port} is ${port.linkLayer}, not RoCE` };
  const gid = gids.find((g) => g.index === gidIndex);
  if (gid === undefined) return { problem: `GID index ${gidIndex} is not populated` };
  if (gid.type !== 'RoCEv1' && gid.type !== 'RoCEv2') return { problem: `GID ${gidIndex} is ${gid.type}` };
  return { gid };
}

/**
 * The device and GID index to use. A fixed name without gidAddress is taken as configured;
 * otherwise the candidates (configured list or every device, within what a device plugin
 * mapped) are searched for the GID that carries gidAddress.
 */
export function resolveDevice(
  verbs: VerbsModule,
  rdma: SidecarConfig['rdma'],
): { readonly device: string; readonly gidIndex: number } {
  const fixed = rdma.device !== 'auto' && !rdma.device.includes(',');
  if (fixed && rdma.gidAddress === null && rdma.mappedDevices === null)
    return { device: rdma.device, gidIndex: rdma.gidIndex };
  let present: string[];
  try {
    present = verbs.listDevices().map((d) => d.name);
  } catch (err) {
    throw new LinkSetupError(FallbackReason.NoRdmaDevice, 'cannot list RDMA devices', { cause: err });
  }
  const candidates = candidateDevices(rdma.device, rdma.mappedDevices, present);
  if (candidates.length === 0) {
    const why =
      rdma.mappedDevices !== null && rdma.mappedDevices.length === 0
        ? 'the node has no RDMA device (none mapped into the pod)'
        : `no RDMA device among ${rdma.device} (present: ${present.join(', ') || 'none'})`;
    throw new LinkSetupError(FallbackReason.NoRdmaDevice, why);
  }
  const [first] = candidates;
  if (rdma.gidAddress === null) return { device: first ?? rdma.device, gidIndex: rdma.gidIndex };
  const tables: DeviceGids[] = [];
  for (const name of candidates) {
    try {
      const ctx = verbs.openDevice(name);
      try {
        tables.push({ device: name, port: rdma.ibPort, gids: ctx.queryGidTable(rdma.ibPort) });
      } finally {
        ctx.close();
      }
    } catch {
      // A device this container may not open (no uverbs node) is simply not a candidate.
    }
  }
  const choice = selectGidByAddress(tables, rdma.gidAddress);
  if ('problem' in choice) throw new LinkSetupError(FallbackReason.NoRdmaDevice, choice.problem);
  return choice;
}

/** Opens the configured device; throws LinkSetupError(no-rdma-device) with the reason when unusable. */
export function openRdmaDevice(
  verbs: VerbsModule,
  configured: SidecarConfig['rdma'],
  macOf: (netdev: string | null) => Buffer | null = netdevMac,
): RdmaDevice {
  const rdma = { ...configured, ...resolveDevice(verbs, configured) };
  let context: Context;
  try {
    context = verbs.openDevice(rdma.device);
  } catch (err) {
    throw new LinkSetupError(FallbackReason.NoRdmaDevice, `cannot open ${rdma.device}`, { cause: err });
  }
  try {
    const port = context.queryPort(rdma.ibPort);
    const checked = checkPortAndGid(port, context.queryGidTable(rdma.ibPort), rdma.gidIndex);
    if ('problem' in checked) throw new LinkSetupError(FallbackReason.NoRdmaDevice, checked.problem);
    const mac = macOf(checked.gid.netdev);
    if (mac === null) {
      throw new LinkSetupError(
        FallbackReason.NoRdmaDevice,
        `no MAC for netdev ${checked.gid.netdev ?? '(none)'}`,
      );
    }
    const channel = context.createCompletionChannel();
    channel.unref();
    return {
      verbs,
      context,
      channel,
      ibPort: rdma.ibPort,
      gidIndex: rdma.gidIndex,
      gid: parseIp(checked.gid.gid),
      gidText: checked.gid.gid,
      mac,
      mtu: port.activeMtu,
      ibMtu: IB_MTU[port.activeMtu],
      close() {
        // Each step on its own: a leaked child makes its parent's close throw EBUSY, the rest still go.
        const errors: unknown[] = [];
        for (const step of [() => channel.close(), () => context.close()]) {
          try {
            step();
          } catch (err) {
            errors.push(err);
          }
        }
        if (errors.length > 0)
          throw new AggregateError(errors, 'closing the RDMA device left resources open');
      },
    };
  } catch (err) {
    context.close();
    if (err instanceof LinkSetupError) throw err;
    throw new LinkSetupError(FallbackReason.NoRdmaDevice, `cannot use ${rdma.device}`, { cause: err });
  }
}
