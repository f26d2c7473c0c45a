import { isIPv4 } from 'node:net';
import type { EndpointDirectory } from '../directory/endpoint-directory.js';
import { type LocalIdentity, peerIneligibility } from '../policy/decide.js';
import type { PeerSetContents } from './rules.js';

/**
 * What `redirect: peers` redirects, from the directory and this pod's policy (pure).
 *
 * Outbound: the directory peers the sidecar would try SMC-R with (`decideOutbound` says upgrade),
 * and in Require mode every directory peer, so that one it may not upgrade with is refused by the
 * sidecar instead of reached over TCP. Whether an RDMA device is up is the sidecar's own affair:
 * the set assumes it is, and the sidecar falls back when it is not.
 *
 * Inbound: directory peers SMC-R is not allowed with (another tenant, VLAN or PKey, mode Disabled).
 * Their sidecars never offer us SMC-R, and a peer sidecar's CLC arrives on our SMC port, which is
 * never redirected: what they send to an application port is plain TCP, so it need not pass ours.
 */
export function peerSets(local: LocalIdentity, directory: EndpointDirectory): PeerSetContents {
  const sets = {
    outbound4: [] as string[],
    outbound6: [] as string[],
    inboundPlain4: [] as string[],
    inboundPlain6: [] as string[],
  };
  for (const [address, peer] of directory.entries()) {
    const v4 = isIPv4(address);
    const ineligible = peerIneligibility(local, peer, { rdmaAvailable: true }) !== null;
    if (!ineligible || local.mode === 'Require') (v4 ? sets.outbound4 : sets.outbound6).push(address);
    if (ineligible) (v4 ? sets.inboundPlain4 : sets.inboundPlain6).push(address);
  }
  return sets;
}

/** Equal contents (each list compared as a set), so that an unchanged directory applies nothing. */
export function samePeerSets(a: PeerSetContents, b: PeerSetContents): boolean {
  const same = (x: readonly string[], y: readonly string[]): boolean => {
    const sx = new Set(x);
    const sy = new Set(y);
    return sx.size === sy.size && [...sx].every((v) => sy.has(v));
  };
  return (
    same(a.outbound4, b.outbound4) &&
    same(a.outbound6, b.outbound6) &&
    same(a.inboundPlain4, b.inboundPlain4) &&
    same(a.inboundPlain6, b.inboundPlain6)
  );
}
