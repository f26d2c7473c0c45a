import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createNodeAgentMetrics, scanOnce, startLoop } from './agent.js';
import { parseNodeAgentArgs } from './index.js';
import { buildSmcNode, type SmcNodeObject } from './mapping.js';
import { NativeInventorySource, type VerbsContext, type VerbsQueryApi } from './native-source.js';
import {
  SmcNodeReadSchema,
  StoreError,
  publishSmcNode,
  type SmcNodeRead,
  type SmcNodeStore,
} from './publisher.js';
import type { NodeInventory } from './inventory.js';
import { FakeRdmaSource, FakeVlanSource, rxeInventory } from './testing.js';

/** An in-memory API server for one resource: resourceVersions, conflicts, status subresource. */
class MemoryStore implements SmcNodeStore {
  objects = new Map<string, SmcNodeRead>();
  calls: string[] = [];
  private rv = 1;
  /** Number of upcoming writes to fail with 409 (as if another writer got there first). */
  conflicts = 0;

  get(name: string): Promise<SmcNodeRead | null> {
    this.calls.push('get');
    const o = this.objects.get(name);
    return Promise.resolve(o ? structuredClone(o) : null);
  }

  create(obj: SmcNodeObject): Promise<SmcNodeRead> {
    this.calls.push('create');
    if (this.objects.has(obj.metadata.name)) return Promise.reject(new StoreError(409, 'exists'));
    // Status is a subresource: a create drops it.
    return Promise.resolve(this.store({ ...obj, status: undefined }));
  }

  replace(obj: SmcNodeObject): Promise<SmcNodeRead> {
    this.calls.push('replace');
    const live = this.check(obj);
    return Promise.resolve(this.store({ ...obj, status: live.status ?? undefined }));
  }

  replaceStatus(obj: SmcNodeObject): Promise<SmcNodeRead> {
    this.calls.push('replaceStatus');
    const live = this.check(obj);
    return Promise.resolve(this.store({ ...live, status: obj.status }));
  }

  private check(obj: SmcNodeObject): SmcNodeRead {
    const live = this.objects.get(obj.metadata.name);
    if (!live) throw new StoreError(404, 'not found');
    if (this.conflicts > 0) {
      this.conflicts--;
      this.rv++;
      throw new StoreError(409, 'conflict');
    }
    if (obj.metadata.resourceVersion !== live.metadata.resourceVersion) throw new StoreError(409, 'stale');
    return live;
  }

  private store(obj: unknown): SmcNodeRead {
    const parsed = SmcNodeReadSchema.parse(JSON.parse(JSON.stringify(obj)));
    parsed.metadata.resourceVersion = String(++this.rv);
    this.objects.set(parsed.metadata.name, parsed);
    return structuredClone(parsed);
  }
}

const T0 = new Date('2025-01-01T00:00:00Z');
const silent = pino({ level: 'silent' });

describe('publishSmcNode', () => {
  it('creates, then writes the status; the second identical publish writes nothing', async () => {
    const store = new MemoryStore();
    const first = await publishSmcNode(store, buildSmcNode('node-a', rxeInventory(), T0));
    expect(first.result).toBe('created');
    expect(first.writes).toEqual(['create', 'status']);
    expect(store.objects.get('node-a')?.status?.devices?.[0]?.name).toBe('rxe0');

    store.calls = [];
    const again = await publishSmcNode(
      store,
      buildSmcNode('node-a', rxeInventory(), new Date('2025-01-01T01:00:00Z')),
    );
    expect(again.result).toBe('unchanged');
    expect(again.writes).toEqual([]);
    expect(store.calls).toEqual(['get']);
    expect(store.objects.get('node-a')?.status?.observedTime).toBe(T0.toISOString());
  });

  it('a node without devices still gets a status on create', async () => {
    const store = new MemoryStore();
    const out = await publishSmcNode(store, buildSmcNode('cpu-only', { devices: [], vlans: [] }, T0));
    expect(out.writes).toEqual(['create', 'status']);
    expect(store.objects.get('cpu-only')?.status).toEqual({
      observedTime: T0.toISOString(),
      deviceCount: 0,
      devices: [],
      vlanNetdevs: [],
    });
    expect(
      (await publishSmcNode(store, buildSmcNode('cpu-only', { devices: [], vlans: [] }, T0))).result,
    ).toBe('unchanged');
  });

  it('updates only the status when the content changed', async () => {
    const store = new MemoryStore();
    await publishSmcNode(store, buildSmcNode('node-a', rxeInventory(), T0));
    store.calls = [];
    const out = await publishSmcNode(store, buildSmcNode('node-a', { ...rxeInventory(), vlans: [] }, T0));
    expect(out.result).toBe('updated');
    expect(out.writes).toEqual(['status']);
    expect(store.calls).toEqual(['get', 'replaceStatus']);
    expect(store.objects.get('node-a')?.status?.vlanNetdevs).toEqual([]);
  });

  it('restores its labels without dropping others', async () => {
    const store = new MemoryStore();
    await publishSmcNode(store, buildSmcNode('node-a', rxeInventory(), T0));
    const live = store.objects.get('node-a');
    if (!live) throw new Error('missing');
    live.metadata.labels = { team: 'net' };
    const out = await publishSmcNode(store, buildSmcNode('node-a', rxeInventory(), T0));
    expect(out.writes).toEqual(['labels']);
    expect(store.objects.get('node-a')?.metadata.labels).toEqual({
      team: 'net',
      'app.kubernetes.io/managed-by': 'smc-node-agent',
      'smc.dev/node': 'node-a',
    });
  });

  it('retries after a conflict, and gives up after maxAttempts', async () => {
    const store = new MemoryStore();
    await publishSmcNode(store, buildSmcNode('node-a', rxeInventory(), T0));
    store.conflicts = 1;
    const out = await publishSmcNode(store, buildSmcNode('node-a', { devices: [], vlans: [] }, T0));
    expect(out.result).toBe('updated');
    expect(store.objects.get('node-a')?.status?.deviceCount).toBe(0);

    store.conflicts = 10;
    await expect(publishSmcNode(store, buildSmcNode('node-a', rxeInventory(), T0), 3)).rejects.toMatchObject({
      code: 409,
    });
  });

  it('does not retry other errors', async () => {
    const store = new MemoryStore();
    store.get = () => Promise.reject(new StoreError(403, 'forbidden'));
    await expect(publishSmcNode(store, buildSmcNode('node-a', rxeInventory(), T0))).rejects.toMatchObject({
      code: 403,
    });
  });
});

describe('scan loop', () => {
  it('scanOnce publishes and counts', async () => {
    const store = new MemoryStore();
    const metrics = createNodeAgentMetrics();
    const deps = {
      nodeName: 'node-b',
      rdma: new FakeRdmaSource(rxeInventory().devices),
      vlans: new FakeVlanSource([...rxeInventory().vlans]),
      store,
      log: silent,
      metrics,
      now: () => T0,
    };
    expect((await scanOnce(deps)).result).toBe('created');
    expect((await scanOnce(deps)).result).toBe('unchanged');
    deps.rdma.devices = [];
    expect((await scanOnce(deps)).result).toBe('updated');
    const text = await metrics.registry.metrics();
    expect(text).toContain('smc_node_agent_scans_total{result="ok"} 3');
    expect(text).toContain('smc_node_agent_smcnode_writes_total{kind="status"} 2');
    expect(text).toContain('smc_node_agent_rdma_devices 0');
    // The series that did not happen exist too, at 0 (the dashboard's error and write panels).
    expect(text).toContain('smc_node_agent_scans_total{result="error"} 0');
    expect(text).toContain('smc_node_agent_smcnode_writes_total{kind="labels"} 0');
  });

  it('scanOnce hands each inventory to onInventory, also when publishing fails', async () => {
    const store = new MemoryStore();
    store.get = () => Promise.reject(new StoreError(503, 'apiserver down'));
    const seen: string[][] = [];
    const deps = {
      nodeName: 'node-d',
      rdma: new FakeRdmaSource(rxeInventory().devices),
      vlans: new FakeVlanSource([]),
      store,
      log: silent,
      metrics: createNodeAgentMetrics(),
      onInventory: (inventory: NodeInventory) => {
        seen.push(inventory.devices.map((d) => d.name));
        return Promise.resolve();
      },
    };
    await expect(scanOnce(deps)).rejects.toThrow(/apiserver down/);
    expect(seen).toEqual([['rxe0']]);
    deps.onInventory = () => Promise.reject(new Error('device plugin broke'));
    await expect(scanOnce(deps)).rejects.toThrow(/apiserver down/);
  });

  it('the loop survives a failing scan and stops on request', async () => {
    const store = new MemoryStore();
    const rdma = new FakeRdmaSource(rxeInventory().devices);
    let fail = true;
    rdma.listDevices = () => {
      rdma.calls++;
      if (fail) {
        fail = false;
        return Promise.reject(new Error('sysfs went away'));
      }
      return Promise.resolve(rxeInventory().devices.map((d) => ({ ...d })));
    };
    const loop = startLoop(
      {
        nodeName: 'node-c',
        rdma,
        vlans: new FakeVlanSource([]),
        store,
        log: silent,
        metrics: createNodeAgentMetrics(),
      },
      10,
    );
    for (let i = 0; i < 200 && !loop.ready(); i++) await new Promise((r) => setTimeout(r, 5));
    loop.stop();
    await loop.done;
    expect(loop.ready()).toBe(true);
    expect(rdma.calls).toBeGreaterThanOrEqual(2);
    expect(store.objects.get('node-c')?.status?.deviceCount).toBe(1);
  });
});

describe('NativeInventorySource', () => {
  it('maps the addon queries and closes every context', async () => {
    let closed = 0;
    const ctx: VerbsContext = {
      queryDevice: () => ({ physPortCnt: 1 }),
      queryPort: (port) => ({ port: port ?? 1, state: 'ACTIVE', activeMtu: 1024, linkLayer: 'Ethernet' }),
      queryGidTable: () => [
        { index: 0, gid: 'fe80::5054:ff:fe12:3456', type: 'RoCEv2', netdev: 'eth0' },
        { index: 1, gid: '::ffff:10.77.0.1', type: 'RoCEv2', netdev: 'eth0' },
        { index: 2, gid: 'fe80::2', type: 'unknown', netdev: null },
      ],
      queryPkeyTable: () => [0xffff],
      close: () => {
        closed++;
      },
    };
    const api: VerbsQueryApi = { listDevices: () => [{ name: 'rxe0' }], openContext: () => ctx };
    const devices = await new NativeInventorySource(api).listDevices();
    expect(closed).toBe(1);
    expect(devices).toEqual([
      {
        name: 'rxe0',
        pciAddress: null,
        ports: [
          {
            port: 1,
            state: 'ACTIVE',
            linkLayer: 'Ethernet',
            activeMtu: 1024,
            netdev: 'eth0',
            gids: [
              { index: 0, gid: 'fe80::5054:ff:fe12:3456', type: 'RoCEv2', netdev: 'eth0' },
              { index: 1, gid: '::ffff:10.77.0.1', type: 'RoCEv2', netdev: 'eth0' },
              { index: 2, gid: 'fe80::2', type: 'unknown', netdev: null },
            ],
            pkeys: [0xffff],
          },
        ],
      },
    ]);
    // The same mapping as the sysfs source produces for this device.
    const fromNative = buildSmcNode('n', { devices, vlans: [] }, T0).status;
    const fromFake = buildSmcNode(
      'n',
      {
        devices: rxeInventory().devices.map((d) => ({
          ...d,
          ports: d.ports.map((p) => ({ ...p, gids: p.gids.slice(0, 2) })),
        })),
        vlans: [],
      },
      T0,
    ).status;
    expect(fromNative).toEqual(fromFake);
  });
});

describe('parseNodeAgentArgs', () => {
  it('reads flags and NODE_NAME, with defaults', () => {
    expect(parseNodeAgentArgs([], { NODE_NAME: 'worker-1' })).toEqual({
      logLevel: 'info',
      rescanIntervalSeconds: 60,
      inventorySource: 'sysfs',
      metricsPort: 15090,
      healthPort: 15021,
      nodeName: 'worker-1',
      devicePlugin: false,
      resourceName: 'smc.dev/rdma',
      devicePluginDir: '/var/lib/kubelet/device-plugins/',
      resourceSlots: 1000,
    });
    expect(
      parseNodeAgentArgs(['--rescan-interval=10', '--inventory-source', 'native', '--log-level=debug'], {
        NODE_NAME: 'w',
      }),
    ).toMatchObject({ rescanIntervalSeconds: 10, inventorySource: 'native', logLevel: 'debug' });
  });

  it('rejects bad input', () => {
    expect(() => parseNodeAgentArgs([], {})).toThrow();
    expect(() => parseNodeAgentArgs(['--bogus=1'], { NODE_NAME: 'w' })).toThrow(/unknown flag --bogus/);
    expect(() => parseNodeAgentArgs(['--rescan-interval=1'], { NODE_NAME: 'w' })).toThrow();
    expect(() => parseNodeAgentArgs(['--inventory-source=magic'], { NODE_NAME: 'w' })).toThrow();
    expect(() => parseNodeAgentArgs([], { NODE_NAME: 'Bad_Name' })).toThrow();
    expect(() => parseNodeAgentArgs(['--health-port'], { NODE_NAME: 'w' })).toThrow(/needs a value/);
  });

  it('reads the device-plugin flags; --device-plugin alone switches it on', () => {
    const env = { NODE_NAME: 'w' };
    expect(parseNodeAgentArgs(['--device-plugin'], env)).toMatchObject({
      devicePlugin: true,
      resourceName: 'smc.dev/rdma',
      devicePluginDir: '/var/lib/kubelet/device-plugins/',
      resourceSlots: 1000,
    });
    expect(
      parseNodeAgentArgs(
        [
          '--device-plugin',
          '--resource-name',
          'example.com/roce',
          '--resource-slots=50',
          '--device-plugin-dir=/tmp/dp',
        ],
        env,
      ),
    ).toMatchObject({
      devicePlugin: true,
      resourceName: 'example.com/roce',
      resourceSlots: 50,
      devicePluginDir: '/tmp/dp',
    });
    expect(parseNodeAgentArgs(['--device-plugin=false', '--log-level=debug'], env)).toMatchObject({
      devicePlugin: false,
      logLevel: 'debug',
    });
  });

  it('rejects bad device-plugin flags', () => {
    const env = { NODE_NAME: 'w' };
    expect(() => parseNodeAgentArgs(['--device-plugin=maybe'], env)).toThrow();
    expect(() => parseNodeAgentArgs(['--resource-name=rdma'], env)).toThrow();
    expect(() => parseNodeAgentArgs(['--resource-name=kubernetes.io/rdma'], env)).toThrow();
    expect(() => parseNodeAgentArgs(['--resource-slots=0'], env)).toThrow();
    expect(() => parseNodeAgentArgs(['--resource-slots=10001'], env)).toThrow();
    expect(() => parseNodeAgentArgs(['--device-plugin-dir=relative/dir'], env)).toThrow();
    expect(() => parseNodeAgentArgs([`--device-plugin-dir=/${'d'.repeat(100)}`], env)).toThrow();
  });
});

describe('main', () => {
  it('--help prints the usage with every flag and returns 0, without starting', async () => {
    const { main } = await import('./main.js');
    const { NODE_AGENT_FLAGS } = await import('./index.js');
    const out: string[] = [];
    const orig = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string) => {
      out.push(chunk);
      return true;
    }) as typeof process.stdout.write;
    try {
      // No NODE_NAME: --help needs none, and nothing else is checked.
      expect(await main(['--help'], {})).toBe(0);
      expect(await main(['--rescan-interval=1', '-h'], {})).toBe(0);
    } finally {
      process.stdout.write = orig;
    }
    expect(out.join('')).toMatch(/^usage: smc node-agent \[flags\]/);
    for (const flag of Object.keys(NODE_AGENT_FLAGS)) expect(out.join('')).toContain(`--${flag}`);
    expect(out.join('')).toContain('--device-plugin[=BOOL]');
  });

  it('bad arguments print a message and return 2', async () => {
    const { main } = await import('./main.js');
    const writes: string[] = [];
    const orig = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string) => {
      writes.push(chunk);
      return true;
    }) as typeof process.stderr.write;
    try {
      expect(await main(['--rescan-interval=1'], { NODE_NAME: 'n' })).toBe(2);
      expect(await main([], {})).toBe(2);
      expect(await main(['--nope'], { NODE_NAME: 'n' })).toBe(2);
      expect(await main(['--device-plugin', 'false'], { NODE_NAME: 'n' })).toBe(2);
    } finally {
      process.stderr.write = orig;
    }
    expect(writes.join('')).toMatch(/^smc node-agent: --rescan-interval: /m);
    expect(writes.join('')).toMatch(
      /^smc node-agent: NODE_NAME: required: set NODE_NAME from spec.nodeName, or --node-name\n/m,
    );
    expect(writes.join('')).toMatch(
      /^smc node-agent: unknown flag --nope\nRun "smc node-agent --help" for usage\.$/m,
    );
  });
});
