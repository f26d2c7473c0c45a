import { randomBytes } from 'node:crypto';
import { SMC_SYSTEMID_LEN } from '../protocol/clc/constants.js';

/**
 * The SMC system id ("peer id" in CLC messages): as the kernel's
 * smc_ib_host_init, two random bytes for this instance followed by a MAC of
 * the host's RoCE device (random bytes when none is known).
 */
export function makePeerId(mac: Buffer | null): Buffer {
  const id = Buffer.alloc(SMC_SYSTEMID_LEN);
  randomBytes(2).copy(id, 0);
  (mac !== null && mac.byteLength === 6 ? mac : randomBytes(6)).copy(id, 2);
  return id;
}
