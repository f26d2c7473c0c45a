import { z } from 'zod';
import { ObjectMetaSchema } from './meta.js';

export const GidSchema = z.object({
  index: z.number().int(),
  gid: z.string(),
  type: z.enum(['IB', 'RoCEv1', 'RoCEv2']),
  netdev: z.string().optional(),
  vlan: z.number().int().optional(),
});

export const DevicePortSchema = z.object({
  port: z.number().int(),
  state: z.string(),
  linkLayer: z.string().optional(),
  activeMtu: z.number().int().optional(),
  netdev: z.string().optional(),
  gids: z.array(GidSchema).nullish(),
  pkeys: z.array(z.string()).nullish(),
});

export const RdmaDeviceSchema = z.object({
  name: z.string(),
  pciAddress: z.string().optional(),
  ports: z.array(DevicePortSchema).nullish(),
});
export type RdmaDevice = z.infer<typeof RdmaDeviceSchema>;

export const SmcNodeSchema = z.object({
  metadata: ObjectMetaSchema,
  spec: z.object({ nodeName: z.string() }),
  status: z
    .object({
      observedTime: z.string().optional(),
      deviceCount: z.number().int().optional(),
      devices: z.array(RdmaDeviceSchema).nullish(),
      vlanNetdevs: z
        .array(z.object({ vlan: z.number().int(), netdev: z.string(), parent: z.string().optional() }))
        .nullish(),
    })
    .nullish(),
});
export type SmcNode = z.infer<typeof SmcNodeSchema>;
