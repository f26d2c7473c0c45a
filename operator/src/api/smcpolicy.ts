import { z } from 'zod';
import { ConditionSchema, LabelSelectorSchema, ObjectMetaSchema } from './meta.js';

export const SMC_GROUP = 'smc.dev';
export const SMC_VERSION = 'v1alpha1';
export const SMC_API_VERSION = `${SMC_GROUP}/${SMC_VERSION}`;

export const PolicyModeSchema = z.enum(['Prefer', 'Require', 'Disabled']);
export type PolicyMode = z.infer<typeof PolicyModeSchema>;

export const DeviceMatchSchema = z.object({
  nodeSelector: LabelSelectorSchema.nullish(),
  deviceName: z.string().optional(),
  netdev: z.string().optional(),
  pciAddress: z.string().optional(),
});
export type DeviceMatch = z.infer<typeof DeviceMatchSchema>;

export const SmcPolicySpecSchema = z.object({
  podSelector: LabelSelectorSchema.nullish(),
  tenant: z.string().min(1),
  devices: z.array(DeviceMatchSchema).nullish(),
  vlans: z.array(z.number().int().min(1).max(4094)).nullish(),
  pkeys: z.array(z.string().regex(/^0x[0-9a-fA-F]{4}$/)).nullish(),
  mode: PolicyModeSchema.default('Prefer'),
  limits: z
    .object({
      maxConnections: z.number().int().optional(),
      maxRegisteredMemory: z.union([z.string(), z.number()]).optional(),
      rmbSize: z.string().optional(),
    })
    .nullish(),
  allowedPeerTenants: z.array(z.string()).nullish(),
});
export type SmcPolicySpec = z.infer<typeof SmcPolicySpecSchema>;

export const SmcPolicyStatusSchema = z.object({
  observedGeneration: z.number().int().optional(),
  matchedPods: z.number().int().optional(),
  readyPods: z.number().int().optional(),
  conflictingPolicies: z.array(z.string()).nullish(),
  conditions: z.array(ConditionSchema).nullish(),
});
export type SmcPolicyStatus = z.infer<typeof SmcPolicyStatusSchema>;

export const SmcPolicySchema = z.object({
  metadata: ObjectMetaSchema,
  spec: SmcPolicySpecSchema,
  status: SmcPolicyStatusSchema.nullish(),
});
export type SmcPolicy = z.infer<typeof SmcPolicySchema>;

/** Condition types reported on SmcPolicy.status.conditions. */
export const ConditionType = {
  Ready: 'Ready',
  Conflicted: 'Conflicted',
  Degraded: 'Degraded',
  /** Whether the SmcTenant named by spec.tenant admits the policy's namespace (policy/tenancy.ts). */
  TenantAdmitted: 'TenantAdmitted',
} as const;

/** Finalizer that keeps a policy until its endpoints have been removed from the directory. */
export const DIRECTORY_FINALIZER = 'smc.dev/directory-cleanup';
