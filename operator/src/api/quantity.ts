/**
 * Kubernetes resource quantities (`64Mi`, `1Gi`, `500M`, `1e6`, `1048576`) as the API server
 * accepts them for an int-or-string quantity field, read as a byte count.
 */

const BINARY_SI: Readonly<Record<string, number>> = { Ki: 10, Mi: 20, Gi: 30, Ti: 40, Pi: 50, Ei: 60 };
const DECIMAL_SI: Readonly<Record<string, number>> = {
  n: -9,
  u: -6,
  m: -3,
  k: 3,
  M: 6,
  G: 9,
  T: 12,
  P: 15,
  E: 18,
};

// A sign is allowed by the grammar, but a size is never negative: only `+` is taken.
const QUANTITY =
  /^\+?(?<int>\d*)(?:\.(?<frac>\d*))?(?:(?<bin>[KMGTPE]i)|(?<dec>[numkMGTPE])|[eE](?<exp>[+-]?\d+))?$/;

/** Longer texts are no quantity anyone writes; the bound keeps the arithmetic below small. */
const MAX_LENGTH = 256;

/**
 * The value of a non-negative quantity rounded up to an integer, as `resource.Quantity.Value()`
 * rounds (`500m` is 1), or null when `q` is not one. Values above Number.MAX_SAFE_INTEGER come
 * back as Number.MAX_SAFE_INTEGER: no byte budget is that large.
 */
export function quantityValue(q: string | number): number | null {
  if (typeof q === 'number') {
    if (!Number.isFinite(q) || q < 0) return null;
    return Math.min(Math.ceil(q), Number.MAX_SAFE_INTEGER);
  }
  if (q.length > MAX_LENGTH) return null;
  const m = QUANTITY.exec(q);
  const g = m?.groups;
  if (g === undefined) return null;
  const int = g['int'] ?? '';
  const frac = g['frac'] ?? '';
  if (int === '' && frac === '') return null;
  const shift = g['bin'] === undefined ? 0 : (BINARY_SI[g['bin']] ?? 0);
  const exp =
    g['dec'] !== undefined ? (DECIMAL_SI[g['dec']] ?? 0) : g['exp'] !== undefined ? Number(g['exp']) : 0;
  const mantissa = BigInt(`${int}${frac}` || '0') << BigInt(shift);
  if (mantissa === 0n) return 0;
  const exp10 = exp - frac.length;
  // mantissa < 10^(256 + 19): far beyond the cap above 10^40, and below 1 under 10^-300.
  if (exp10 > 40) return Number.MAX_SAFE_INTEGER;
  if (exp10 < -300) return 1;
  let value: bigint;
  if (exp10 >= 0) {
    value = mantissa * 10n ** BigInt(exp10);
  } else {
    const den = 10n ** BigInt(-exp10);
    value = (mantissa + den - 1n) / den;
  }
  return value > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(value);
}
