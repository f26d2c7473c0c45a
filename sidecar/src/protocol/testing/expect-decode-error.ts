import { expect } from 'vitest';
import { ProtocolDecodeError, type ProtocolDecodeErrorCode } from '../errors.js';

/** Asserts that `fn` throws a ProtocolDecodeError with this code and field. */
export function expectDecodeError(
  fn: () => unknown,
  code: ProtocolDecodeErrorCode,
  field: string | RegExp,
): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(ProtocolDecodeError);
  const e = caught as ProtocolDecodeError;
  expect(e.code).toBe(code);
  if (typeof field === 'string') expect(e.field).toBe(field);
  else expect(e.field).toMatch(field);
  expect(e.message).toContain(e.field);
}
