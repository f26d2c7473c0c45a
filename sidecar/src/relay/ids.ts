import { randomBytes } from 'node:crypto';

/** A short id that ties together every log line of one proxied connection. */
export function newConnectionId(): string {
  return randomBytes(6).toString('hex');
}
