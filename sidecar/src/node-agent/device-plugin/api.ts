/**
 * The kubelet's device-plugin API (v1beta1): the vendored api.proto loaded at run time, its
 * messages as TypeScript types (field names as in the proto, `keepCase`), and typed unary and
 * server-streaming calls on a plain grpc-js Client.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type Client,
  type ClientReadableStream,
  type GrpcObject,
  type MethodDefinition,
  type ServiceDefinition,
  loadPackageDefinition,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';

export const API_VERSION = 'v1beta1';
export const KUBELET_SOCKET = 'kubelet.sock';
export const HEALTHY = 'Healthy';

/** proto3 `Empty`: no fields. */
export type Empty = Record<string, never>;

export interface DevicePluginOptions {
  pre_start_required: boolean;
  get_preferred_allocation_available: boolean;
}

export interface RegisterRequest {
  version: string;
  endpoint: string;
  resource_name: string;
  options: DevicePluginOptions | null;
}

export interface Device {
  ID: string;
  health: string;
  topology?: { nodes: { ID: number }[] } | null;
}

export interface ListAndWatchResponse {
  devices: Device[];
}

export interface PreStartContainerRequest {
  devices_ids: string[];
}

export type PreStartContainerResponse = Empty;

export interface ContainerPreferredAllocationRequest {
  available_deviceIDs: string[];
  must_include_deviceIDs: string[];
  allocation_size: number;
}

export interface PreferredAllocationRequest {
  container_requests: ContainerPreferredAllocationRequest[];
}

export interface PreferredAllocationResponse {
  container_responses: { deviceIDs: string[] }[];
}

export interface ContainerAllocateRequest {
  devices_ids: string[];
}

export interface AllocateRequest {
  container_requests: ContainerAllocateRequest[];
}

export interface DeviceSpec {
  container_path: string;
  host_path: string;
  permissions: string;
}

export interface Mount {
  container_path: string;
  host_path: string;
  read_only: boolean;
}

export interface ContainerAllocateResponse {
  envs: Record<string, string>;
  mounts: Mount[];
  devices: DeviceSpec[];
  annotations: Record<string, string>;
  cdi_devices: { name: string }[];
}

export interface AllocateResponse {
  container_responses: ContainerAllocateResponse[];
}

export class ProtoNotFoundError extends Error {
  constructor(readonly candidates: readonly string[]) {
    super(`device-plugin api.proto not found; looked in ${candidates.join(', ')}`);
    this.name = 'ProtoNotFoundError';
  }
}

/**
 * tsc does not copy the .proto: build:ts copies it next to the compiled module; when running
 * from a dist tree built without that step, the source tree's copy is used.
 */
function protoPath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [
    join(here, 'api.proto'),
    resolve(here, '../../../../../sidecar/src/node-agent/device-plugin/api.proto'),
  ];
  const found = candidates.find((p) => existsSync(p));
  if (found === undefined) throw new ProtoNotFoundError(candidates);
  return found;
}

export interface DevicePluginApi {
  readonly devicePlugin: ServiceDefinition;
  readonly registration: ServiceDefinition;
}

let loaded: DevicePluginApi | undefined;

function service(pkg: GrpcObject, name: string): ServiceDefinition {
  const ctor = pkg[name];
  if (typeof ctor !== 'function' || !('service' in ctor)) throw new Error(`api.proto has no service ${name}`);
  return ctor.service;
}

export function loadDevicePluginApi(): DevicePluginApi {
  if (loaded) return loaded;
  const definition = loadSync(protoPath(), {
    keepCase: true,
    longs: Number,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const pkg = loadPackageDefinition(definition)['v1beta1'];
  if (pkg === undefined || typeof pkg === 'function' || 'format' in pkg) {
    throw new Error('api.proto has no package v1beta1');
  }
  loaded = { devicePlugin: service(pkg, 'DevicePlugin'), registration: service(pkg, 'Registration') };
  return loaded;
}

/** The serializers of one method, typed: the proto is loaded at run time, so the types are asserted here once. */
function method<Req, Res>(svc: ServiceDefinition, name: string): MethodDefinition<Req, Res> {
  const def = svc[name];
  if (def === undefined) throw new Error(`no method ${name}`);
  return {
    ...def,
    requestSerialize: (value: Req) => def.requestSerialize(value as object),
    responseDeserialize: (bytes: Buffer) => def.responseDeserialize(bytes) as Res,
    requestDeserialize: (bytes: Buffer) => def.requestDeserialize(bytes) as Req,
    responseSerialize: (value: Res) => def.responseSerialize(value as object),
  };
}

export function unaryCall<Req, Res>(
  client: Client,
  svc: ServiceDefinition,
  name: string,
  request: Req,
  deadlineMs: number,
): Promise<Res> {
  const def = method<Req, Res>(svc, name);
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      def.path,
      def.requestSerialize,
      def.responseDeserialize,
      request,
      { deadline: Date.now() + deadlineMs },
      (err, value) => {
        if (err) reject(err);
        else if (value === undefined) reject(new Error(`${name}: empty response`));
        else resolve(value);
      },
    );
  });
}

export function serverStreamCall<Req, Res>(
  client: Client,
  svc: ServiceDefinition,
  name: string,
  request: Req,
): ClientReadableStream<Res> {
  const def = method<Req, Res>(svc, name);
  return client.makeServerStreamRequest(def.path, def.requestSerialize, def.responseDeserialize, request);
}
