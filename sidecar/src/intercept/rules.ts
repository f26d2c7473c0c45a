import type { SidecarConfig } from '../config/schema.js';
import { type Cidr, parseCidr } from '../net/ip.js';

/** The dedicated nftables table; nothing else in the pod's netns is touched. */
export const NFT_FAMILY = 'inet';
export const NFT_TABLE = 'smc_sidecar';

export interface InterceptSpec {
  /** Sockets owned by this uid (the sidecar's) are never redirected. */
  sidecarUid: number;
  /** More uids whose sockets are not redirected outbound (another proxy's, e.g. Envoy's 1337). */
  excludeOutboundUids: readonly number[];
  outboundPort: number;
  inboundPort: number;
  /**
   * Ports the sidecar itself serves (SMC/CLC, metrics, health, and admin, which is loopback only);
   * never redirected inbound.
   */
  sidecarPorts: readonly number[];
  inbound: boolean;
  excludeOutboundPorts: readonly number[];
  excludeInboundPorts: readonly number[];
  excludeOutboundCidrs: readonly string[];
  excludeInboundCidrs: readonly string[];
  /**
   * `peers`: outbound redirects only to the addresses in the `peers4`/`peers6` sets, and inbound
   * skips sources in `plain4`/`plain6` (both kept by `smc intercept sync`); `all`: no sets.
   */
  redirect: 'all' | 'peers';
  /**
   * `policy.kernelPeers`: a kernel SMC-R peer is in no directory, so every destination may be one
   * and outbound stays `all`; the inbound plain set still applies (it names sidecar pods only).
   */
  kernelPeers: boolean;
}

export function interceptSpecFromConfig(cfg: SidecarConfig): InterceptSpec {
  const p = cfg.ports;
  return {
    sidecarUid: cfg.intercept.sidecarUid,
    excludeOutboundUids: cfg.intercept.excludeOutboundUids,
    outboundPort: p.outbound,
    inboundPort: p.inbound,
    sidecarPorts: [p.smc, p.metrics, p.health, p.admin, p.outbound, p.inbound],
    inbound: cfg.intercept.inbound,
    excludeOutboundPorts: cfg.intercept.excludeOutboundPorts,
    excludeInboundPorts: cfg.intercept.excludeInboundPorts,
    excludeOutboundCidrs: cfg.intercept.excludeOutboundCidrs,
    excludeInboundCidrs: cfg.intercept.excludeInboundCidrs,
    redirect: cfg.intercept.redirect,
    kernelPeers: cfg.policy.kernelPeers,
  };
}

/** One number or an nftables anonymous set of them, sorted and deduplicated (ports, uids). */
function portSet(ports: readonly number[]): string {
  const sorted = [...new Set(ports)].sort((a, b) => a - b);
  return sorted.length === 1 ? String(sorted[0]) : `{ ${sorted.join(', ')} }`;
}

function cidrSet(cidrs: readonly Cidr[]): string {
  const texts = [...new Set(cidrs.map((c) => c.text))].sort();
  return texts.length === 1 ? (texts[0] ?? '') : `{ ${texts.join(', ')} }`;
}

function cidrRules(cidrs: readonly string[], field: 'saddr' | 'daddr'): string[] {
  const parsed = cidrs.map(parseCidr);
  const v4 = parsed.filter((c) => c.family === 4);
  const v6 = parsed.filter((c) => c.family === 6);
  const rules: string[] = [];
  if (v4.length > 0) rules.push(`ip ${field} ${cidrSet(v4)} return`);
  if (v6.length > 0) rules.push(`ip6 ${field} ${cidrSet(v6)} return`);
  return rules;
}

/**
 * The chains' priority: one before dstnat (-100), where iptables' nat table and other proxies' rules
 * (Istio's, in iptables or nftables) sit. NAT chains run in priority order and the first that
 * redirects a connection decides it; among equal priorities the chain created last would run first,
 * so at -100 the order would depend on which init container ran last (docs/istio.md).
 */
export const NAT_PRIORITY = -101;

function chain(name: string, hook: 'output' | 'prerouting', rules: readonly string[]): string[] {
  return [
    `\tchain ${name} {`,
    `\t\ttype nat hook ${hook} priority ${NAT_PRIORITY}; policy accept;`,
    ...rules.map((r) => `\t\t${r}`),
    '\t}',
  ];
}

/** Outbound: every TCP connection the pod's apps open goes to the outbound listener. */
export function outboundRules(spec: InterceptSpec): string[] {
  const rules = [
    'meta l4proto != tcp return',
    `meta skuid ${portSet([spec.sidecarUid, ...spec.excludeOutboundUids])} return`,
    'oifname "lo" return',
    'ip daddr 127.0.0.0/8 return',
    'ip6 daddr ::1 return',
  ];
  if (spec.excludeOutboundPorts.length > 0)
    rules.push(`tcp dport ${portSet(spec.excludeOutboundPorts)} return`);
  rules.push(...cidrRules(spec.excludeOutboundCidrs, 'daddr'));
  if (spec.redirect === 'peers' && !spec.kernelPeers) {
    // `ip daddr` matches IPv4 packets only, `ip6 daddr` IPv6 ones: each family checks its own set.
    rules.push(`ip daddr != @${PEER_SETS.outbound4} return`, `ip6 daddr != @${PEER_SETS.outbound6} return`);
  }
  rules.push(`meta l4proto tcp redirect to :${spec.outboundPort}`);
  return rules;
}

/** Inbound: TCP arriving for the pod goes to the inbound listener, except the sidecar's own ports. */
export function inboundRules(spec: InterceptSpec): string[] {
  const rules = [
    'meta l4proto != tcp return',
    'iifname "lo" return',
    `tcp dport ${portSet(spec.sidecarPorts)} return`,
  ];
  if (spec.excludeInboundPorts.length > 0)
    rules.push(`tcp dport ${portSet(spec.excludeInboundPorts)} return`);
  rules.push(...cidrRules(spec.excludeInboundCidrs, 'saddr'));
  if (spec.redirect === 'peers') {
    rules.push(`ip saddr @${PEER_SETS.inboundPlain4} return`, `ip6 saddr @${PEER_SETS.inboundPlain6} return`);
  }
  rules.push(`meta l4proto tcp redirect to :${spec.inboundPort}`);
  return rules;
}

/**
 * The named sets of `redirect: peers`: destinations redirected outbound, and sources not redirected
 * inbound. Created empty by `intercept install`, so until the first sync nothing is redirected
 * outbound: a connection then goes straight to its destination over TCP, as a fallback would.
 */
export const PEER_SETS = {
  outbound4: 'peers4',
  outbound6: 'peers6',
  inboundPlain4: 'plain4',
  inboundPlain6: 'plain6',
} as const;

function setDeclarations(spec: InterceptSpec): string[] {
  if (spec.redirect !== 'peers') return [];
  return [
    `\tset ${PEER_SETS.outbound4} { type ipv4_addr; }`,
    `\tset ${PEER_SETS.outbound6} { type ipv6_addr; }`,
    `\tset ${PEER_SETS.inboundPlain4} { type ipv4_addr; }`,
    `\tset ${PEER_SETS.inboundPlain6} { type ipv6_addr; }`,
  ];
}

/** The addresses of the four sets, canonical, each family in its own list. */
export interface PeerSetContents {
  outbound4: readonly string[];
  outbound6: readonly string[];
  inboundPlain4: readonly string[];
  inboundPlain6: readonly string[];
}

/**
 * One `nft -f` transaction that replaces the four sets' contents: nftables applies a file all or
 * nothing, so a connection is matched against either the old sets or the new ones, never a mix.
 */
export function peerSetsScript(contents: PeerSetContents): string {
  const lines: string[] = [];
  for (const key of ['outbound4', 'outbound6', 'inboundPlain4', 'inboundPlain6'] as const) {
    const set = `${NFT_FAMILY} ${NFT_TABLE} ${PEER_SETS[key]}`;
    lines.push(`flush set ${set}`);
    const addresses = [...new Set(contents[key])].sort();
    if (addresses.length > 0) lines.push(`add element ${set} { ${addresses.join(', ')} }`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * A whole `nft -f` transaction that (re)creates the table atomically: the empty
 * declaration makes the delete succeed when the table is absent, so running it
 * twice yields the same ruleset.
 */
export function installScript(spec: InterceptSpec): string {
  const lines = [
    `table ${NFT_FAMILY} ${NFT_TABLE} {`,
    '}',
    `delete table ${NFT_FAMILY} ${NFT_TABLE}`,
    `table ${NFT_FAMILY} ${NFT_TABLE} {`,
    ...setDeclarations(spec),
    ...chain('output', 'output', outboundRules(spec)),
    ...(spec.inbound ? chain('prerouting', 'prerouting', inboundRules(spec)) : []),
    '}',
  ];
  return `${lines.join('\n')}\n`;
}

/** Removes the table; a no-op when it is not there. */
export function removeScript(): string {
  return `table ${NFT_FAMILY} ${NFT_TABLE} {\n}\ndelete table ${NFT_FAMILY} ${NFT_TABLE}\n`;
}
