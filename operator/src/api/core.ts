import { z } from 'zod';
import { ObjectMetaSchema } from './meta.js';

/** A container's name and its named ports (the sidecar's SMC port goes into the directory). */
const ContainerSchema = z.object({
  name: z.string(),
  ports: z.array(z.object({ name: z.string().optional(), containerPort: z.number() })).nullish(),
});

const ContainerStatusSchema = z.object({
  name: z.string(),
  ready: z.boolean().default(false),
  state: z
    .object({ running: z.object({}).passthrough().nullish() })
    .passthrough()
    .nullish(),
});

/** The parts of a core/v1 Pod the operator needs (selection, readiness, directory entry). */
export const PodSchema = z.object({
  metadata: ObjectMetaSchema,
  spec: z.object({
    nodeName: z.string().optional(),
    containers: z.array(ContainerSchema).default([]),
    // The sidecar is here when injected as a native sidecar (restartPolicy: Always).
    initContainers: z.array(ContainerSchema).nullish(),
  }),
  status: z
    .object({
      phase: z.string().optional(),
      podIP: z.string().optional(),
      /** Every IP of the pod (one per family on a dual-stack cluster), podIP first. */
      podIPs: z.array(z.object({ ip: z.string() })).nullish(),
      containerStatuses: z.array(ContainerStatusSchema).nullish(),
      initContainerStatuses: z.array(ContainerStatusSchema).nullish(),
    })
    .nullish(),
});
export type Pod = z.infer<typeof PodSchema>;

export const NamespaceSchema = z.object({ metadata: ObjectMetaSchema });
export type Namespace = z.infer<typeof NamespaceSchema>;

export const NodeSchema = z.object({ metadata: ObjectMetaSchema });
export type Node = z.infer<typeof NodeSchema>;

export const ConfigMapSchema = z.object({
  metadata: ObjectMetaSchema,
  data: z.record(z.string(), z.string()).nullish(),
});
export type ConfigMap = z.infer<typeof ConfigMapSchema>;

export const SecretSchema = z.object({
  metadata: ObjectMetaSchema,
  type: z.string().optional(),
  data: z.record(z.string(), z.string()).nullish(),
});
export type Secret = z.infer<typeof SecretSchema>;

export const LeaseSchema = z.object({
  metadata: ObjectMetaSchema,
  spec: z
    .object({
      holderIdentity: z.string().nullish(),
      leaseDurationSeconds: z.number().int().nullish(),
      acquireTime: z.string().nullish(),
      renewTime: z.string().nullish(),
      leaseTransitions: z.number().int().nullish(),
    })
    .nullish(),
});
export type Lease = z.infer<typeof LeaseSchema>;

export const MutatingWebhookConfigurationSchema = z.object({
  metadata: ObjectMetaSchema,
  webhooks: z
    .array(
      z.object({
        name: z.string(),
        clientConfig: z.object({ caBundle: z.string().optional() }).passthrough(),
      }),
    )
    .nullish(),
});
export type MutatingWebhookConfiguration = z.infer<typeof MutatingWebhookConfigurationSchema>;
