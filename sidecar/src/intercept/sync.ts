import type { EndpointDirectory } from '../directory/endpoint-directory.js';
import type { Logger } from '../log.js';
import type { LocalIdentity } from '../policy/decide.js';
import type { NftRunner } from './nft.js';
import { peerSets, samePeerSets } from './peer-sets.js';
import { type PeerSetContents, peerSetsScript } from './rules.js';

/**
 * Keeps the `redirect: peers` sets in step with the directory (`smc intercept sync`). One `nft -f`
 * at a time; a directory that changes meanwhile is applied next (only the latest), and a failed
 * apply is tried again after `retryMs` (e.g. before `intercept install` created the table).
 * The addresses come from the directory already parsed and reprinted (`EndpointDirectory`), so
 * nothing a shard says reaches nft as text of its own.
 */
export class PeerSetSync {
  private applied: PeerSetContents | null = null;
  private wanted: PeerSetContents | null = null;
  private running: Promise<void> | null = null;
  private retry: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    private readonly run: NftRunner,
    private readonly identity: LocalIdentity,
    private readonly log: Logger,
    private readonly retryMs = 1000,
  ) {}

  /** The directory changed: compute the sets and apply them if they differ from the last applied. */
  update(directory: EndpointDirectory): Promise<void> {
    this.wanted = peerSets(this.identity, directory);
    return this.kick();
  }

  /** Resolves when nothing is being applied (for tests and shutdown). */
  async idle(): Promise<void> {
    while (this.running !== null) await this.running;
  }

  stop(): void {
    this.stopped = true;
    if (this.retry !== null) clearTimeout(this.retry);
    this.retry = null;
  }

  private kick(): Promise<void> {
    this.running ??= this.drain().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async drain(): Promise<void> {
    while (!this.stopped && this.wanted !== null) {
      const next = this.wanted;
      if (this.applied !== null && samePeerSets(this.applied, next)) {
        if (this.wanted === next) this.wanted = null;
        continue;
      }
      try {
        await this.run(peerSetsScript(next));
      } catch (err) {
        this.log.warn({ err, retryMs: this.retryMs }, 'redirect sets not applied; trying again');
        this.retry ??= setTimeout(() => {
          this.retry = null;
          void this.kick();
        }, this.retryMs);
        return;
      }
      this.applied = next;
      if (this.wanted === next) this.wanted = null;
      this.log.info(
        {
          outbound: next.outbound4.length + next.outbound6.length,
          inboundPlain: next.inboundPlain4.length + next.inboundPlain6.length,
        },
        'redirect sets applied',
      );
    }
  }
}
