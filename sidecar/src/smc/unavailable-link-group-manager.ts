import { FallbackReason } from '../policy/reasons.js';
import { LinkSetupError } from './link-errors.js';
import {
  type LinkGroupManager,
  type LinkGroupStats,
  NO_LINK_GROUPS,
  type PreparedSmcConnection,
} from './link-group-manager.js';
import { makePeerId } from './peer-id.js';

/** Used when the verbs addon or the configured device is missing: every connection falls back. */
export class UnavailableLinkGroupManager implements LinkGroupManager {
  readonly peerId = makePeerId(null);

  constructor(readonly why: string) {}

  available(): boolean {
    return false;
  }

  prepare(): Promise<PreparedSmcConnection> {
    return Promise.reject(new LinkSetupError(FallbackReason.NoRdmaDevice, this.why));
  }

  stats(): LinkGroupStats {
    return { ...NO_LINK_GROUPS };
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
