/**
 * Test stand-ins for the kubelet's two roles: its Registration server on kubelet.sock, and the
 * DevicePlugin client it dials back on the plugin's socket.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  Client,
  type ClientReadableStream,
  credentials,
  type handleUnaryCall,
  Server,
  ServerCredentials,
  type ServiceError,
} from '@grpc/grpc-js';
import {
  type AllocateRequest,
  type AllocateResponse,
  type DevicePluginOptions,
  type Empty,
  KUBELET_SOCKET,
  type ListAndWatchResponse,
  loadDevicePluginApi,
  type PreferredAllocationRequest,
  type PreferredAllocationResponse,
  type PreStartContainerRequest,
  type PreStartContainerResponse,
  type RegisterRequest,
  serverStreamCall,
  unaryCall,
} from './api.js';

/** The kubelet's Registration service on `<dir>/kubelet.sock`, recording every request. */
export class FakeKubelet {
  readonly requests: RegisterRequest[] = [];
  /** Errors to answer the next Register calls with, in order. */
  readonly rejections: Partial<ServiceError>[] = [];
  private server: Server | null = null;
  private waiters: { count: number; resolve: (r: RegisterRequest) => void }[] = [];

  constructor(readonly dir: string) {}

  get socket(): string {
    return join(this.dir, KUBELET_SOCKET);
  }

  async start(): Promise<void> {
    const register: handleUnaryCall<RegisterRequest, Empty> = (call, callback) => {
      const rejection = this.rejections.shift();
      if (rejection) {
        callback(rejection);
        return;
      }
      this.requests.push(call.request);
      callback(null, {});
      const ready = this.waiters.filter((w) => this.requests.length >= w.count);
      this.waiters = this.waiters.filter((w) => this.requests.length < w.count);
      for (const w of ready) w.resolve(call.request);
    };
    const server = new Server();
    server.addService(loadDevicePluginApi().registration, { Register: register });
    await new Promise<void>((resolve, reject) => {
      server.bindAsync(`unix://${this.socket}`, ServerCredentials.createInsecure(), (err) =>
        err ? reject(err) : resolve(),
      );
    });
    this.server = server;
  }

  /** Resolves with the count-th accepted Register request (1-based). */
  registration(count: number): Promise<RegisterRequest> {
    const done = this.requests[count - 1];
    if (done) return Promise.resolve(done);
    return new Promise((resolve) => this.waiters.push({ count, resolve }));
  }

  /** Stops serving and removes kubelet.sock, as a kubelet that exits leaves it for its successor to replace. */
  async stop(): Promise<void> {
    this.server?.forceShutdown();
    this.server = null;
    await rm(this.socket, { force: true });
  }
}

/** Reads a server stream one message at a time. */
export class StreamReader<T> {
  private readonly queue: T[] = [];
  private waiter: ((v: T) => void) | null = null;
  private failure: ((e: Error) => void) | null = null;
  private error: Error | null = null;

  constructor(readonly stream: ClientReadableStream<T>) {
    stream.on('data', (msg: T) => {
      if (this.waiter) {
        const w = this.waiter;
        this.waiter = null;
        this.failure = null;
        w(msg);
      } else this.queue.push(msg);
    });
    const fail = (err: Error) => {
      this.error = err;
      this.failure?.(err);
      this.waiter = null;
      this.failure = null;
    };
    stream.on('error', fail);
    stream.on('end', () => fail(new Error('stream ended')));
  }

  next(): Promise<T> {
    const msg = this.queue.shift();
    if (msg !== undefined) return Promise.resolve(msg);
    if (this.error) return Promise.reject(this.error);
    return new Promise((resolve, reject) => {
      this.waiter = resolve;
      this.failure = reject;
    });
  }

  cancel(): void {
    this.stream.cancel();
  }
}

/** A DevicePlugin client as the kubelet dials it: on the socket named at registration. */
export class DevicePluginTestClient {
  private readonly client: Client;
  private readonly api = loadDevicePluginApi();

  constructor(socketPath: string) {
    this.client = new Client(`unix://${socketPath}`, credentials.createInsecure());
  }

  options(): Promise<DevicePluginOptions> {
    return unaryCall(this.client, this.api.devicePlugin, 'GetDevicePluginOptions', {}, 10_000);
  }

  listAndWatch(): StreamReader<ListAndWatchResponse> {
    return new StreamReader(
      serverStreamCall<Empty, ListAndWatchResponse>(this.client, this.api.devicePlugin, 'ListAndWatch', {}),
    );
  }

  allocate(request: AllocateRequest): Promise<AllocateResponse> {
    return unaryCall(this.client, this.api.devicePlugin, 'Allocate', request, 10_000);
  }

  preferred(request: PreferredAllocationRequest): Promise<PreferredAllocationResponse> {
    return unaryCall(this.client, this.api.devicePlugin, 'GetPreferredAllocation', request, 10_000);
  }

  preStart(request: PreStartContainerRequest): Promise<PreStartContainerResponse> {
    return unaryCall(this.client, this.api.devicePlugin, 'PreStartContainer', request, 10_000);
  }

  close(): void {
    this.client.close();
  }
}
