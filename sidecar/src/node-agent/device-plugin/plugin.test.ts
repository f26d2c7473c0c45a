/**
 * The device plugin over real gRPC on unix sockets in a temp dir: a fake kubelet serves
 * Registration on kubelet.sock, and a grpc-js DevicePlugin client dials the socket named at
 * registration, as the kubelet does.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { status, type ServiceError } from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../log.js';
import { rxeInventory } from '../testing.js';
import { RdmaDevicePlugin } from './plugin.js';
import { DevicePluginTestClient, FakeKubelet } from './testing.js';

let root: string;
let pluginDir: string;
let registry: Registry;
const cleanups: (() => Promise<void> | void)[] = [];

async function put(path: string, content: string): Promise<void> {
  await mkdir(dirname(join(root, path)), { recursive: true });
  await writeFile(join(root, path), content);
}

function newPlugin(slots = 4): RdmaDevicePlugin {
  const plugin = new RdmaDevicePlugin({
    resourceName: 'smc.dev/rdma',
    pluginDir,
    slots,
    log: silentLogger(),
    registry,
    uverbsPaths: {
      infinibandVerbs: join(root, 'sys/class/infiniband_verbs'),
      infiniband: join(root, 'sys/class/infiniband'),
      devInfiniband: join(root, 'dev/infiniband'),
    },
    // Only the fallback for missed inotify events; the tests wait for outcomes, not for time.
    recheckIntervalMs: 200,
  });
  cleanups.push(() => plugin.stop());
  return plugin;
}

async function startKubelet(): Promise<FakeKubelet> {
  const kubelet = new FakeKubelet(pluginDir);
  await kubelet.start();
  cleanups.push(() => kubelet.stop());
  return kubelet;
}

function dial(endpoint: string): DevicePluginTestClient {
  const client = new DevicePluginTestClient(join(pluginDir, endpoint));
  cleanups.push(() => client.close());
  return client;
}

async function counter(name: string, labels: Record<string, string>): Promise<number> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  const values = (metric?.values ?? []) as { value: number; labels: Record<string, string | number> }[];
  return values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value ?? 0;
}

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'smc-dp-'));
  pluginDir = join(root, 'device-plugins');
  await mkdir(pluginDir);
  await put('sys/class/infiniband_verbs/uverbs0/ibdev', 'rxe0\n');
  await put('dev/infiniband/rdma_cm', '');
  registry = new Registry();
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await rm(root, { recursive: true, force: true });
});

describe('RdmaDevicePlugin over gRPC', () => {
  it('registers, lists the slots, allocates the device nodes, follows changes and re-registers after a kubelet restart', async () => {
    const kubelet = await startKubelet();
    const plugin = newPlugin();
    await plugin.update(rxeInventory().devices);

    const registration = await kubelet.registration(1);
    expect(registration).toEqual({
      version: 'v1beta1',
      endpoint: 'smc-rdma.sock',
      resource_name: 'smc.dev/rdma',
      options: { pre_start_required: false, get_preferred_allocation_available: false },
    });

    const client = dial(registration.endpoint);
    expect(await client.options()).toEqual({
      pre_start_required: false,
      get_preferred_allocation_available: false,
    });
    const watch = client.listAndWatch();
    const first = await watch.next();
    expect(first.devices.map((d) => [d.ID, d.health])).toEqual([
      ['rdma-0', 'Healthy'],
      ['rdma-1', 'Healthy'],
      ['rdma-2', 'Healthy'],
      ['rdma-3', 'Healthy'],
    ]);

    const allocated = await client.allocate({ container_requests: [{ devices_ids: ['rdma-2'] }] });
    expect(allocated.container_responses).toHaveLength(1);
    expect(allocated.container_responses[0]?.devices).toEqual([
      { container_path: '/dev/infiniband/uverbs0', host_path: '/dev/infiniband/uverbs0', permissions: 'rw' },
      { container_path: '/dev/infiniband/rdma_cm', host_path: '/dev/infiniband/rdma_cm', permissions: 'rw' },
    ]);
    expect(allocated.container_responses[0]?.envs).toEqual({ SMC_RDMA_DEVICES: 'rxe0' });
    expect(await counter('smc_node_agent_device_plugin_allocations_total', { devices: 'rdma' })).toBe(1);

    const refused = await client.allocate({ container_requests: [{ devices_ids: ['rdma-9'] }] }).then(
      () => null,
      (err: ServiceError) => err,
    );
    expect(refused?.code).toBe(status.INVALID_ARGUMENT);
    expect(await client.preStart({ devices_ids: ['rdma-0'] })).toEqual({});
    expect(
      await client.preferred({
        container_requests: [
          {
            available_deviceIDs: ['rdma-0', 'rdma-1'],
            must_include_deviceIDs: ['rdma-1'],
            allocation_size: 1,
          },
        ],
      }),
    ).toEqual({ container_responses: [{ deviceIDs: ['rdma-1'] }] });

    // The rescan finds no RDMA device any more: the list is sent again, Allocate maps nothing.
    await plugin.update([]);
    const second = await watch.next();
    expect(second.devices).toHaveLength(4);
    const fallback = await client.allocate({ container_requests: [{ devices_ids: ['rdma-0'] }] });
    expect(fallback.container_responses[0]?.devices).toEqual([]);
    expect(fallback.container_responses[0]?.envs).toEqual({ SMC_RDMA_DEVICES: '' });
    expect(await counter('smc_node_agent_device_plugin_allocations_total', { devices: 'none' })).toBe(1);
    await plugin.update(rxeInventory().devices);
    expect((await watch.next()).devices).toHaveLength(4);

    // Kubelet restart: the old one goes, the new one clears the dir and creates kubelet.sock anew.
    watch.cancel();
    client.close();
    await kubelet.stop();
    await rm(join(pluginDir, 'smc-rdma.sock'), { force: true });
    const restarted = await startKubelet();
    const again = await restarted.registration(1);
    expect(again.endpoint).toBe('smc-rdma.sock');
    expect(existsSync(join(pluginDir, 'smc-rdma.sock'))).toBe(true);
    await plugin.current?.registrations(2);
    const client2 = dial(again.endpoint);
    expect((await client2.listAndWatch().next()).devices).toHaveLength(4);
    const after = await client2.allocate({ container_requests: [{ devices_ids: ['rdma-3'] }] });
    expect(after.container_responses[0]?.envs).toEqual({ SMC_RDMA_DEVICES: 'rxe0' });
    expect(await counter('smc_node_agent_device_plugin_registrations_total', { result: 'ok' })).toBe(2);

    await plugin.stop();
    expect(existsSync(join(pluginDir, 'smc-rdma.sock'))).toBe(false);
  });

  it('registers again when only kubelet.sock is recreated', async () => {
    const kubelet = await startKubelet();
    const plugin = newPlugin();
    await plugin.update(rxeInventory().devices);
    await kubelet.registration(1);
    await kubelet.stop();
    const restarted = await startKubelet();
    expect((await restarted.registration(1)).resource_name).toBe('smc.dev/rdma');
    expect((await dial('smc-rdma.sock').listAndWatch().next()).devices).toHaveLength(4);
  });

  it('serves before the kubelet is there and registers once kubelet.sock appears', async () => {
    const plugin = newPlugin(2);
    await plugin.update([]);
    expect(existsSync(join(pluginDir, 'smc-rdma.sock'))).toBe(true);
    expect(plugin.current?.registered()).toBe(false);
    const kubelet = await startKubelet();
    await kubelet.registration(1);
    const allocated = await dial('smc-rdma.sock').allocate({
      container_requests: [{ devices_ids: ['rdma-1'] }],
    });
    expect(allocated.container_responses[0]).toMatchObject({ devices: [], envs: { SMC_RDMA_DEVICES: '' } });
  });

  it('retries a registration the kubelet refused', async () => {
    const kubelet = await startKubelet();
    kubelet.rejections.push({ code: status.UNKNOWN, details: 'resource already registered' });
    const plugin = newPlugin();
    await plugin.update(rxeInventory().devices);
    await kubelet.registration(1);
    await plugin.current?.registrations(1);
    expect(await counter('smc_node_agent_device_plugin_registrations_total', { result: 'error' })).toBe(1);
    expect(await counter('smc_node_agent_device_plugin_registrations_total', { result: 'ok' })).toBe(1);
  });

  it('replaces a stale socket left by an earlier run', async () => {
    await writeFile(join(pluginDir, 'smc-rdma.sock'), 'stale');
    const kubelet = await startKubelet();
    const plugin = newPlugin();
    await plugin.update(rxeInventory().devices);
    await kubelet.registration(1);
    expect(await dial('smc-rdma.sock').options()).toMatchObject({ pre_start_required: false });
  });
});
