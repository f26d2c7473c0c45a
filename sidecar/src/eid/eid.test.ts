import { describe, expect, it } from 'vitest';
import { expectDecodeError } from '../protocol/testing/expect-decode-error.js';
import { fuzzDecoder } from '../protocol/testing/fuzz.js';
import { Prng } from '../protocol/testing/prng.js';
import { TENANT_UEID_PREFIX, tenantUeid, tenantUeidBytes } from './tenant.js';
import {
  decodeUeid,
  decodeUeidNetlinkAttribute,
  isValidUeid,
  sameEid,
  UEID_LENGTH,
  ueidNetlinkAttribute,
  ueidProblem,
  ueidToBytes,
} from './ueid.js';

// UEID rules: smc_clc_ueid_valid() and smc_nl_add_ueid() in net/smc/smc_clc.c
// (32 bytes, A-Z 0-9 '.' '-', first alphanumeric, blank padding only,
// nla_len == SMC_MAX_EID_LEN + 1); SMC_MAX_EID_LEN in include/uapi/linux/smc.h.

/** smc_clc_ueid_valid() restricted to ASCII, written as the kernel loop reads. */
function kernelValid(ueid: Uint8Array): boolean {
  const isspace = (c: number) => c === 0x20 || (c >= 0x09 && c <= 0x0d);
  const isalnum = (c: number) =>
    (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
  const islower = (c: number) => c >= 0x61 && c <= 0x7a;
  let end = 32;
  while (--end >= 0 && isspace(ueid[end] ?? 0));
  if (end < 0) return false;
  const first = ueid[0] ?? 0;
  if (!isalnum(first) || islower(first)) return false;
  for (let i = 0; i <= end; i++) {
    const c = ueid[i] ?? 0;
    if ((!isalnum(c) || islower(c)) && c !== 0x2e && c !== 0x2d) return false;
  }
  return true;
}

describe('UEID validity (smc_clc_ueid_valid)', () => {
  it('accepts A-Z, 0-9, "." and "-" with blank padding', () => {
    for (const ok of [
      'A',
      '0',
      'SMC-BPFTEST-UEID',
      'A.B-C',
      'X'.repeat(32),
      'SMCK8S-CXMPNPHNVLUHEVQUSIW5TBKMT',
    ]) {
      expect(ueidProblem(ok)).toBeNull();
      expect(kernelValid(ueidToBytes(ok))).toBe(true);
    }
  });

  it('refuses what the kernel refuses, naming the problem', () => {
    expect(ueidProblem('')).toMatch(/blank/);
    expect(ueidProblem(' '.repeat(32))).toMatch(/blank/);
    expect(ueidProblem('-ABC')).toMatch(/start/);
    expect(ueidProblem('.ABC')).toMatch(/start/);
    expect(ueidProblem('abc')).toMatch(/start/);
    expect(ueidProblem('Abc')).toMatch(/character 1/);
    expect(ueidProblem('A B')).toMatch(/character 1/); // blanks only pad the end
    expect(ueidProblem('A_B')).toMatch(/character 1/);
    expect(ueidProblem('X'.repeat(33))).toMatch(/longer/);
    expect(ueidProblem('ÄBC')).toMatch(/ASCII/);
    expect(ueidProblem(Buffer.alloc(31, 0x41))).toMatch(/32 bytes/);
    // NUL padding is not blank padding: the kernel would refuse "ABC\0\0..."
    const nulPadded = Buffer.alloc(32);
    nulPadded.write('ABC');
    expect(isValidUeid(nulPadded)).toBe(false);
    expect(kernelValid(nulPadded)).toBe(false);
  });

  it('agrees with the kernel rule on random 32-byte inputs drawn from the interesting alphabet', () => {
    const g = new Prng(5);
    const alphabet = Buffer.from('AZ09az.-_ \0\t/');
    let valid = 0;
    for (let i = 0; i < 20_000; i++) {
      const b = Buffer.alloc(32, 0x20);
      const n = g.int(0, 32);
      for (let j = 0; j < n; j++) b[j] = g.pick([...alphabet, 0x41, 0x42, 0x31]);
      const ours = isValidUeid(b);
      // we are the ASCII subset: stricter only for the control blanks the kernel also trims
      if (ours) expect(kernelValid(b)).toBe(true);
      else if (!b.includes(0x09)) expect(kernelValid(b)).toBe(false);
      if (ours) valid++;
    }
    expect(valid).toBeGreaterThan(300);
  });

  it('pads to the 32-byte table form and the 33-byte netlink attribute', () => {
    const bytes = ueidToBytes('SMC-BPFTEST-UEID');
    expect(bytes).toEqual(Buffer.from('SMC-BPFTEST-UEID                ', 'latin1'));
    const attr = ueidNetlinkAttribute('SMC-BPFTEST-UEID');
    expect(attr).toHaveLength(33);
    expect(attr.subarray(0, 32)).toEqual(bytes);
    expect(attr[32]).toBe(0);
    expect(decodeUeidNetlinkAttribute(attr)).toBe('SMC-BPFTEST-UEID');
    expect(decodeUeid(bytes)).toBe('SMC-BPFTEST-UEID');
    expect(sameEid(bytes, ueidToBytes('SMC-BPFTEST-UEID'))).toBe(true);
    expect(sameEid(bytes, ueidToBytes('SMC-BPFTEST-UEIE'))).toBe(false);
    expect(() => ueidToBytes('lower')).toThrow(RangeError);
  });

  it('decoders reject malformed EIDs by field', () => {
    expectDecodeError(() => decodeUeid(Buffer.alloc(31, 0x41)), 'truncated', 'eid');
    expectDecodeError(() => decodeUeid(Buffer.alloc(33, 0x41)), 'length', 'eid');
    expectDecodeError(() => decodeUeid(Buffer.alloc(32)), 'range', 'eid');
    expectDecodeError(() => decodeUeidNetlinkAttribute(Buffer.alloc(33, 0x41)), 'range', 'eid');
    expectDecodeError(() => decodeUeidNetlinkAttribute(Buffer.alloc(32, 0x41)), 'truncated', 'eid');
  });

  it('fuzz: 100000 mutated EIDs decode or throw ProtocolDecodeError', () => {
    const g = new Prng(77);
    const seeds = [
      ueidToBytes('SMCK8S-CXMPNPHNVLUHEVQUSIW5TBKMT'),
      ueidToBytes('A.B'),
      ueidNetlinkAttribute('SMC-BPFTEST-UEID'),
    ];
    const result = fuzzDecoder(g, 100_000, seeds, decodeUeid, (text, input) => {
      if (!ueidToBytes(text).equals(input)) throw new Error('decoded EID does not re-encode');
    });
    expect(result.decoded).toBeGreaterThan(100);
    const attrs = fuzzDecoder(g, 100_000, seeds, decodeUeidNetlinkAttribute);
    expect(attrs.rejected).toBeGreaterThan(1000);
  });
});

describe('tenant UEIDs', () => {
  const A = { cluster: 'prod-eu-1', namespace: 'payments', tenant: 'team-a' };

  it('are stable: fixed vectors (sha256 + RFC 4648 base32, computed independently)', () => {
    expect(tenantUeid(A)).toBe('SMCK8S-CXMPNPHNVLUHEVQUSIW5TBKMT');
    expect(tenantUeid({ ...A, tenant: 'team-b' })).toBe('SMCK8S-RH5QDUNFW3W2ZESLDN7OJEGPJ');
    expect(
      tenantUeid({
        cluster: '7c0f3a52-1d3e-4c1a-9a55-2f7f5e0b9a10',
        namespace: 'default',
        tenant: 'default',
      }),
    ).toBe('SMCK8S-ZHQJHC7REQUIZW5QPXTSA5IM2');
    expect(tenantUeid({ ...A })).toBe(tenantUeid(A));
  });

  it('are exactly 32 valid, uppercase, printable characters needing no padding', () => {
    const g = new Prng(9);
    for (let i = 0; i < 2000; i++) {
      const id = {
        cluster: g.bytes(g.int(1, 20)).toString('base64'),
        namespace: `ns-${g.nextU32()}`,
        tenant: g.pick(['a', 'team-b', 'Ünïcode', 'x'.repeat(253)]),
      };
      const eid = tenantUeid(id);
      expect(eid).toHaveLength(UEID_LENGTH);
      expect(eid.startsWith(TENANT_UEID_PREFIX)).toBe(true);
      expect(eid).toMatch(/^[A-Z0-9.-]{32}$/);
      expect(isValidUeid(eid)).toBe(true);
      expect(kernelValid(tenantUeidBytes(id))).toBe(true);
      expect(tenantUeidBytes(id).toString('latin1')).toBe(eid);
    }
  });

  it('differ for distinct tenants, including field boundaries that concatenate alike', () => {
    const seen = new Map<string, string>();
    const add = (id: { cluster: string; namespace: string; tenant: string }) => {
      const key = JSON.stringify(id);
      const eid = tenantUeid(id);
      const before = seen.get(eid);
      if (before !== undefined && before !== key) throw new Error(`${before} and ${key} share ${eid}`);
      seen.set(eid, key);
    };
    for (let c = 0; c < 5; c++)
      for (let n = 0; n < 40; n++)
        for (let t = 0; t < 50; t++) add({ cluster: `c${c}`, namespace: `n${n}`, tenant: `t${t}` });
    expect(seen.size).toBe(10_000);
    expect(tenantUeid({ cluster: 'a', namespace: 'b-c', tenant: 'd' })).not.toBe(
      tenantUeid({ cluster: 'a-b', namespace: 'c', tenant: 'd' }),
    );
    expect(tenantUeid({ cluster: 'x', namespace: 'ab', tenant: 'c' })).not.toBe(
      tenantUeid({ cluster: 'x', namespace: 'a', tenant: 'bc' }),
    );
  });

  it('need every field', () => {
    expect(() => tenantUeid({ ...A, tenant: '' })).toThrow(/tenant/);
    expect(() => tenantUeid({ ...A, cluster: '' })).toThrow(/cluster/);
  });
});
