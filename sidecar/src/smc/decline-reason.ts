import { SMC_CLC_DECL } from '../protocol/clc/decline-codes.js';
import { FallbackReason } from '../policy/reasons.js';

/** The fallback reason for a Decline code we sent ourselves (the state machines pick codes, we label them). */
export function reasonForLocalDecline(code: number): FallbackReason {
  switch (code) {
    case SMC_CLC_DECL.TIMEOUT:
    case SMC_CLC_DECL.TIMEOUT_CL:
    case SMC_CLC_DECL.TIMEOUT_AL:
      return FallbackReason.HandshakeTimeout;
    case SMC_CLC_DECL.SYNCERR:
    case SMC_CLC_DECL.VERSMISMAT:
    case SMC_CLC_DECL.MODEUNSUPP:
    case SMC_CLC_DECL.PEERNOSMC:
      return FallbackReason.ProtocolError;
    case SMC_CLC_DECL.NOSMCDEV:
    case SMC_CLC_DECL.NOSMCRDEV:
      return FallbackReason.NoRdmaDevice;
    case SMC_CLC_DECL.MAXCONNERR:
    case SMC_CLC_DECL.MAXLINKERR:
    case SMC_CLC_DECL.MEM:
      return FallbackReason.LimitReached;
    case SMC_CLC_DECL.ERR_RDYLNK:
    case SMC_CLC_DECL.ERR_RTOK:
    case SMC_CLC_DECL.NOACTLINK:
    case SMC_CLC_DECL.NOSRVLINK:
      return FallbackReason.LinkSetupFailed;
    case SMC_CLC_DECL.ERR_REGBUF:
      return FallbackReason.BufferRegistrationFailed;
    case SMC_CLC_DECL.NOUEID:
      // No User EID in common: the peer belongs to a tenant we do not share a link with.
      return FallbackReason.TenantNotAllowed;
    default:
      return FallbackReason.InternalError;
  }
}
