import { randomBytes } from 'node:crypto';

const ID_BYTES = 6;
/** Ids drawn per refill: one randomBytes call per this many connections, not one each. */
const POOL_IDS = 512;
let pool = Buffer.alloc(0);
let next = 0;

/** A short id that ties together every log line of one proxied connection. */
export function newConnectionId(): string {
  if (next + ID_BYTES > pool.byteLength) {
    pool = randomBytes(ID_BYTES * POOL_IDS);
    next = 0;
  }
  const id = pool.toString('hex', next, next + ID_BYTES);
  next += ID_BYTES;
  return id;
}
