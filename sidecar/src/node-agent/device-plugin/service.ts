/**
 * The v1beta1.DevicePlugin service: the handlers the kubelet calls and the open ListAndWatch
 * streams, which get the slot list again whenever the node's RDMA devices change. No socket
 * handling here (plugin.ts serves it).
 */
import {
  type handleServerStreamingCall,
  type handleUnaryCall,
  type ServerWritableStream,
  status,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type {
  AllocateRequest,
  AllocateResponse,
  DevicePluginOptions,
  Empty,
  ListAndWatchResponse,
  PreferredAllocationRequest,
  PreferredAllocationResponse,
  PreStartContainerRequest,
  PreStartContainerResponse,
} from './api.js';
import {
  allocate,
  type NodeRdmaDevices,
  preferredAllocation,
  sameNodeRdmaDevices,
  slotDevices,
  UnknownDeviceError,
} from './mapping.js';
import type { DevicePluginMetrics } from './metrics.js';

/**
 * No PreStartContainer work to do; slots are interchangeable, so the kubelet's own choice is as
 * good as a preferred one (GetPreferredAllocation is still answered).
 */
export const PLUGIN_OPTIONS: DevicePluginOptions = {
  pre_start_required: false,
  get_preferred_allocation_available: false,
};

type Stream = ServerWritableStream<Empty, ListAndWatchResponse>;

export class DevicePluginService {
  private readonly streams = new Set<Stream>();
  private readonly list: ListAndWatchResponse;

  constructor(
    private readonly slots: number,
    private node: NodeRdmaDevices,
    private readonly log: Logger,
    private readonly metrics?: DevicePluginMetrics,
  ) {
    this.list = { devices: slotDevices(slots) };
  }

  current(): NodeRdmaDevices {
    return this.node;
  }

  /**
   * Takes the devices of a new scan. On a change the (unchanged) slot list is sent again on every
   * open stream: the kubelet re-reads its view of the resource, and an Allocate from then on maps
   * the new devices. Returns whether anything changed.
   */
  setNode(node: NodeRdmaDevices): boolean {
    if (sameNodeRdmaDevices(this.node, node)) return false;
    this.node = node;
    for (const stream of this.streams) stream.write(this.list);
    return true;
  }

  /** Ends the open ListAndWatch streams, so the server can shut down. */
  endStreams(): void {
    for (const stream of this.streams) stream.end();
    this.streams.clear();
  }

  openStreams(): number {
    return this.streams.size;
  }

  implementation(): UntypedServiceImplementation {
    const getOptions: handleUnaryCall<Empty, DevicePluginOptions> = (_call, callback) => {
      callback(null, PLUGIN_OPTIONS);
    };
    const listAndWatch: handleServerStreamingCall<Empty, ListAndWatchResponse> = (call) => {
      this.streams.add(call);
      const drop = () => this.streams.delete(call);
      call.on('cancelled', drop);
      call.on('close', drop);
      call.on('error', drop);
      this.log.info({ slots: this.slots, streams: this.streams.size }, 'device plugin: ListAndWatch opened');
      call.write(this.list);
    };
    const getPreferred: handleUnaryCall<PreferredAllocationRequest, PreferredAllocationResponse> = (
      call,
      callback,
    ) => {
      callback(null, preferredAllocation(call.request));
    };
    const allocateHandler: handleUnaryCall<AllocateRequest, AllocateResponse> = (call, callback) => {
      try {
        const response = allocate(call.request, this.slots, this.node);
        const devices = this.node.charDevices.length > 0 ? 'rdma' : 'none';
        this.metrics?.allocations.inc({ devices }, response.container_responses.length);
        this.log.info(
          {
            containers: response.container_responses.length,
            ibDevices: this.node.ibDevices,
            charDevices: this.node.charDevices,
          },
          'device plugin: allocated',
        );
        callback(null, response);
      } catch (err) {
        if (err instanceof UnknownDeviceError) {
          this.log.warn({ ids: err.ids }, 'device plugin: Allocate for unknown devices');
          callback({ code: status.INVALID_ARGUMENT, details: err.message });
        } else {
          this.log.error({ err }, 'device plugin: Allocate failed');
          callback({ code: status.INTERNAL, details: String(err) });
        }
      }
    };
    const preStart: handleUnaryCall<PreStartContainerRequest, PreStartContainerResponse> = (
      _call,
      callback,
    ) => {
      callback(null, {});
    };
    return {
      GetDevicePluginOptions: getOptions,
      ListAndWatch: listAndWatch,
      GetPreferredAllocation: getPreferred,
      Allocate: allocateHandler,
      PreStartContainer: preStart,
    };
  }
}
