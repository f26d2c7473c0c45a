/** The device plugin's counters, registered on the node agent's registry. */
import { Counter, type Registry } from 'prom-client';

export interface DevicePluginMetrics {
  /** Container allocations; `devices`: `rdma` (device nodes mapped) or `none` (TCP fallback node). */
  readonly allocations: Counter<'devices'>;
  /** Register calls to the kubelet by `result`: `ok`, `error`. */
  readonly registrations: Counter<'result'>;
}

export function createDevicePluginMetrics(registry: Registry): DevicePluginMetrics {
  return {
    allocations: new Counter({
      name: 'smc_node_agent_device_plugin_allocations_total',
      help: 'Containers allocated the RDMA resource, by whether device nodes were mapped (rdma, none).',
      labelNames: ['devices'],
      registers: [registry],
    }),
    registrations: new Counter({
      name: 'smc_node_agent_device_plugin_registrations_total',
      help: 'Registrations with the kubelet by result (ok, error).',
      labelNames: ['result'],
      registers: [registry],
    }),
  };
}
