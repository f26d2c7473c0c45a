import { describe, expect, it } from 'vitest';
import { DECLINE_CODES, declineCodeInfo, describeDeclineCode, SMC_CLC_DECL } from './decline-codes.js';

// Values: net/smc/smc_clc.h SMC_CLC_DECL_* (TIMEOUT 0x02000000 from the same header in kernels up to 4.19).
describe('CLC decline reason codes', () => {
  it('match the kernel header values', () => {
    expect(SMC_CLC_DECL.MEM).toBe(0x01010000);
    expect(SMC_CLC_DECL.TIMEOUT_CL).toBe(0x02010000);
    expect(SMC_CLC_DECL.TIMEOUT_AL).toBe(0x02020000);
    expect(SMC_CLC_DECL.PEERNOSMC).toBe(0x03010000);
    expect(SMC_CLC_DECL.NOSMCDEV).toBe(0x03030000);
    expect(SMC_CLC_DECL.NOSMCRDEV).toBe(0x03030002);
    expect(SMC_CLC_DECL.MODEUNSUPP).toBe(0x03040000);
    expect(SMC_CLC_DECL.DIFFPREFIX).toBe(0x03070000);
    expect(SMC_CLC_DECL.SYNCERR).toBe(0x04000000);
    expect(SMC_CLC_DECL.PEERDECL).toBe(0x05000000);
    expect(SMC_CLC_DECL.INTERR).toBe(0x09990000);
    expect(SMC_CLC_DECL.ERR_REGBUF).toBe(0x09990003);
  });

  it('has a unique, described entry per code in numeric order', () => {
    const codes = DECLINE_CODES.map((c) => c.code);
    expect(new Set(codes).size).toBe(codes.length);
    expect([...codes].sort((a, b) => a - b)).toEqual(codes);
    for (const c of DECLINE_CODES) expect(c.description.length).toBeGreaterThan(3);
    expect(DECLINE_CODES).toHaveLength(Object.keys(SMC_CLC_DECL).length);
  });

  it('describes known, class-only and unknown codes', () => {
    expect(declineCodeInfo(0x03070000)?.name).toBe('DIFFPREFIX');
    expect(declineCodeInfo(0x12345678)).toBeNull();
    expect(describeDeclineCode(0x03070000)).toBe('IP prefix / subnet mismatch (SMC_CLC_DECL_DIFFPREFIX)');
    expect(describeDeclineCode(0x03990000)).toBe('configuration error (unlisted code 0x03990000)');
    expect(describeDeclineCode(0xdeadbeef)).toBe('unknown decline code 0xdeadbeef');
  });
});
