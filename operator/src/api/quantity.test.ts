import { describe, expect, it } from 'vitest';
import { quantityValue } from './quantity.js';

describe('quantityValue', () => {
  it('reads binary suffixes', () => {
    expect(quantityValue('16Ki')).toBe(16 * 1024);
    expect(quantityValue('64Mi')).toBe(64 * 1024 ** 2);
    expect(quantityValue('1Gi')).toBe(1024 ** 3);
    expect(quantityValue('1.5Gi')).toBe(1.5 * 1024 ** 3);
    expect(quantityValue('2Ti')).toBe(2 * 1024 ** 4);
  });

  it('reads decimal suffixes and exponents', () => {
    expect(quantityValue('500M')).toBe(500_000_000);
    expect(quantityValue('1k')).toBe(1000);
    expect(quantityValue('2G')).toBe(2_000_000_000);
    expect(quantityValue('1e6')).toBe(1_000_000);
    expect(quantityValue('1E+3')).toBe(1000);
    expect(quantityValue('12.5e1')).toBe(125);
    // `E` alone is exa, `E` with digits an exponent.
    expect(quantityValue('1E3')).toBe(1000);
  });

  it('reads plain integers, as text or as a number (int-or-string)', () => {
    expect(quantityValue('1048576')).toBe(1048576);
    expect(quantityValue('+42')).toBe(42);
    expect(quantityValue(268435456)).toBe(268435456);
    expect(quantityValue('0')).toBe(0);
    expect(quantityValue(0)).toBe(0);
  });

  it('rounds fractions up, as resource.Quantity.Value() does', () => {
    expect(quantityValue('500m')).toBe(1);
    expect(quantityValue('1.0001k')).toBe(1001);
    expect(quantityValue('.5')).toBe(1);
    expect(quantityValue('1e-3')).toBe(1);
    expect(quantityValue('1e-400')).toBe(1);
    expect(quantityValue(2.5)).toBe(3);
  });

  it('caps values beyond Number.MAX_SAFE_INTEGER', () => {
    expect(quantityValue('8Ei')).toBe(Number.MAX_SAFE_INTEGER);
    expect(quantityValue('1e400')).toBe(Number.MAX_SAFE_INTEGER);
    expect(quantityValue('9007199254740993')).toBe(Number.MAX_SAFE_INTEGER);
  });

  it('refuses what is not a non-negative quantity', () => {
    for (const bad of ['', 'Mi', '1 Mi', '1mi', '1KB', '1K', '-1', '1.2.3', 'e3', '1e', '0x10', 'lots']) {
      expect(quantityValue(bad), bad).toBeNull();
    }
    expect(quantityValue(-1)).toBeNull();
    expect(quantityValue(Number.NaN)).toBeNull();
    expect(quantityValue('1'.repeat(300))).toBeNull();
  });
});
