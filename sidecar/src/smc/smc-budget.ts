import { FallbackReason } from '../policy/reasons.js';

/** The SmcPolicy limits on this pod's SMC-R connections (sidecar config `limits`). */
export interface SmcBudgetLimits {
  /** Concurrent SMC-R connections. */
  readonly maxConnections: number;
  /** Bytes of RMBs reserved at once. */
  readonly maxRegisteredMemory: number;
  /** The RMB one connection registers, in bytes. */
  readonly rmbSize: number;
  /**
   * CLC exchanges and link set-ups in flight at once (limits.maxConcurrentHandshakes): over it a
   * new upgrade falls back at once rather than queue into a handshake timeout. Unbounded if absent.
   */
  readonly maxHandshakes?: number;
}

/** Why the budget refused, with the numbers an operator needs to raise the right limit. */
export interface SmcBudgetRefusal {
  /** The limit that refused (handshakes first, then connections, then memory). */
  readonly limit: 'maxConcurrentHandshakes' | 'maxConnections' | 'maxRegisteredMemory';
  readonly connections: number;
  readonly reservedBytes: number;
  readonly maxConnections: number;
  readonly maxRegisteredMemory: number;
  readonly rmbSize: number;
  /** For `maxConcurrentHandshakes`: the handshakes in flight and the bound. */
  readonly handshakes?: number;
  readonly maxHandshakes?: number;
}

/** The fallback reason of a refusal: an overloaded handshake stage, or the SmcPolicy limits. */
export function refusalReason(refusal: SmcBudgetRefusal): FallbackReason {
  return refusal.limit === 'maxConcurrentHandshakes'
    ? FallbackReason.HandshakeOverload
    : FallbackReason.LimitReached;
}

export type SmcAdmission =
  /**
   * `release` gives the reservation back; `handshakeDone` only the handshake slot (the connection
   * is established or fell back); `release` gives that too. Calling either again does nothing.
   */
  | { readonly admitted: true; readonly release: () => void; readonly handshakeDone: () => void }
  | { readonly admitted: false; readonly refusal: SmcBudgetRefusal };

/**
 * Admits an SMC-R connection while fewer than maxConnections are active and its RMB fits in
 * maxRegisteredMemory. Only connections that would take SMC-R resources ask: plain TCP relays are
 * never counted, so a full budget turns upgrades into TCP fallbacks and resets nothing.
 */
export class SmcBudget {
  private active = 0;
  private reserved = 0;
  private shaking = 0;

  constructor(readonly limits: SmcBudgetLimits) {
    const { maxConnections, maxRegisteredMemory, rmbSize } = limits;
    if (!Number.isSafeInteger(maxConnections) || maxConnections < 0)
      throw new RangeError(`maxConnections must be a non-negative integer, got ${maxConnections}`);
    if (!Number.isSafeInteger(maxRegisteredMemory) || maxRegisteredMemory < 0)
      throw new RangeError(`maxRegisteredMemory must be a non-negative integer, got ${maxRegisteredMemory}`);
    if (!Number.isSafeInteger(rmbSize) || rmbSize <= 0)
      throw new RangeError(`rmbSize must be a positive integer, got ${rmbSize}`);
  }

  reserve(): SmcAdmission {
    const { maxConnections, maxRegisteredMemory, rmbSize } = this.limits;
    if (this.shaking >= (this.limits.maxHandshakes ?? Infinity))
      return this.refuse('maxConcurrentHandshakes');
    if (this.active >= maxConnections) return this.refuse('maxConnections');
    if (this.reserved + rmbSize > maxRegisteredMemory) return this.refuse('maxRegisteredMemory');
    this.active++;
    this.reserved += rmbSize;
    this.shaking++;
    let released = false;
    let shaken = false;
    const handshakeDone = (): void => {
      if (shaken) return;
      shaken = true;
      this.shaking--;
    };
    return {
      admitted: true,
      handshakeDone,
      release: () => {
        handshakeDone();
        if (released) return;
        released = true;
        this.active--;
        this.reserved -= rmbSize;
      },
    };
  }

  /** Admitted connections still in their handshake. */
  get handshakes(): number {
    return this.shaking;
  }

  /** SMC-R connections holding a reservation. */
  get connections(): number {
    return this.active;
  }

  /** RMB bytes reserved. */
  get reservedBytes(): number {
    return this.reserved;
  }

  private refuse(limit: SmcBudgetRefusal['limit']): SmcAdmission {
    return {
      admitted: false,
      refusal: {
        limit,
        connections: this.active,
        reservedBytes: this.reserved,
        maxConnections: this.limits.maxConnections,
        maxRegisteredMemory: this.limits.maxRegisteredMemory,
        rmbSize: this.limits.rmbSize,
        ...(limit === 'maxConcurrentHandshakes'
          ? { handshakes: this.shaking, maxHandshakes: this.limits.maxHandshakes ?? Infinity }
          : {}),
      },
    };
  }
}
