import { describe, expect, it } from 'vitest';
import { encodeClcDecline } from './decline.js';
import { clientHelloVerdict, serverReplyVerdict } from './first-message.js';

const decline = encodeClcDecline({
  kind: 'decline',
  version: 1,
  eyecatcher: 'SMC-R',
  outOfSync: false,
  peerId: Buffer.alloc(8, 1),
  peerDiagnosis: 0x03030000,
  osType: 0,
  diagnosisV2: null,
});

describe('first CLC message verdicts', () => {
  it('takes a Decline (and an Accept type) behind either eyecatcher as CLC', () => {
    expect(serverReplyVerdict(decline)).toBe('clc');
    expect(serverReplyVerdict(Buffer.from([0xe2, 0xd4, 0xc3, 0xd9, 0x02]))).toBe('clc');
    expect(serverReplyVerdict(Buffer.from([0xe2, 0xd4, 0xc3, 0xc4, 0x04, 0, 0]))).toBe('clc');
  });

  it('waits while the bytes so far are a prefix of an eyecatcher', () => {
    expect(serverReplyVerdict(Buffer.alloc(0))).toBe('undecided');
    expect(serverReplyVerdict(decline.subarray(0, 1))).toBe('undecided');
    expect(serverReplyVerdict(decline.subarray(0, 4))).toBe('undecided');
    expect(serverReplyVerdict(Buffer.from([0xe2, 0xd4, 0xc3]))).toBe('undecided');
  });

  it('rejects anything else as soon as it differs', () => {
    expect(serverReplyVerdict(Buffer.from('HTTP/1.1 400 Bad Request\r\n'))).toBe('not-clc');
    expect(serverReplyVerdict(Buffer.from([0xe2, 0x00]))).toBe('not-clc');
    // Our own Proposal echoed back, or a Confirm: CLC bytes a server never sends first.
    expect(serverReplyVerdict(Buffer.from([0xe2, 0xd4, 0xc3, 0xd9, 0x01, 0, 0x2c]))).toBe('not-clc');
    expect(serverReplyVerdict(Buffer.from([0xe2, 0xd4, 0xc3, 0xd9, 0x03]))).toBe('not-clc');
  });

  it('expects a Proposal from a client, and nothing else', () => {
    expect(clientHelloVerdict(Buffer.from([0xe2, 0xd4, 0xc3, 0xd9, 0x01, 0, 0x2c]))).toBe('clc');
    expect(clientHelloVerdict(decline)).toBe('not-clc');
    expect(clientHelloVerdict(Buffer.from('GET / HTTP/1.1\r\n'))).toBe('not-clc');
    expect(clientHelloVerdict(Buffer.from([0xe2, 0xd4]))).toBe('undecided');
  });
});
