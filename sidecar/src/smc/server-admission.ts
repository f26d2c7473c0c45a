import type { PeerPolicy } from '../handshake/types.js';
import { declineCodeFor, FallbackReason } from '../policy/reasons.js';
import { SMC_CLC_DECL } from '../protocol/clc/decline-codes.js';
import { refusalReason, type SmcBudget, type SmcBudgetRefusal } from './smc-budget.js';

/**
 * Whether the server may take SMC-R resources for a Proposal: `release` holds the budget's
 * reservation; a refusal names the reason the Proposal is declined with (and, for
 * `limit-reached`, the budget's numbers).
 */
export type ServerAdmission =
  | { readonly refusal: null; readonly release: () => void; readonly handshakeDone: () => void }
  | { readonly refusal: FallbackReason; readonly budget: SmcBudgetRefusal | null };

/**
 * The server's decision before its machine reads the Proposal: the policy's refusal (mode,
 * tenant, device), else the SMC-R budget's. A refused peer takes nothing from the budget.
 */
export function admitProposal(eligibility: FallbackReason | null, budget: SmcBudget): ServerAdmission {
  if (eligibility !== null) return { refusal: eligibility, budget: null };
  const admission = budget.reserve();
  if (admission.admitted)
    return { refusal: null, release: admission.release, handshakeDone: admission.handshakeDone };
  return { refusal: refusalReason(admission.refusal), budget: admission.refusal };
}

/**
 * The ClcServer policy for a Proposal already refused: the machine declines it with the reason's
 * CLC code (SMC_CLC_DECL_MEM for `limit-reached`) once its own checks, which come first, pass.
 */
export function declineWith(reason: FallbackReason): PeerPolicy {
  const code = declineCodeFor(reason) ?? SMC_CLC_DECL.PEERDECL;
  return () => ({ allow: false, reasonCode: code, reason });
}
