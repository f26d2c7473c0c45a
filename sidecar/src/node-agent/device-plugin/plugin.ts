/**
 * The device plugin as the node agent runs it: every inventory scan is turned into the node's RDMA
 * character devices (sysfs), mapped, and handed to the server. The server starts with the first
 * scan, so no Allocate is answered before the node's devices are known.
 */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { InventoryDevice } from '../inventory.js';
import { nodeRdmaDevices } from './mapping.js';
import { createDevicePluginMetrics, type DevicePluginMetrics } from './metrics.js';
import { DevicePluginServer } from './server.js';
import { DEFAULT_UVERBS_PATHS, readRdmaCharDevices, type UverbsPaths } from './uverbs.js';

export interface RdmaDevicePluginOptions {
  readonly resourceName: string;
  readonly pluginDir: string;
  readonly slots: number;
  readonly log: Logger;
  /** The node agent's registry; the plugin's counters are added to it. */
  readonly registry?: Registry;
  readonly socketName?: string;
  readonly uverbsPaths?: UverbsPaths;
  readonly recheckIntervalMs?: number;
}

export class RdmaDevicePlugin {
  private server: DevicePluginServer | null = null;
  private stopped = false;
  private readonly metrics: DevicePluginMetrics | undefined;

  constructor(private readonly options: RdmaDevicePluginOptions) {
    this.metrics = options.registry ? createDevicePluginMetrics(options.registry) : undefined;
  }

  /** The running server (null before the first scan); tests look at its socket. */
  get current(): DevicePluginServer | null {
    return this.server;
  }

  /** Takes one scan's devices; starts serving on the first. */
  async update(devices: readonly InventoryDevice[]): Promise<void> {
    const { log } = this.options;
    const chars = await readRdmaCharDevices(
      devices.map((d) => d.name),
      this.options.uverbsPaths ?? DEFAULT_UVERBS_PATHS,
    );
    const node = nodeRdmaDevices(devices, chars);
    if (node.withoutUverbs.length > 0) {
      log.warn({ devices: node.withoutUverbs }, 'device plugin: RoCE devices without a uverbs node left out');
    }
    if (this.stopped) return;
    if (this.server === null) {
      this.server = new DevicePluginServer(
        {
          resourceName: this.options.resourceName,
          pluginDir: this.options.pluginDir,
          socketName: this.options.socketName,
          slots: this.options.slots,
          log,
          metrics: this.metrics,
          recheckIntervalMs: this.options.recheckIntervalMs,
        },
        node,
      );
      log.info(
        { resource: this.options.resourceName, ibDevices: node.ibDevices, charDevices: node.charDevices },
        node.ibDevices.length > 0
          ? 'device plugin starting'
          : 'device plugin starting without RDMA devices (TCP fallback)',
      );
      await this.server.start();
    } else if (this.server.setNode(node)) {
      log.info(
        { ibDevices: node.ibDevices, charDevices: node.charDevices },
        'device plugin: RDMA devices changed',
      );
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.server?.stop();
  }
}
