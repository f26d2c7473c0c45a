import { type DirectoryEndpoint, endpointAddresses } from '../../../operator/src/api/directory.js';
import { canonicalIp } from '../net/ip.js';

export type { DirectoryEndpoint };

/**
 * Immutable snapshot of the endpoint directory, indexed by every canonical pod IP of each endpoint
 * (`podIP` and `podIPs`: a dual-stack pod is found by either family). An address listed by two
 * endpoints belongs to the later one, as a repeated podIP always did.
 */
export class EndpointDirectory {
  private readonly byIp: ReadonlyMap<string, DirectoryEndpoint>;
  private readonly endpoints: number;

  constructor(endpoints: Iterable<DirectoryEndpoint>) {
    const map = new Map<string, DirectoryEndpoint>();
    for (const e of endpoints) {
      for (const ip of endpointAddresses(e)) {
        try {
          map.set(canonicalIp(ip), e);
        } catch {
          // An unparsable podIP can never match a socket address; skip it.
        }
      }
    }
    this.byIp = map;
    this.endpoints = new Set(map.values()).size;
  }

  static empty(): EndpointDirectory {
    return new EndpointDirectory([]);
  }

  /** Endpoints found by at least one address. */
  get size(): number {
    return this.endpoints;
  }

  /** Every listed address (canonical) with its endpoint. */
  entries(): IterableIterator<[string, DirectoryEndpoint]> {
    return this.byIp.entries();
  }

  /** The endpoint one of whose pod IPs is `ip` (any spelling, IPv4-mapped included). */
  lookup(ip: string): DirectoryEndpoint | undefined {
    try {
      return this.byIp.get(canonicalIp(ip));
    } catch {
      return undefined;
    }
  }
}
