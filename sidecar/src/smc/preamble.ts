import type { SidecarPorts } from '../../../operator/src/api/sidecar.js';

/**
 * The sidecar-to-sidecar preamble: the first bytes the client sidecar sends on
 * the TCP connection to the peer sidecar's SMC port. It stands in for the SMC
 * TCP option (which a user-space proxy cannot put on the app's SYN) and carries
 * the destination port that the redirect hid.
 *
 *   0  magic "SMCP" (ASCII)
 *   4  version (1)
 *   5  flags: bit 0 = a CLC Proposal follows (else plain relay from byte 8 on)
 *   6  original destination port, big endian
 */
export const PREAMBLE_LENGTH = 8;
export const PREAMBLE_MAGIC = Buffer.from('SMCP', 'ascii');
export const PREAMBLE_VERSION = 1;
const FLAG_CLC = 0x01;

export interface Preamble {
  /** The CLC handshake follows; otherwise the connection is a plain relay. */
  clc: boolean;
  /** The port the application connected to on the peer pod. */
  port: number;
}

export class PreambleError extends Error {
  constructor(message: string) {
    super(`bad sidecar preamble: ${message}`);
    this.name = 'PreambleError';
  }
}

export function encodePreamble(p: Preamble): Buffer {
  if (!Number.isInteger(p.port) || p.port < 1 || p.port > 0xffff) throw new PreambleError(`port ${p.port}`);
  const b = Buffer.alloc(PREAMBLE_LENGTH);
  PREAMBLE_MAGIC.copy(b, 0);
  b.writeUInt8(PREAMBLE_VERSION, 4);
  b.writeUInt8(p.clc ? FLAG_CLC : 0, 5);
  b.writeUInt16BE(p.port, 6);
  return b;
}

export function decodePreamble(b: Uint8Array): Preamble {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  if (buf.byteLength < PREAMBLE_LENGTH)
    throw new PreambleError(`${buf.byteLength} bytes, need ${PREAMBLE_LENGTH}`);
  if (!buf.subarray(0, 4).equals(PREAMBLE_MAGIC)) throw new PreambleError('wrong magic');
  const version = buf.readUInt8(4);
  if (version !== PREAMBLE_VERSION) throw new PreambleError(`unsupported version ${version}`);
  const flags = buf.readUInt8(5);
  if ((flags & ~FLAG_CLC) !== 0) throw new PreambleError(`unknown flags 0x${flags.toString(16)}`);
  const port = buf.readUInt16BE(6);
  if (port === 0) throw new PreambleError('port 0');
  return { clc: (flags & FLAG_CLC) !== 0, port };
}

/**
 * Whether the server sidecar may dial `port` of its own pod for a peer. The peer names the port,
 * and our dial comes from the pod's own address and the exempt uid, past the interception rules and
 * NetworkPolicy: so never one of the sidecar's own ports (its metrics, health and admin endpoints,
 * or its listeners, which would loop), nor a port the pod keeps out of the sidecar's reach
 * (`intercept.excludeInboundPorts`), which a direct connection would reach without us. Returns why
 * not, or null.
 */
export function preamblePortRefusal(
  port: number,
  sidecarPorts: SidecarPorts,
  excludedInbound: readonly number[],
): string | null {
  for (const [role, p] of Object.entries(sidecarPorts))
    if (p === port) return `port ${port} is the sidecar's ${role} port`;
  if (excludedInbound.includes(port)) return `port ${port} is excluded from interception`;
  return null;
}
