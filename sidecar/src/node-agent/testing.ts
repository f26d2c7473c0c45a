/** Small fakes for the node agent's tests (unit and apiserver). */
import type {
  InventoryDevice,
  NodeInventory,
  RdmaInventorySource,
  VlanNetdev,
  VlanSource,
} from './inventory.js';

export class FakeRdmaSource implements RdmaInventorySource {
  readonly kind = 'fake';
  calls = 0;
  devices: InventoryDevice[];
  constructor(devices: readonly InventoryDevice[]) {
    this.devices = [...devices];
  }
  listDevices(): Promise<InventoryDevice[]> {
    this.calls++;
    return Promise.resolve(structuredClone(this.devices));
  }
}

export class FakeVlanSource implements VlanSource {
  vlans: VlanNetdev[];
  constructor(vlans: readonly VlanNetdev[]) {
    this.vlans = [...vlans];
  }
  listVlans(): Promise<VlanNetdev[]> {
    return Promise.resolve(structuredClone(this.vlans));
  }
}

/** A soft-RoCE node: rxe0 on eth0 with an IPv6 link-local and an IPv4-mapped GID on eth0 and on VLAN 100. */
export function rxeInventory(): NodeInventory {
  return {
    devices: [
      {
        name: 'rxe0',
        pciAddress: null,
        ports: [
          {
            port: 1,
            state: '4: ACTIVE',
            linkLayer: 'Ethernet',
            activeMtu: 1024,
            gids: [
              { index: 0, gid: 'fe80:0000:0000:0000:5054:00ff:fe12:3456', type: 'RoCEv2', netdev: 'eth0' },
              { index: 1, gid: '0000:0000:0000:0000:0000:ffff:0a4d:0001', type: 'RoCEv2', netdev: 'eth0' },
              {
                index: 2,
                gid: '0000:0000:0000:0000:0000:ffff:0a64:0001',
                type: 'RoCEv2',
                netdev: 'eth0.100',
              },
              { index: 3, gid: '0000:0000:0000:0000:0000:0000:0000:0000', type: 'unknown', netdev: null },
            ],
            pkeys: [0xffff, 0x0000],
          },
        ],
      },
    ],
    vlans: [{ netdev: 'eth0.100', vlan: 100, parent: 'eth0' }],
  };
}
