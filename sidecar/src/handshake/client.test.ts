import { describe, expect, it } from 'vitest';
import { decodeClcMessage } from '../protocol/clc/message.js';
import { SMC_CLC_DECL } from '../protocol/clc/decline-codes.js';
import { ClcClient, type ClcClientOptions } from './client.js';
import {
  acceptBytes,
  CLIENT_ID,
  CLIENT_RDMA,
  declineBytes,
  declinedWith,
  fallbackOf,
  SERVER_RDMA,
  sent,
} from './fixtures.js';
import { ipv4ProposalArea } from './prefix-match.js';

// Client flow per RFC 7609 "SMC-R rendezvous" and kernel net/smc/af_smc.c
// (__smc_connect, smc_connect_rdma); decline codes from net/smc/smc_clc.h.
function client(overrides: Partial<ClcClientOptions> = {}): ClcClient {
  return new ClcClient({
    peerId: CLIENT_ID,
    rdma: CLIENT_RDMA,
    peerIndicatedSmc: true,
    ipArea: ipv4ProposalArea(Uint8Array.of(10, 1, 2, 3), 24),
    firstContact: true,
    ...overrides,
  });
}

function started(overrides: Partial<ClcClientOptions> = {}): ClcClient {
  const c = client(overrides);
  c.handle({ type: 'start' });
  return c;
}

describe('CLC client', () => {
  it('proposes, accepts the Accept, confirms and proceeds to link setup', () => {
    const c = client();
    const a1 = c.handle({ type: 'start' });
    expect(c.state).toBe('awaiting-accept');
    const [proposalAction, awaitAction] = a1;
    expect(proposalAction?.type).toBe('send');
    if (proposalAction?.type !== 'send') throw new Error('unreachable');
    expect(decodeClcMessage(proposalAction.bytes)).toEqual(proposalAction.message);
    expect(proposalAction.message).toMatchObject({
      kind: 'proposal',
      version: 1,
      peerId: CLIENT_ID,
      gid: CLIENT_RDMA.gid,
      ipArea: { ipv4Subnet: Buffer.from([10, 1, 2, 0]), ipv4PrefixLength: 24 },
    });
    expect(awaitAction).toEqual({ type: 'await', stage: 'accept', timeoutMs: 6000 });

    // the Accept arrives split across reads
    const accept = acceptBytes();
    expect(c.handle({ type: 'data', bytes: accept.subarray(0, 5) })).toEqual([]);
    const a2 = c.handle({ type: 'data', bytes: accept.subarray(5) });
    expect(c.state).toBe('awaiting-link');
    const [confirm] = sent(a2);
    expect(confirm).toMatchObject({ kind: 'confirm', firstContact: true, qpn: CLIENT_RDMA.qpn, qpMtu: 3 });
    const proceed = a2.find((a) => a.type === 'proceed');
    expect(proceed).toMatchObject({
      type: 'proceed',
      link: {
        role: 'client',
        firstContact: true,
        qpMtu: 3,
        peer: { qpn: SERVER_RDMA.qpn, rmbRkey: SERVER_RDMA.rmbRkey, rmbeSizeBytes: 32768 },
      },
    });
    expect(a2.at(-1)).toEqual({ type: 'await', stage: 'link', timeoutMs: 5000 });

    expect(c.handle({ type: 'link-up' })).toEqual([{ type: 'established' }]);
    expect(c.state).toBe('established');
    expect(c.handle({ type: 'data', bytes: Buffer.from('x') })[0]?.type).toBe('ignored');
  });

  it('falls back without CLC when the peer did not indicate SMC or we have no device', () => {
    const noOption = client({ peerIndicatedSmc: false }).handle({ type: 'start' });
    expect(sent(noOption)).toEqual([]);
    expect(fallbackOf(noOption).reasonCode).toBe(SMC_CLC_DECL.PEERNOSMC);
    const noDevice = client({ rdma: null }).handle({ type: 'start' });
    expect(sent(noDevice)).toEqual([]);
    expect(fallbackOf(noDevice).reasonCode).toBe(SMC_CLC_DECL.NOSMCRDEV);
  });

  it('falls back with the peer code on a Decline, handing on the bytes behind it', () => {
    const c = started();
    const actions = c.handle({
      type: 'data',
      bytes: Buffer.concat([declineBytes(SMC_CLC_DECL.DIFFPREFIX), Buffer.from('GET / HTTP/1.1')]),
    });
    expect(sent(actions)).toEqual([]);
    const f = fallbackOf(actions);
    expect(f).toMatchObject({
      origin: 'peer',
      reasonCode: SMC_CLC_DECL.DIFFPREFIX,
      terminateLinkGroup: false,
    });
    expect(f.residual.toString()).toBe('GET / HTTP/1.1');
    expect(f.description).toContain('IP prefix / subnet mismatch');
    expect(c.state).toBe('fallback');
  });

  it('tears down the link group when the peer declines out of sync', () => {
    const f = fallbackOf(started().handle({ type: 'data', bytes: declineBytes(SMC_CLC_DECL.SYNCERR, true) }));
    expect(f.terminateLinkGroup).toBe(true);
  });

  it('declines an Accept the policy refuses, with the policy code', () => {
    const c = started({
      policy: (peer) =>
        peer.peerId.equals(Buffer.alloc(8, 0x5e))
          ? { allow: false, reasonCode: SMC_CLC_DECL.GETVLANERR, reason: 'VLAN mismatch' }
          : { allow: true },
    });
    const result = declinedWith(c.handle({ type: 'data', bytes: acceptBytes() }));
    expect(result).toEqual({ code: SMC_CLC_DECL.GETVLANERR, outOfSync: false, origin: 'local' });
  });

  it('declines with SYNCERR (out of sync) when the server reuses a link group we lack', () => {
    const result = declinedWith(
      started().handle({ type: 'data', bytes: acceptBytes({ firstContact: false }) }),
    );
    expect(result).toEqual({ code: SMC_CLC_DECL.SYNCERR, outOfSync: true, origin: 'local' });
    // a client that does have the link group accepts the reuse
    const reuse = started({ firstContact: false }).handle({
      type: 'data',
      bytes: acceptBytes({ firstContact: false }),
    });
    expect(reuse.find((a) => a.type === 'proceed')).toMatchObject({ link: { firstContact: false } });
  });

  it('reuses only the link it has: another QP in the Accept gets NOSRVLINK', () => {
    const reuse = { peerQpn: SERVER_RDMA.qpn, peerGid: SERVER_RDMA.gid, peerMac: SERVER_RDMA.mac };
    const ok = started({ firstContact: false, reuse }).handle({
      type: 'data',
      bytes: acceptBytes({ firstContact: false }),
    });
    expect(ok.find((a) => a.type === 'proceed')).toMatchObject({ link: { firstContact: false } });
    const other = started({ firstContact: false, reuse: { ...reuse, peerQpn: SERVER_RDMA.qpn + 1 } });
    const result = declinedWith(other.handle({ type: 'data', bytes: acceptBytes({ firstContact: false }) }));
    expect(result).toEqual({ code: SMC_CLC_DECL.NOSRVLINK, outOfSync: false, origin: 'local' });
  });

  it('follows a server that starts a new link group although we offered to reuse one', () => {
    const fresh = { ...CLIENT_RDMA, qpn: CLIENT_RDMA.qpn + 7, rmbRkey: 0x4242 };
    let created = 0;
    const c = started({
      firstContact: false,
      rdmaForFirstContact: () => {
        created++;
        return fresh;
      },
    });
    const actions = c.handle({ type: 'data', bytes: acceptBytes({ firstContact: true }) });
    expect(created).toBe(1);
    expect(sent(actions)[0]).toMatchObject({
      kind: 'confirm',
      firstContact: true,
      qpn: fresh.qpn,
      rmbRkey: 0x4242,
    });
    expect(actions.find((a) => a.type === 'proceed')).toMatchObject({
      link: { firstContact: true, local: { qpn: fresh.qpn } },
    });
    // no way to create a new link: the Accept is declined, nothing proceeds
    const none = started({ firstContact: false, rdmaForFirstContact: () => null });
    const result = declinedWith(none.handle({ type: 'data', bytes: acceptBytes({ firstContact: true }) }));
    expect(result.code).toBe(SMC_CLC_DECL.INTERR);
  });

  it('declines an Accept with an impossible QP MTU', () => {
    expect(declinedWith(started().handle({ type: 'data', bytes: acceptBytes({ qpMtu: 0 }) })).code).toBe(
      SMC_CLC_DECL.CNFERR,
    );
  });

  it('declines malformed input with SYNCERR and a version it cannot speak with VERSMISMAT', () => {
    const badEyecatcher = Buffer.from(acceptBytes());
    badEyecatcher[0] = 0;
    expect(declinedWith(started().handle({ type: 'data', bytes: badEyecatcher })).code).toBe(
      SMC_CLC_DECL.SYNCERR,
    );
    const badTrailer = Buffer.from(acceptBytes());
    badTrailer[67] = 0;
    expect(declinedWith(started().handle({ type: 'data', bytes: badTrailer })).code).toBe(
      SMC_CLC_DECL.SYNCERR,
    );
    const v2 = Buffer.from(acceptBytes());
    v2[7] = 0x28;
    expect(declinedWith(started().handle({ type: 'data', bytes: v2 })).code).toBe(SMC_CLC_DECL.VERSMISMAT);
    const garbage = Buffer.from('HTTP/1.1 400 Bad Request\r\n');
    const f = fallbackOf(started().handle({ type: 'data', bytes: garbage }));
    expect(f.residual).toHaveLength(0);
  });

  it('declines an unexpected message type with SYNCERR', () => {
    const confirmFromServer = Buffer.from(acceptBytes());
    confirmFromServer[4] = 3; // a Confirm where an Accept belongs
    expect(declinedWith(started().handle({ type: 'data', bytes: confirmFromServer })).code).toBe(
      SMC_CLC_DECL.SYNCERR,
    );
  });

  it('declines data that arrives before the Proposal', () => {
    const c = client();
    expect(declinedWith(c.handle({ type: 'data', bytes: acceptBytes() })).code).toBe(SMC_CLC_DECL.SYNCERR);
  });

  it('times out at each stage with the kernel timeout codes', () => {
    const atAccept = started();
    atAccept.handle({ type: 'data', bytes: acceptBytes().subarray(0, 20) }); // a partial message does not help
    expect(declinedWith(atAccept.handle({ type: 'timeout' })).code).toBe(SMC_CLC_DECL.TIMEOUT);

    const atLink = started();
    atLink.handle({ type: 'data', bytes: acceptBytes() });
    expect(declinedWith(atLink.handle({ type: 'timeout' })).code).toBe(SMC_CLC_DECL.TIMEOUT_CL);

    const addLink = started();
    addLink.handle({ type: 'data', bytes: acceptBytes() });
    expect(
      declinedWith(addLink.handle({ type: 'link-failed', reasonCode: SMC_CLC_DECL.TIMEOUT_AL })).code,
    ).toBe(SMC_CLC_DECL.TIMEOUT_AL);
  });

  it('follows a Decline the server sends during link setup', () => {
    const c = started();
    c.handle({ type: 'data', bytes: acceptBytes() });
    const f = fallbackOf(c.handle({ type: 'data', bytes: declineBytes(SMC_CLC_DECL.TIMEOUT_CL) }));
    expect(f).toMatchObject({ origin: 'peer', reasonCode: SMC_CLC_DECL.TIMEOUT_CL });
  });

  it('aborts when TCP closes, and ignores events that do not fit the state', () => {
    expect(client().handle({ type: 'timeout' })[0]?.type).toBe('ignored');
    expect(client().handle({ type: 'link-failed', reasonCode: 1 })[0]?.type).toBe('ignored');
    const c = started();
    expect(c.handle({ type: 'link-up' })[0]?.type).toBe('ignored');
    expect(c.handle({ type: 'start' })[0]?.type).toBe('ignored');
    expect(c.handle({ type: 'closed' })).toEqual([{ type: 'abort', reason: expect.any(String) }]);
    expect(c.state).toBe('aborted');
    expect(c.handle({ type: 'timeout' })[0]?.type).toBe('ignored');
  });

  it('rejects a peer id of the wrong size', () => {
    expect(() => client({ peerId: Buffer.alloc(4) })).toThrow(RangeError);
  });
});
