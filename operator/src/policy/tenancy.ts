import type { SmcPolicy } from '../api/smcpolicy.js';
import type { SmcTenant } from '../api/smctenant.js';
import { selectorMatches, type Labels } from './selector.js';

/**
 * Tenancy: a tenant is not a free string. An SmcPolicy may name tenant T only in a namespace that
 * the SmcTenant named T admits (spec.namespaces lists it, or spec.namespaceSelector matches its
 * labels). SmcTenants are cluster scoped and written by cluster admins only, so a user who may
 * create policies in namespace X cannot make X's pods join another namespace's tenant.
 *
 * The API server checks this when a policy is created (the chart's ValidatingAdmissionPolicy
 * `<release>-tenant-binding`, which says the same as {@link notAdmittedMessage}); the operator
 * checks it again, with these functions, each time it computes a policy's status and the
 * directory, so an SmcTenant changed later (or a policy created before the SmcTenant existed)
 * is enforced too.
 */

export type TenantAdmissionReason = 'TenantAdmitted' | 'TenantNotFound' | 'NamespaceNotAdmitted';

export interface TenantAdmission {
  readonly admitted: boolean;
  readonly reason: TenantAdmissionReason;
  readonly message: string;
}

/** Whether an SmcTenant admits a namespace (by name, or by labels; an absent selector admits none by label). */
export function tenantAdmitsNamespace(
  tenant: SmcTenant,
  namespace: string,
  namespaceLabels: Labels,
): boolean {
  if ((tenant.spec.namespaces ?? []).includes(namespace)) return true;
  const sel = tenant.spec.namespaceSelector;
  return sel !== null && sel !== undefined && selectorMatches(sel, namespaceLabels);
}

/** The message of a policy whose tenant does not admit its namespace (also the admission policy's). */
export function notAdmittedMessage(tenant: string, namespace: string): string {
  return (
    `SmcTenant "${tenant}" does not admit namespace "${namespace}": a cluster admin must list the ` +
    `namespace in spec.namespaces or label it to match spec.namespaceSelector`
  );
}

export function tenantNotFoundMessage(tenant: string, namespace: string): string {
  return `no SmcTenant "${tenant}" exists: a cluster admin must create it and admit namespace "${namespace}"`;
}

/**
 * Whether a policy may use its tenant. `tenants(name)` looks an SmcTenant up; `namespaceLabels`
 * are the labels of the policy's namespace (unknown namespace: none).
 */
export function admitPolicy(
  policy: SmcPolicy,
  tenants: (name: string) => SmcTenant | undefined,
  namespaceLabels: Labels,
): TenantAdmission {
  const name = policy.spec.tenant;
  const ns = policy.metadata.namespace ?? '';
  const t = tenants(name);
  if (!t) return { admitted: false, reason: 'TenantNotFound', message: tenantNotFoundMessage(name, ns) };
  if (!tenantAdmitsNamespace(t, ns, namespaceLabels))
    return { admitted: false, reason: 'NamespaceNotAdmitted', message: notAdmittedMessage(name, ns) };
  return {
    admitted: true,
    reason: 'TenantAdmitted',
    message: `SmcTenant "${name}" admits namespace "${ns}"`,
  };
}
