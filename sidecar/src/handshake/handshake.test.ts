import { describe, expect, it } from 'vitest';
import { SMC_CLC_DECL } from '../protocol/clc/decline-codes.js';
import { ClcClient } from './client.js';
import { CLIENT_ID, CLIENT_RDMA, SERVER_ID, SERVER_RDMA } from './fixtures.js';
import type { ClcMachine } from './machine.js';
import { ipv4ProposalArea } from './prefix-match.js';
import { ClcServer } from './server.js';
import type { HandshakeAction, PeerPolicy } from './types.js';

// Client and server machines driven against each other, bytes only, as two
// sidecars would over the TCP connection (RFC 7609 "SMC-R rendezvous" flow).
function pump(
  client: ClcMachine,
  server: ClcMachine,
  chunk: number,
): { client: HandshakeAction[]; server: HandshakeAction[] } {
  const log = { client: [] as HandshakeAction[], server: [] as HandshakeAction[] };
  log.server.push(...server.handle({ type: 'start' }));
  let fromClient = client.handle({ type: 'start' });
  log.client.push(...fromClient);
  // deliver every 'send' to the other side in `chunk`-byte pieces until nothing moves
  for (let round = 0; round < 10; round++) {
    const fromServer: HandshakeAction[] = [];
    for (const a of fromClient) {
      if (a.type !== 'send') continue;
      for (let i = 0; i < a.bytes.length; i += chunk) {
        fromServer.push(...server.handle({ type: 'data', bytes: a.bytes.subarray(i, i + chunk) }));
      }
    }
    log.server.push(...fromServer);
    const next: HandshakeAction[] = [];
    for (const a of fromServer) {
      if (a.type !== 'send') continue;
      for (let i = 0; i < a.bytes.length; i += chunk) {
        next.push(...client.handle({ type: 'data', bytes: a.bytes.subarray(i, i + chunk) }));
      }
    }
    log.client.push(...next);
    fromClient = next;
    if (fromServer.length === 0 && next.length === 0) break;
  }
  return log;
}

function pair(serverPolicy?: PeerPolicy): { client: ClcClient; server: ClcServer } {
  return {
    client: new ClcClient({
      peerId: CLIENT_ID,
      rdma: CLIENT_RDMA,
      peerIndicatedSmc: true,
      ipArea: ipv4ProposalArea(Uint8Array.of(192, 168, 7, 10), 24),
      firstContact: true,
    }),
    server: new ClcServer({
      peerId: SERVER_ID,
      rdma: SERVER_RDMA,
      peerIndicatedSmc: true,
      localAddresses: [{ family: 'ipv4', address: Uint8Array.of(192, 168, 7, 20), prefixLength: 24 }],
      firstContact: true,
      ...(serverPolicy === undefined ? {} : { policy: serverPolicy }),
    }),
  };
}

describe('client and server machines together', () => {
  for (const chunk of [1, 3, 7, 68, 1000]) {
    it(`agree on the link when bytes arrive in ${chunk}-byte pieces`, () => {
      const { client, server } = pair();
      const log = pump(client, server, chunk);
      const cp = log.client.find((a) => a.type === 'proceed');
      const sp = log.server.find((a) => a.type === 'proceed');
      if (cp?.type !== 'proceed' || sp?.type !== 'proceed') throw new Error('both sides must proceed');
      expect(cp.link.qpMtu).toBe(sp.link.qpMtu);
      expect(cp.link.peer.qpn).toBe(SERVER_RDMA.qpn);
      expect(sp.link.peer.qpn).toBe(CLIENT_RDMA.qpn);
      expect(cp.link.peer.rmbeAlertToken).toBe(SERVER_RDMA.rmbeAlertToken);
      expect(sp.link.peer.rmbVirtualAddress).toBe(CLIENT_RDMA.rmbVirtualAddress);
      expect(client.handle({ type: 'link-up' })).toEqual([{ type: 'established' }]);
      expect(server.handle({ type: 'link-up' })).toEqual([{ type: 'established' }]);
    });
  }

  it('both fall back with the same code when the server declines', () => {
    const { client, server } = pair(() => ({ allow: false, reasonCode: SMC_CLC_DECL.CNFERR }));
    const log = pump(client, server, 5);
    const sf = log.server.find((a) => a.type === 'fallback');
    const cf = log.client.find((a) => a.type === 'fallback');
    expect(sf).toMatchObject({ origin: 'local', reasonCode: SMC_CLC_DECL.CNFERR });
    expect(cf).toMatchObject({ origin: 'peer', reasonCode: SMC_CLC_DECL.CNFERR });
    expect(client.state).toBe('fallback');
    expect(server.state).toBe('fallback');
  });
});
