/**
 * Serves the DevicePlugin service on our unix socket in the kubelet's device-plugin dir and keeps
 * it registered. A restarting kubelet removes the dir's sockets and creates kubelet.sock anew;
 * the kubelet's docs ask plugins to notice and serve + register again. The dir is watched
 * (inotify) and also re-checked every few seconds, since a watch can miss events or die with its
 * directory:
 *
 * - our socket gone (or replaced): serve again on a fresh socket, then register;
 * - kubelet.sock recreated, or never yet accepted our registration: register (failures back off).
 */
import { type FSWatcher, watch } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { KUBELET_SOCKET, loadDevicePluginApi } from './api.js';
import { SOCKET_NAME } from './defaults.js';
import type { NodeRdmaDevices } from './mapping.js';
import type { DevicePluginMetrics } from './metrics.js';
import { registerWithKubelet } from './registration.js';
import { DevicePluginService } from './service.js';

export interface DevicePluginServerConfig {
  readonly resourceName: string;
  readonly pluginDir: string;
  /** Our socket's file name in pluginDir. */
  readonly socketName?: string;
  readonly slots: number;
  readonly log: Logger;
  readonly metrics?: DevicePluginMetrics;
  /** Re-check of the dir besides inotify events, also the first registration retry delay. */
  readonly recheckIntervalMs?: number;
  /** Longest delay between failing registrations with the same kubelet. */
  readonly maxRetryMs?: number;
}

/**
 * A file's identity: inode numbers are reused after a delete, the change time with them is not.
 * A directory's change time moves with every entry, so it is known by its inode alone.
 */
async function identity(path: string, kind: 'file' | 'dir' = 'file'): Promise<string | null> {
  try {
    const s = await stat(path);
    return kind === 'dir' ? `${s.dev}:${s.ino}` : `${s.dev}:${s.ino}:${s.ctimeMs}`;
  } catch {
    return null;
  }
}

export class DevicePluginServer {
  readonly service: DevicePluginService;
  private readonly socketName: string;
  private readonly socketPath: string;
  private readonly kubeletPath: string;
  private readonly recheckMs: number;
  private readonly maxRetryMs: number;
  private server: Server | null = null;
  private served: string | null = null;
  private registeredWith: string | null = null;
  private kubeletEvent = false;
  private failures = 0;
  private failedWith: string | null = null;
  private nextAttempt = 0;
  private watcher: FSWatcher | null = null;
  private watchedDir: string | null = null;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  private stopped = false;
  private accepted = 0;
  private acceptedWaiters: { count: number; resolve: () => void }[] = [];

  constructor(
    private readonly config: DevicePluginServerConfig,
    node: NodeRdmaDevices,
  ) {
    this.socketName = config.socketName ?? SOCKET_NAME;
    this.socketPath = join(config.pluginDir, this.socketName);
    this.kubeletPath = join(config.pluginDir, KUBELET_SOCKET);
    this.recheckMs = config.recheckIntervalMs ?? 5_000;
    this.maxRetryMs = config.maxRetryMs ?? 60_000;
    this.service = new DevicePluginService(config.slots, node, config.log, config.metrics);
  }

  get socket(): string {
    return this.socketPath;
  }

  /** True while the kubelet behind the current kubelet.sock has accepted our registration. */
  registered(): boolean {
    return this.registeredWith !== null;
  }

  /** Resolves once the kubelet has accepted `count` registrations in all (restarts register again). */
  registrations(count: number): Promise<void> {
    if (this.accepted >= count) return Promise.resolve();
    return new Promise((resolve) => this.acceptedWaiters.push({ count, resolve }));
  }

  setNode(node: NodeRdmaDevices): boolean {
    return this.service.setNode(node);
  }

  /** Serves and registers once (failures are logged and retried), then keeps watching. */
  async start(): Promise<void> {
    this.timer = setInterval(() => this.requestCheck(), this.recheckMs);
    this.timer.unref();
    this.requestCheck();
    await this.running;
  }

  /** Stops watching, ends the streams, shuts the server down and removes our socket. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.watcher?.close();
    this.watcher = null;
    await this.running;
    await this.closeServer();
    await rm(this.socketPath, { force: true });
    this.config.log.info({ socket: this.socketPath }, 'device plugin stopped');
  }

  private requestCheck(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      do {
        this.again = false;
        try {
          await this.check();
        } catch (err) {
          this.config.log.error({ err }, 'device plugin: check failed');
        }
      } while (this.again && !this.stopped);
    })().finally(() => {
      this.running = null;
    });
  }

  private async check(): Promise<void> {
    await this.ensureWatch();
    const ours = await identity(this.socketPath);
    if (this.server === null || ours === null || ours !== this.served) {
      if (this.server !== null)
        this.config.log.warn({ socket: this.socketPath }, 'device plugin: socket gone, serving again');
      await this.closeServer();
      if (this.stopped) return;
      await this.serve();
      this.registeredWith = null;
    }
    const kubelet = await identity(this.kubeletPath);
    const event = this.kubeletEvent;
    this.kubeletEvent = false;
    if (kubelet === null) {
      if (this.registeredWith !== null)
        this.config.log.info('device plugin: kubelet.sock gone, waiting for the kubelet');
      this.registeredWith = null;
      return;
    }
    if (kubelet === this.registeredWith && !event) return;
    if (kubelet !== this.failedWith || event) {
      // Another kubelet: earlier failures say nothing about it.
      this.failures = 0;
      this.nextAttempt = 0;
    }
    if (Date.now() < this.nextAttempt || this.stopped) return;
    await this.register(kubelet);
  }

  private async register(kubelet: string): Promise<void> {
    const { log, metrics, resourceName, pluginDir } = this.config;
    try {
      await registerWithKubelet({ pluginDir, endpoint: this.socketName, resourceName });
      this.registeredWith = kubelet;
      this.failures = 0;
      this.failedWith = null;
      metrics?.registrations.inc({ result: 'ok' });
      log.info(
        { resource: resourceName, socket: this.socketPath },
        'device plugin registered with the kubelet',
      );
      this.accepted++;
      const ready = this.acceptedWaiters.filter((w) => w.count <= this.accepted);
      this.acceptedWaiters = this.acceptedWaiters.filter((w) => w.count > this.accepted);
      for (const w of ready) w.resolve();
    } catch (err) {
      this.registeredWith = null;
      this.failures++;
      this.failedWith = kubelet;
      const delay = Math.min(this.recheckMs * 2 ** (this.failures - 1), this.maxRetryMs);
      this.nextAttempt = Date.now() + delay;
      metrics?.registrations.inc({ result: 'error' });
      log.error({ err, resource: resourceName, retryMs: delay }, 'device plugin: registration failed');
    }
  }

  private async serve(): Promise<void> {
    // A socket left by an earlier run would make the bind fail with EADDRINUSE.
    await rm(this.socketPath, { force: true });
    const server = new Server();
    server.addService(loadDevicePluginApi().devicePlugin, this.service.implementation());
    try {
      await new Promise<void>((resolve, reject) => {
        server.bindAsync(`unix://${this.socketPath}`, ServerCredentials.createInsecure(), (err) =>
          err ? reject(err) : resolve(),
        );
      });
    } catch (err) {
      server.forceShutdown();
      throw err;
    }
    this.server = server;
    this.served = await identity(this.socketPath);
    this.config.log.info({ socket: this.socketPath, slots: this.config.slots }, 'device plugin serving');
  }

  /** Shutting down unlinks the socket path (libuv): done before a new socket is bound there. */
  private async closeServer(): Promise<void> {
    const server = this.server;
    if (server === null) return;
    this.server = null;
    this.served = null;
    this.service.endStreams();
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, 2_000);
      server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
  }

  private async ensureWatch(): Promise<void> {
    const dir = await identity(this.config.pluginDir, 'dir');
    if (this.watcher !== null && dir === this.watchedDir) return;
    this.watcher?.close();
    this.watcher = null;
    this.watchedDir = null;
    if (dir === null || this.stopped) return;
    try {
      const watcher = watch(this.config.pluginDir, (event, file) => {
        // rename: created or removed; a new kubelet.sock means a new kubelet even if its identity matches.
        if (event === 'rename' && file === KUBELET_SOCKET) this.kubeletEvent = true;
        if (file === null || file === KUBELET_SOCKET || file === this.socketName) this.requestCheck();
      });
      watcher.on('error', (err) => {
        this.config.log.warn({ err }, 'device plugin: watch of the device-plugin dir failed');
        watcher.close();
        if (this.watcher === watcher) this.watcher = null;
      });
      this.watcher = watcher;
      this.watchedDir = dir;
    } catch (err) {
      this.config.log.warn(
        { err, dir: this.config.pluginDir },
        'device plugin: cannot watch the device-plugin dir',
      );
    }
  }
}
