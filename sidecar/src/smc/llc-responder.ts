import { LLC_DEL_RKEY_MAX } from '../protocol/llc/constants.js';
import type { AnyLlcMessage } from './llc-codec.js';

/**
 * SMC_RMBS_PER_LGR_MAX (smc_core.h): the RMBs one link group holds, so also the peer rtokens
 * (lgr->rtokens) we keep for it.
 */
export const SMC_RMBS_PER_LGR_MAX = 255;

/** Why a peer's LLC request was not served, as counted in smc_rdma_errors_total{kind}. */
export type LlcRefusal = 'llc-rkey-refused' | 'llc-unsupported';

/**
 * The peer's RMBs on one link group that it confirmed (first contact or CONFIRM RKEY), by rkey and
 * virtual address. Bounded like the kernel's rtoken table: a peer cannot make it grow past `max`
 * entries however many CONFIRM RKEYs it sends (smc_rtoken_add fails with -ENOSPC).
 */
export class PeerRkeyTable {
  private readonly entries = new Map<string, number>();

  constructor(readonly max: number = SMC_RMBS_PER_LGR_MAX) {}

  private static id(rkey: number, vaddr: bigint): string {
    return `${rkey >>> 0}@${vaddr.toString(16)}`;
  }

  /** Records an RMB; `known` when it already was (no new entry), `full` when the table is at its bound. */
  add(rkey: number, vaddr: bigint): 'added' | 'known' | 'full' {
    const id = PeerRkeyTable.id(rkey, vaddr);
    if (this.entries.has(id)) return 'known';
    if (this.entries.size >= this.max) return 'full';
    this.entries.set(id, rkey >>> 0);
    return 'added';
  }

  has(rkey: number, vaddr: bigint): boolean {
    return this.entries.has(PeerRkeyTable.id(rkey, vaddr));
  }

  /** Forgets every RMB with this rkey (smc_rtoken_delete); false when there was none. */
  deleteRkey(rkey: number): boolean {
    let found = false;
    for (const [id, key] of this.entries) {
      if (key !== rkey >>> 0) continue;
      this.entries.delete(id);
      found = true;
    }
    return found;
  }

  get size(): number {
    return this.entries.size;
  }
}

/** What to do with one LLC request from the peer on a running link. */
export interface LlcAnswer {
  /** The response to send, or null. */
  reply: AnyLlcMessage | null;
  /** The peer deleted the link: end the group (after sending the reply). */
  endLink: boolean;
  /** The request was refused or not served: count it under this kind. */
  refused: LlcRefusal | null;
}

/**
 * Answers a peer's LLC request (response flag clear) as smc_llc_rx_handler's request side does.
 * Pure and synchronous: each request is answered at once, so no flow is ever queued, and the only
 * state a peer can grow is `rkeys`, bounded by its own limit.
 */
export function answerLlcRequest(m: AnyLlcMessage, rkeys: PeerRkeyTable): LlcAnswer {
  switch (m.kind) {
    case 'confirm-rkey': {
      // smc_llc_rmt_conf_rkey: an rtoken that does not fit is refused with the negative and retry flags.
      const full = rkeys.add(m.own.rmbKey, m.own.rmbVaddr) === 'full';
      return {
        reply: { ...m, response: true, negative: full, retry: full },
        endLink: false,
        refused: full ? 'llc-rkey-refused' : null,
      };
    }
    case 'delete-rkey': {
      // smc_llc_rmt_delete_rkey: each rkey we do not hold is reported (v1 error mask bit 7 is rkey[0],
      // v2 a count), with the negative flag.
      const unknown = m.rkeys.map((key) => !rkeys.deleteRkey(key));
      const invalid = unknown.filter(Boolean).length;
      const negative = invalid > 0;
      const reply: AnyLlcMessage =
        'version' in m
          ? { ...m, response: true, negative, invalidCount: invalid }
          : {
              ...m,
              response: true,
              negative,
              errorMask: unknown.reduce(
                (mask, bad, i) => (bad ? mask | (1 << (LLC_DEL_RKEY_MAX - 1 - i)) : mask),
                0,
              ),
            };
      return { reply, endLink: false, refused: null };
    }
    case 'test-link':
      return { reply: { ...m, response: true }, endLink: false, refused: null };
    case 'delete-link':
      return { reply: { ...m, response: true }, endLink: true, refused: null };
    default:
      // One link per group: ADD LINK and the rest are not served (and keep no state).
      return { reply: null, endLink: false, refused: 'llc-unsupported' };
  }
}
