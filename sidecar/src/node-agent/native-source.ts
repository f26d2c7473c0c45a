/**
 * RDMA inventory through the verbs addon (native/): ibv_get_device_list, then per device
 * ibv_query_device / ibv_query_port / the GID and PKey tables. Needs read-write access to
 * /dev/infiniband/uverbsN (a device-plugin resource or a privileged pod); the sysfs source does not.
 *
 * Written against the structural {@link VerbsQueryApi} so it is testable with a fake and does not
 * load the addon until it is used.
 */
import type { InventoryDevice, InventoryGidType, InventoryPort, RdmaInventorySource } from './inventory.js';

export interface VerbsDeviceInfo {
  readonly name: string;
}

export interface VerbsPortAttr {
  readonly port: number;
  readonly state: string;
  readonly activeMtu: number;
  readonly linkLayer: string;
}

export interface VerbsGidEntry {
  readonly index: number;
  readonly gid: string;
  readonly type: string;
  readonly netdev: string | null;
}

export interface VerbsContext {
  queryDevice(): { readonly physPortCnt: number };
  queryPort(port?: number): VerbsPortAttr;
  queryGidTable(port?: number): VerbsGidEntry[];
  queryPkeyTable(port?: number): number[];
  close(): void;
}

/** The part of the addon's API the node agent uses (native/index.ts). */
export interface VerbsQueryApi {
  listDevices(): VerbsDeviceInfo[];
  openContext(name: string): VerbsContext;
}

function gidType(t: string): InventoryGidType {
  return t === 'IB' || t === 'RoCEv1' || t === 'RoCEv2' ? t : 'unknown';
}

export class NativeInventorySource implements RdmaInventorySource {
  readonly kind = 'native';

  /**
   * @param api the addon's query API
   * @param pciAddressOf optional lookup of a device's PCI address (e.g. from sysfs), which verbs
   *   does not report
   */
  constructor(
    private readonly api: VerbsQueryApi,
    private readonly pciAddressOf: (device: string) => Promise<string | null> = () => Promise.resolve(null),
  ) {}

  async listDevices(): Promise<InventoryDevice[]> {
    const devices: InventoryDevice[] = [];
    for (const info of this.api.listDevices()) {
      const ctx = this.api.openContext(info.name);
      try {
        const ports: InventoryPort[] = [];
        const count = ctx.queryDevice().physPortCnt;
        for (let port = 1; port <= count; port++) {
          const attr = ctx.queryPort(port);
          const gids = ctx.queryGidTable(port).map((g) => ({
            index: g.index,
            gid: g.gid,
            type: gidType(g.type),
            netdev: g.netdev,
          }));
          ports.push({
            port,
            state: attr.state,
            linkLayer: attr.linkLayer,
            activeMtu: attr.activeMtu,
            netdev: gids.find((g) => g.index === 0)?.netdev ?? null,
            gids,
            pkeys: ctx.queryPkeyTable(port),
          });
        }
        devices.push({ name: info.name, pciAddress: await this.pciAddressOf(info.name), ports });
      } finally {
        ctx.close();
      }
    }
    return devices;
  }
}
