import { describe, expect, it } from 'vitest';
import { fallbackLogLevel, FallbackReason } from '../policy/reasons.js';
import { resetCauseOf } from './native-smc-connection.js';

describe('who reset an upgraded connection', () => {
  it('blames the sidecar only for its own aborts', () => {
    expect(resetCauseOf('closed', '', null)).toBeNull();
    // Either application resetting is not the sidecar's doing.
    expect(resetCauseOf('aborted', 'peer abort', null)).toBeNull();
    expect(resetCauseOf('aborted', 'socket read', null)).toBeNull();
    expect(resetCauseOf('aborted', 'socket write', 'peer-gone')).toBeNull();
    // The link or the peer's protocol failing is.
    expect(resetCauseOf('error', 'IBV_WC_RETRY_EXC_ERR', null)).toBe('link-failed');
    expect(resetCauseOf('aborted', 'invalid CDC cursor', null)).toBe('cdc-protocol');
    expect(resetCauseOf('aborted', 'local abort', 'peer-gone')).toBe('peer-gone');
    expect(resetCauseOf('aborted', 'local abort', null)).toBe('link-failed');
  });

  it('logs loaded or failing paths at warn, policy answers at info', () => {
    expect(fallbackLogLevel(FallbackReason.HandshakeTimeout)).toBe('warn');
    expect(fallbackLogLevel(FallbackReason.LinkSetupFailed)).toBe('warn');
    expect(fallbackLogLevel(FallbackReason.PeerReset)).toBe('warn');
    expect(fallbackLogLevel(FallbackReason.PeerNotInDirectory)).toBe('info');
    expect(fallbackLogLevel(FallbackReason.TenantNotAllowed)).toBe('info');
  });
});
