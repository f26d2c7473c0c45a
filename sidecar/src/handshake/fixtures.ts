import { type ClcAcceptConfirm, encodeClcAcceptConfirm } from '../protocol/clc/accept-confirm.js';
import { type ClcDecline, encodeClcDecline } from '../protocol/clc/decline.js';
import type { ClcMessage } from '../protocol/clc/message.js';
import type { HandshakeAction, LocalRdmaParams } from './types.js';

/* Shared fixtures for the handshake tests. */

export const CLIENT_ID = Buffer.from('c1c1c1c1c1c1c1c1', 'hex');
export const SERVER_ID = Buffer.from('5e5e5e5e5e5e5e5e', 'hex');

export const CLIENT_RDMA: LocalRdmaParams = {
  gid: Buffer.from('fe800000000000000000000000000001', 'hex'),
  mac: Buffer.from('020000000001', 'hex'),
  qpn: 0x101,
  rmbRkey: 0x1111,
  rmbeIndex: 1,
  rmbeAlertToken: 0xc0000001,
  rmbeSize: 2,
  qpMtu: 5,
  rmbVirtualAddress: 0x7f0000100000n,
  initialPsn: 0x010203,
};

export const SERVER_RDMA: LocalRdmaParams = {
  gid: Buffer.from('fe800000000000000000000000000002', 'hex'),
  mac: Buffer.from('020000000002', 'hex'),
  qpn: 0x202,
  rmbRkey: 0x2222,
  rmbeIndex: 1,
  rmbeAlertToken: 0x50000002,
  rmbeSize: 1,
  qpMtu: 3,
  rmbVirtualAddress: 0x7f0000200000n,
  initialPsn: 0x040506,
};

export function acceptFrom(server: LocalRdmaParams, firstContact = true): ClcAcceptConfirm {
  return { kind: 'accept', version: 1, firstContact, peerId: SERVER_ID, ...server };
}

export function acceptBytes(overrides: Partial<ClcAcceptConfirm> = {}): Buffer {
  return encodeClcAcceptConfirm({ ...acceptFrom(SERVER_RDMA), ...overrides });
}

export function confirmBytes(overrides: Partial<ClcAcceptConfirm> = {}): Buffer {
  return encodeClcAcceptConfirm({
    kind: 'confirm',
    version: 1,
    firstContact: true,
    peerId: CLIENT_ID,
    ...CLIENT_RDMA,
    qpMtu: 3,
    ...overrides,
  });
}

export function declineBytes(code: number, outOfSync = false, from = SERVER_ID): Buffer {
  const d: ClcDecline = {
    kind: 'decline',
    version: 1,
    eyecatcher: 'SMC-R',
    outOfSync,
    peerId: from,
    peerDiagnosis: code,
    osType: 0,
    diagnosisV2: null,
  };
  return encodeClcDecline(d);
}

export function sent(actions: HandshakeAction[]): ClcMessage[] {
  return actions.flatMap((a) => (a.type === 'send' ? [a.message] : []));
}

export function fallbackOf(actions: HandshakeAction[]): Extract<HandshakeAction, { type: 'fallback' }> {
  const f = actions.find((a) => a.type === 'fallback');
  if (f === undefined || f.type !== 'fallback')
    throw new Error(`no fallback in ${JSON.stringify(actions.map((a) => a.type))}`);
  return f;
}

/** The Decline we sent, checked to carry `code`, plus the matching fallback. */
export function declinedWith(actions: HandshakeAction[]): {
  code: number;
  outOfSync: boolean;
  origin: string;
} {
  const messages = sent(actions);
  const decline = messages.find((m) => m.kind === 'decline');
  if (decline === undefined || decline.kind !== 'decline') throw new Error('no Decline sent');
  const f = fallbackOf(actions);
  if (f.reasonCode !== decline.peerDiagnosis) throw new Error('fallback code differs from the Decline');
  return { code: decline.peerDiagnosis, outOfSync: decline.outOfSync, origin: f.origin };
}
