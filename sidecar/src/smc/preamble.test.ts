import { describe, expect, it } from 'vitest';
import { SIDECAR_DEFAULT_PORTS } from '../../../operator/src/api/sidecar.js';
import {
  decodePreamble,
  encodePreamble,
  PREAMBLE_LENGTH,
  PreambleError,
  preamblePortRefusal,
} from './preamble.js';

describe('sidecar preamble', () => {
  it('round-trips', () => {
    const b = encodePreamble({ clc: true, port: 6379 });
    expect(b.byteLength).toBe(PREAMBLE_LENGTH);
    expect(b.toString('hex')).toBe('534d435001011 8eb'.replace(/ /g, ''));
    expect(decodePreamble(b)).toEqual({ clc: true, port: 6379 });
    expect(decodePreamble(encodePreamble({ clc: false, port: 80 }))).toEqual({ clc: false, port: 80 });
  });

  it('rejects anything else', () => {
    const good = encodePreamble({ clc: true, port: 80 });
    const bad = (mut: (b: Buffer) => void) => {
      const b = Buffer.from(good);
      mut(b);
      return () => decodePreamble(b);
    };
    expect(bad((b) => b.write('GET ', 0))).toThrow(PreambleError);
    expect(bad((b) => b.writeUInt8(2, 4))).toThrow(/version/);
    expect(bad((b) => b.writeUInt8(0x80, 5))).toThrow(/flags/);
    expect(bad((b) => b.writeUInt16BE(0, 6))).toThrow(/port 0/);
    expect(() => decodePreamble(good.subarray(0, 4))).toThrow(/need 8/);
    expect(() => encodePreamble({ clc: false, port: 70000 })).toThrow(PreambleError);
  });

  it("never lets a peer name the sidecar's own ports or excluded ones", () => {
    const ports = SIDECAR_DEFAULT_PORTS;
    for (const p of Object.values(ports)) expect(preamblePortRefusal(p, ports, [9090])).toMatch(/sidecar's/);
    expect(preamblePortRefusal(9090, ports, [9090])).toMatch(/excluded/);
    expect(preamblePortRefusal(8080, ports, [9090])).toBeNull();
  });
});
