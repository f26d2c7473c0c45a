import { describe, expect, it } from 'vitest';
import type { InventoryDevice } from '../inventory.js';
import { rxeInventory } from '../testing.js';
import {
  allocate,
  containerAllocation,
  nodeRdmaDevices,
  preferredAllocation,
  type RdmaCharDevices,
  sameNodeRdmaDevices,
  slotDevices,
  UnknownDeviceError,
} from './mapping.js';

const rxe0 = rxeInventory().devices;

function device(name: string, linkLayer: string): InventoryDevice {
  return { name, ports: [{ port: 1, state: '4: ACTIVE', linkLayer, gids: [], pkeys: [] }] };
}

function chars(uverbs: Record<string, string>, rdmaCm = false): RdmaCharDevices {
  return { uverbs: new Map(Object.entries(uverbs)), rdmaCm };
}

describe('nodeRdmaDevices', () => {
  it('maps the RoCE devices with a uverbs node, sorted, then rdma_cm', () => {
    const devices = [
      device('rxe1', 'Ethernet'),
      ...rxe0,
      device('mlx5_0', 'InfiniBand'),
      device('mlx5_1', 'Ethernet'),
    ];
    const node = nodeRdmaDevices(
      devices,
      chars({ rxe0: 'uverbs2', rxe1: 'uverbs0', mlx5_0: 'uverbs1' }, true),
    );
    expect(node).toEqual({
      ibDevices: ['rxe0', 'rxe1'],
      charDevices: ['/dev/infiniband/uverbs2', '/dev/infiniband/uverbs0', '/dev/infiniband/rdma_cm'],
      withoutUverbs: ['mlx5_1'],
    });
  });

  it('maps nothing, not even rdma_cm, on a node without RoCE devices', () => {
    const node = nodeRdmaDevices([device('mlx5_0', 'InfiniBand')], chars({ mlx5_0: 'uverbs0' }, true));
    expect(node).toEqual({ ibDevices: [], charDevices: [], withoutUverbs: [] });
    expect(nodeRdmaDevices([], chars({}, true)).charDevices).toEqual([]);
  });

  it('compares by devices and device nodes', () => {
    const a = nodeRdmaDevices(rxe0, chars({ rxe0: 'uverbs0' }));
    expect(sameNodeRdmaDevices(a, nodeRdmaDevices(rxe0, chars({ rxe0: 'uverbs0' })))).toBe(true);
    expect(sameNodeRdmaDevices(a, nodeRdmaDevices(rxe0, chars({ rxe0: 'uverbs1' })))).toBe(false);
    expect(sameNodeRdmaDevices(a, nodeRdmaDevices(rxe0, chars({ rxe0: 'uverbs0' }, true)))).toBe(false);
    expect(sameNodeRdmaDevices(a, nodeRdmaDevices([], chars({})))).toBe(false);
  });
});

describe('slotDevices', () => {
  it('advertises the configured number of healthy slots', () => {
    expect(slotDevices(3)).toEqual([
      { ID: 'rdma-0', health: 'Healthy' },
      { ID: 'rdma-1', health: 'Healthy' },
      { ID: 'rdma-2', health: 'Healthy' },
    ]);
    expect(slotDevices(1000)).toHaveLength(1000);
    expect(new Set(slotDevices(1000).map((d) => d.ID)).size).toBe(1000);
  });
});

describe('allocate', () => {
  const node = nodeRdmaDevices(rxe0, chars({ rxe0: 'uverbs0' }, true));

  it('gives every container all device nodes read-write and SMC_RDMA_DEVICES', () => {
    const response = allocate(
      { container_requests: [{ devices_ids: ['rdma-0'] }, { devices_ids: ['rdma-3', 'rdma-4'] }] },
      5,
      node,
    );
    const expected = {
      envs: { SMC_RDMA_DEVICES: 'rxe0' },
      mounts: [],
      devices: [
        {
          container_path: '/dev/infiniband/uverbs0',
          host_path: '/dev/infiniband/uverbs0',
          permissions: 'rw',
        },
        {
          container_path: '/dev/infiniband/rdma_cm',
          host_path: '/dev/infiniband/rdma_cm',
          permissions: 'rw',
        },
      ],
      annotations: {},
      cdi_devices: [],
    };
    expect(response).toEqual({ container_responses: [expected, expected] });
  });

  it('lists several devices comma-separated', () => {
    const two = nodeRdmaDevices(
      [...rxe0, device('mlx5_0', 'Ethernet')],
      chars({ rxe0: 'uverbs1', mlx5_0: 'uverbs0' }),
    );
    expect(containerAllocation(two).envs).toEqual({ SMC_RDMA_DEVICES: 'mlx5_0,rxe0' });
    expect(containerAllocation(two).devices.map((d) => d.host_path)).toEqual([
      '/dev/infiniband/uverbs0',
      '/dev/infiniband/uverbs1',
    ]);
  });

  it('maps nothing and sets an empty SMC_RDMA_DEVICES without RDMA devices', () => {
    const none = nodeRdmaDevices([], chars({}, true));
    const response = allocate({ container_requests: [{ devices_ids: ['rdma-1'] }] }, 2, none);
    expect(response.container_responses[0]?.devices).toEqual([]);
    expect(response.container_responses[0]?.envs).toEqual({ SMC_RDMA_DEVICES: '' });
  });

  it('refuses IDs it never advertised', () => {
    const request = { container_requests: [{ devices_ids: ['rdma-1', 'rdma-5', 'gpu-0'] }] };
    expect(() => allocate(request, 5, node)).toThrow(UnknownDeviceError);
    try {
      allocate(request, 5, node);
    } catch (err) {
      expect(err instanceof UnknownDeviceError && err.ids).toEqual(['rdma-5', 'gpu-0']);
    }
  });
});

describe('preferredAllocation', () => {
  it('takes the required slots, then the first available, up to the size', () => {
    expect(
      preferredAllocation({
        container_requests: [
          {
            available_deviceIDs: ['rdma-0', 'rdma-1', 'rdma-2', 'rdma-3'],
            must_include_deviceIDs: ['rdma-2'],
            allocation_size: 2,
          },
          { available_deviceIDs: ['rdma-5'], must_include_deviceIDs: [], allocation_size: 1 },
        ],
      }),
    ).toEqual({ container_responses: [{ deviceIDs: ['rdma-2', 'rdma-0'] }, { deviceIDs: ['rdma-5'] }] });
  });
});
