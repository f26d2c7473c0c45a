import type { DirectoryEndpoint } from '../../../operator/src/api/directory.js';
import { canonicalIp } from '../net/ip.js';

export type { DirectoryEndpoint };

/** Immutable snapshot of the endpoint directory, indexed by canonical pod IP. */
export class EndpointDirectory {
  private readonly byIp: ReadonlyMap<string, DirectoryEndpoint>;

  constructor(endpoints: Iterable<DirectoryEndpoint>) {
    const map = new Map<string, DirectoryEndpoint>();
    for (const e of endpoints) {
      try {
        map.set(canonicalIp(e.podIP), e);
      } catch {
        // An unparsable podIP can never match a socket address; skip it.
      }
    }
    this.byIp = map;
  }

  static empty(): EndpointDirectory {
    return new EndpointDirectory([]);
  }

  get size(): number {
    return this.byIp.size;
  }

  /** The endpoint whose pod IP is `ip` (any spelling, IPv4-mapped included). */
  lookup(ip: string): DirectoryEndpoint | undefined {
    try {
      return this.byIp.get(canonicalIp(ip));
    } catch {
      return undefined;
    }
  }
}
