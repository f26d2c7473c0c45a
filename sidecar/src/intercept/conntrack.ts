import { canonicalIp, ipFamily, type SocketAddress } from '../net/ip.js';

/** One TCP entry of /proc/net/nf_conntrack: the original and the reply tuple. */
export interface ConntrackTcpEntry {
  original: { src: SocketAddress; dst: SocketAddress };
  reply: { src: SocketAddress; dst: SocketAddress };
}

function addr(ip: string | undefined, port: string | undefined): SocketAddress | null {
  if (ip === undefined || port === undefined || !/^\d+$/.test(port)) return null;
  try {
    const address = canonicalIp(ip);
    return { address, port: Number(port), family: ipFamily(address) };
  } catch {
    return null;
  }
}

/**
 * Parses /proc/net/nf_conntrack lines such as
 * `ipv4 2 tcp 6 431999 ESTABLISHED src=A dst=B sport=1 dport=2 src=C dst=D sport=3 dport=4 [ASSURED] ...`;
 * non-TCP and malformed lines are skipped.
 */
export function parseConntrack(text: string): ConntrackTcpEntry[] {
  const entries: ConntrackTcpEntry[] = [];
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields[2] !== 'tcp') continue;
    const kv: [string, string][] = [];
    for (const f of fields) {
      const eq = f.indexOf('=');
      if (eq > 0) kv.push([f.slice(0, eq), f.slice(eq + 1)]);
    }
    const pick = (key: string, nth: number): string | undefined => kv.filter(([k]) => k === key)[nth]?.[1];
    const os = addr(pick('src', 0), pick('sport', 0));
    const od = addr(pick('dst', 0), pick('dport', 0));
    const rs = addr(pick('src', 1), pick('sport', 1));
    const rd = addr(pick('dst', 1), pick('dport', 1));
    if (os === null || od === null || rs === null || rd === null) continue;
    entries.push({ original: { src: os, dst: od }, reply: { src: rs, dst: rd } });
  }
  return entries;
}

/**
 * The original destination of the redirected connection seen by the proxy as
 * peer `remote` on local port `localPort`: the entry whose reply tuple goes from
 * the proxy's port back to that peer.
 */
export function findOriginalDst(
  entries: readonly ConntrackTcpEntry[],
  remote: { address: string; port: number },
  localPort: number,
): SocketAddress | null {
  const remoteIp = canonicalIp(remote.address);
  for (const e of entries) {
    if (
      e.reply.dst.address === remoteIp &&
      e.reply.dst.port === remote.port &&
      e.reply.src.port === localPort
    ) {
      return e.original.dst;
    }
  }
  return null;
}
