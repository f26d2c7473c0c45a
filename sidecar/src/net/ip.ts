import { isIP } from 'node:net';

export type IpFamily = 4 | 6;

/** A transport endpoint with a canonical address (see {@link canonicalIp}). */
export interface SocketAddress {
  address: string;
  port: number;
  family: IpFamily;
}

export class InvalidAddressError extends Error {
  constructor(
    readonly input: string,
    reason: string,
  ) {
    super(`invalid address "${input}": ${reason}`);
    this.name = 'InvalidAddressError';
  }
}

function parseV4(s: string): Buffer | null {
  if (isIP(s) !== 4) return null;
  return Buffer.from(s.split('.').map((p) => Number(p)));
}

function parseV6(s: string): Buffer | null {
  if (isIP(s) !== 6) return null;
  const zone = s.indexOf('%');
  let text = zone >= 0 ? s.slice(0, zone) : s;
  const out = Buffer.alloc(16);
  // A trailing dotted quad (e.g. ::ffff:10.0.0.1) becomes the last two groups.
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    const v4 = parseV4(tail);
    if (v4 === null) return null;
    text = `${text.slice(0, lastColon + 1)}${v4.readUInt16BE(0).toString(16)}:${v4.readUInt16BE(2).toString(16)}`;
  }
  const [head = '', rest] = text.split('::', 2) as [string, string | undefined];
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = rest === undefined || rest === '' ? [] : rest.split(':');
  const missing = 8 - headGroups.length - tailGroups.length;
  if (rest === undefined ? missing !== 0 : missing < 1) return null;
  const groups = [...headGroups, ...Array<string>(rest === undefined ? 0 : missing).fill('0'), ...tailGroups];
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

/** Parses an IPv4 or IPv6 literal into its 4 or 16 network-order bytes. */
export function parseIp(s: string): Buffer {
  const bytes = parseV4(s) ?? parseV6(s);
  if (bytes === null) throw new InvalidAddressError(s, 'not an IPv4 or IPv6 literal');
  return bytes;
}

/** RFC 5952 text of a 16-byte IPv6 address (no IPv4-mapped dotted form). */
export function formatIpv6(b: Buffer): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i));
  // RFC 5952: compress the longest run (length >= 2) of zero groups, the first one on a tie.
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestAt < 0) return hex.join(':');
  return `${hex.slice(0, bestAt).join(':')}::${hex.slice(bestAt + bestLen).join(':')}`;
}

export function formatIp(bytes: Buffer): string {
  if (bytes.length === 4) return Array.from(bytes).join('.');
  if (bytes.length === 16) return formatIpv6(bytes);
  throw new InvalidAddressError(bytes.toString('hex'), 'address must be 4 or 16 bytes');
}

const V4_MAPPED_PREFIX = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);

/**
 * One spelling per address: IPv4 dotted quad (IPv4-mapped IPv6 is unmapped,
 * as dual-stack sockets report it), IPv6 in RFC 5952 form without zone.
 */
export function canonicalIp(s: string): string {
  // Every connection asks for the same few addresses (its pod's, its peers'), several times.
  const known = canonicalCache.get(s);
  if (known !== undefined) return known;
  const b = parseIp(s);
  const canonical =
    b.length === 16 && b.subarray(0, 12).equals(V4_MAPPED_PREFIX) ? formatIp(b.subarray(12)) : formatIp(b);
  if (canonicalCache.size >= CANONICAL_CACHE_MAX) canonicalCache.clear();
  canonicalCache.set(s, canonical);
  return canonical;
}

/** Spellings already made canonical; cleared when full (a scan of many addresses stays bounded). */
const canonicalCache = new Map<string, string>();
const CANONICAL_CACHE_MAX = 4096;

export function ipFamily(s: string): IpFamily {
  const f = isIP(s);
  if (f === 4 || f === 6) return f;
  throw new InvalidAddressError(s, 'not an IPv4 or IPv6 literal');
}

export interface Cidr {
  family: IpFamily;
  network: Buffer;
  prefixLength: number;
  /** Canonical text, network address masked: "10.0.0.0/8". */
  text: string;
}

/** Parses "a.b.c.d/n", "x::/n" or a bare address (a host route). Host bits are masked off. */
export function parseCidr(s: string): Cidr {
  const slash = s.indexOf('/');
  const addr = slash < 0 ? s : s.slice(0, slash);
  const bytes = parseIp(addr);
  const max = bytes.length * 8;
  const lenText = slash < 0 ? String(max) : s.slice(slash + 1);
  if (!/^\d{1,3}$/.test(lenText) || Number(lenText) > max) {
    throw new InvalidAddressError(s, `prefix length must be 0..${max}`);
  }
  const prefixLength = Number(lenText);
  const network = Buffer.from(bytes);
  for (let bit = prefixLength; bit < max; bit++) {
    network[bit >> 3] = (network[bit >> 3] ?? 0) & ~(0x80 >> (bit & 7));
  }
  const family: IpFamily = bytes.length === 4 ? 4 : 6;
  return { family, network, prefixLength, text: `${formatIp(network)}/${prefixLength}` };
}

export function cidrContains(cidr: Cidr, ip: string): boolean {
  const b = parseIp(canonicalIp(ip));
  if (b.length !== cidr.network.length) return false;
  for (let bit = 0; bit < cidr.prefixLength; bit++) {
    const mask = 0x80 >> (bit & 7);
    if (((b[bit >> 3] ?? 0) & mask) !== ((cidr.network[bit >> 3] ?? 0) & mask)) return false;
  }
  return true;
}

export function formatSocketAddress(a: { address: string; port: number }): string {
  return a.address.includes(':') ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}
