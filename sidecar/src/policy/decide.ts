import { type DirectoryEndpoint, tenantsMayPeer } from '../../../operator/src/api/directory.js';
import type { PolicyMode } from '../config/schema.js';
import { FallbackReason } from './reasons.js';

/** This pod's side of the decision. */
export interface LocalIdentity {
  tenant: string;
  allowedPeerTenants: readonly string[];
  vlan: number | null;
  pkey: number;
  mode: PolicyMode;
}

/** Facts about this moment that the decision depends on. */
export interface DecisionContext {
  /** An RDMA device is open and its port active. */
  rdmaAvailable: boolean;
}

export type PolicyDecision =
  /** Attempt SMC-R through the peer's sidecar. */
  | { action: 'upgrade' }
  /** Carry the bytes over TCP: straight to the destination, or through the peer sidecar (no CLC). */
  | { action: 'relay'; via: 'direct' | 'peer-sidecar'; reason: FallbackReason }
  /** Refuse the connection (Require mode). */
  | { action: 'reject'; reason: FallbackReason };

/** Directory pkeys are "0xNNNN" strings; ours is a number. The two low 15 bits name the partition. */
export function parsePkey(text: string | undefined): number | null {
  if (text === undefined) return null;
  return /^0x[0-9a-f]{1,4}$/i.test(text) ? parseInt(text, 16) : null;
}

function samePartition(a: number, b: number): boolean {
  return (a & 0x7fff) === (b & 0x7fff);
}

/** Why SMC-R is not allowed between us and a peer that has a sidecar, or null when it is. */
export function peerIneligibility(
  local: LocalIdentity,
  peer: DirectoryEndpoint,
  ctx: DecisionContext,
): FallbackReason | null {
  if (local.mode === 'Disabled') return FallbackReason.ModeDisabled;
  if (!tenantsMayPeer(local, peer)) return FallbackReason.TenantNotAllowed;
  if ((peer.vlan ?? null) !== local.vlan) return FallbackReason.VlanMismatch;
  const peerPkey = parsePkey(peer.pkey) ?? 0xffff;
  if (!samePartition(peerPkey, local.pkey)) return FallbackReason.PkeyMismatch;
  if (!ctx.rdmaAvailable) return FallbackReason.NoRdmaDevice;
  return null;
}

/**
 * What to do with an outbound connection to `peer` (undefined: the destination
 * is not in the directory, so it has no sidecar and gets a plain relay, whatever
 * the mode). Require mode refuses instead of falling back for directory peers.
 */
export function decideOutbound(
  local: LocalIdentity,
  peer: DirectoryEndpoint | undefined,
  ctx: DecisionContext,
): PolicyDecision {
  if (peer === undefined)
    return { action: 'relay', via: 'direct', reason: FallbackReason.PeerNotInDirectory };
  const reason = peerIneligibility(local, peer, ctx);
  if (reason === null) return { action: 'upgrade' };
  return afterFailure(local, reason, 'peer-sidecar');
}

/**
 * The server side's answer to a CLC Proposal from `peer` (undefined: the client
 * is not in our directory; we cannot check its tenant, so we decline).
 */
export function decideInbound(
  local: LocalIdentity,
  peer: DirectoryEndpoint | undefined,
  ctx: DecisionContext,
): PolicyDecision {
  const reason = peer === undefined ? FallbackReason.PeerNotInDirectory : peerIneligibility(local, peer, ctx);
  if (reason === null) return { action: 'upgrade' };
  return afterFailure(local, reason, 'peer-sidecar');
}

/** What a failure of the upgrade (at any stage before the first data byte) turns into. */
export function afterFailure(
  local: LocalIdentity,
  reason: FallbackReason,
  via: 'direct' | 'peer-sidecar',
): PolicyDecision {
  if (local.mode === 'Require') return { action: 'reject', reason };
  return { action: 'relay', via, reason };
}

/**
 * An upgrade the SMC-R budget (limits.maxConnections, limits.maxRegisteredMemory,
 * limits.maxConcurrentHandshakes) did not admit: the connection goes straight to its destination
 * over TCP with the refusal's reason, `limit-reached` or `handshake-overload` (Require mode:
 * reset, as every fallback). Other decisions take no SMC-R resources and stand as they are.
 */
export function withinBudget(
  local: LocalIdentity,
  decision: PolicyDecision,
  refusal: FallbackReason | null,
): PolicyDecision {
  if (decision.action !== 'upgrade' || refusal === null) return decision;
  return afterFailure(local, refusal, 'direct');
}
