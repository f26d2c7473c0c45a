import { FallbackReason } from '../policy/reasons.js';

/** Why an SMC-R connection could not be set up; the handshake declines with the matching code. */
export type LinkSetupReason =
  | typeof FallbackReason.NoRdmaDevice
  | typeof FallbackReason.LinkSetupFailed
  | typeof FallbackReason.BufferRegistrationFailed
  | typeof FallbackReason.LimitReached;

export class LinkSetupError extends Error {
  /**
   * Declining is right even after the link setup committed (see LinkCommit):
   * the failure is deliberate and the same on both sides (`link-only`).
   */
  readonly declineAfterCommit: boolean;

  constructor(
    readonly reason: LinkSetupReason,
    message: string,
    options?: { cause?: unknown; declineAfterCommit?: boolean },
  ) {
    super(message, options);
    this.name = 'LinkSetupError';
    this.declineAfterCommit = options?.declineAfterCommit ?? false;
  }
}

export function asLinkSetupError(err: unknown): LinkSetupError {
  if (err instanceof LinkSetupError) return err;
  return new LinkSetupError(
    FallbackReason.LinkSetupFailed,
    err instanceof Error ? err.message : String(err),
    {
      cause: err,
    },
  );
}
