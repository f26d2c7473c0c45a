import { z } from 'zod';
import { LabelSelectorSchema, ObjectMetaSchema } from './meta.js';

/**
 * SmcTenant (cluster scoped, named after the tenant): the namespaces whose SmcPolicies may use
 * the tenant. Written by cluster admins only; see crds/smc.dev_smctenants.yaml.
 */
export const SmcTenantSpecSchema = z.object({
  /** Namespaces admitted by name. */
  namespaces: z.array(z.string()).nullish(),
  /** Namespaces admitted by label; absent admits none by label, `{}` admits every namespace. */
  namespaceSelector: LabelSelectorSchema.nullish(),
});
export type SmcTenantSpec = z.infer<typeof SmcTenantSpecSchema>;

export const SmcTenantSchema = z.object({
  metadata: ObjectMetaSchema,
  spec: SmcTenantSpecSchema.default({}),
});
export type SmcTenant = z.infer<typeof SmcTenantSchema>;
