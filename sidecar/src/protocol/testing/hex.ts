/** Hex string with whitespace and `|` separators allowed, for hand-written vectors. */
export function hex(...parts: string[]): Buffer {
  const clean = parts.join('').replace(/[\s|]/g, '');
  if (!/^([0-9a-fA-F]{2})*$/.test(clean)) throw new Error(`bad hex vector: ${clean}`);
  return Buffer.from(clean, 'hex');
}
