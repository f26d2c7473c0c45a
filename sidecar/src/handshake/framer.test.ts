import { describe, expect, it } from 'vitest';
import { ProtocolDecodeError } from '../protocol/errors.js';
import { acceptBytes, declineBytes } from './fixtures.js';
import { ClcFramer } from './framer.js';

// Framing as smc_clc_wait_msg: peek the 8-byte header (struct smc_clc_msg_hdr), then read `length` bytes.
describe('CLC stream framer', () => {
  it('reassembles a message fed one byte at a time and keeps what follows', () => {
    const f = new ClcFramer();
    const stream = Buffer.concat([acceptBytes(), declineBytes(0x03010000), Buffer.from('tail')]);
    const out: Buffer[] = [];
    for (const byte of stream) {
      f.push(Uint8Array.of(byte));
      for (let m = f.next(); m !== null; m = f.next()) out.push(Buffer.from(m));
    }
    expect(out.map((m) => m.length)).toEqual([68, 28]);
    expect(f.pending).toBe(4);
    expect(f.takeRest().toString()).toBe('tail');
    expect(f.pending).toBe(0);
  });

  it('rejects a bad header as soon as it has 8 bytes', () => {
    const f = new ClcFramer();
    f.push(Buffer.from('GET / HT'));
    expect(() => f.next()).toThrow(ProtocolDecodeError);
  });
});
