/** One v1beta1.Registration/Register call to the kubelet on its socket in the device-plugin dir. */
import { join } from 'node:path';
import { Client, credentials } from '@grpc/grpc-js';
import {
  API_VERSION,
  type Empty,
  KUBELET_SOCKET,
  loadDevicePluginApi,
  type RegisterRequest,
  unaryCall,
} from './api.js';
import { PLUGIN_OPTIONS } from './service.js';

export interface RegisterParams {
  readonly pluginDir: string;
  /** Our socket's file name in pluginDir (the kubelet joins it to its own path). */
  readonly endpoint: string;
  readonly resourceName: string;
  readonly deadlineMs?: number;
}

export function registerRequest(params: RegisterParams): RegisterRequest {
  return {
    version: API_VERSION,
    endpoint: params.endpoint,
    resource_name: params.resourceName,
    options: PLUGIN_OPTIONS,
  };
}

/** Resolves once the kubelet accepted the registration; rejects with its gRPC error otherwise. */
export async function registerWithKubelet(params: RegisterParams): Promise<void> {
  const api = loadDevicePluginApi();
  const client = new Client(`unix://${join(params.pluginDir, KUBELET_SOCKET)}`, credentials.createInsecure());
  try {
    await unaryCall<RegisterRequest, Empty>(
      client,
      api.registration,
      'Register',
      registerRequest(params),
      params.deadlineMs ?? 10_000,
    );
  } finally {
    client.close();
  }
}
