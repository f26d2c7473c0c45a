import { ByteReader } from './bytes.js';
import { ProtocolDecodeError } from './errors.js';

/**
 * The TCP experimental option by which SYN and SYN-ACK announce SMC capability
 * (RFC 7609 "TCP Option"; RFC 6994 experimental option with a 32-bit ExID;
 * kernel include/net/tcp.h TCPOPT_EXP, TCPOLEN_EXP_SMC_BASE, TCPOPT_SMC_MAGIC).
 */
export const TCP_OPTION_EOL = 0;
export const TCP_OPTION_NOP = 1;
export const TCP_OPTION_EXPERIMENTAL = 254;
export const SMC_TCP_OPTION_LENGTH = 6;
/** "SMCR" in EBCDIC. */
export const SMC_TCP_OPTION_EXID = 0xe2d4c3d9;

export interface TcpOption {
  kind: number;
  /** Offset of the kind byte within the options string. */
  offset: number;
  /** Option payload after kind and length (empty for EOL/NOP). */
  data: Buffer;
}

export function encodeSmcTcpOption(): Buffer {
  const out = Buffer.alloc(SMC_TCP_OPTION_LENGTH);
  out[0] = TCP_OPTION_EXPERIMENTAL;
  out[1] = SMC_TCP_OPTION_LENGTH;
  out.writeUInt32BE(SMC_TCP_OPTION_EXID, 2);
  return out;
}

/** Decodes a single option that must be the SMC option. */
export function decodeSmcTcpOption(bytes: Uint8Array): { kind: 254; length: 6; exid: number } {
  const r = new ByteReader(bytes);
  const kind = r.u8(0, 'kind');
  if (kind !== TCP_OPTION_EXPERIMENTAL) {
    throw new ProtocolDecodeError('type', 'kind', `expected ${TCP_OPTION_EXPERIMENTAL}, got ${kind}`);
  }
  const length = r.u8(1, 'length');
  if (length !== SMC_TCP_OPTION_LENGTH || bytes.byteLength !== SMC_TCP_OPTION_LENGTH) {
    throw new ProtocolDecodeError(
      'length',
      'length',
      `SMC option is ${SMC_TCP_OPTION_LENGTH} bytes, length field ${length}, given ${bytes.byteLength}`,
    );
  }
  const exid = r.u32(2, 'exid');
  if (exid !== SMC_TCP_OPTION_EXID) {
    throw new ProtocolDecodeError('eyecatcher', 'exid', `expected 0xe2d4c3d9, got 0x${exid.toString(16)}`);
  }
  return { kind: TCP_OPTION_EXPERIMENTAL, length: SMC_TCP_OPTION_LENGTH, exid };
}

/**
 * Splits a TCP options string (the bytes after the fixed 20-byte header).
 * Parsing stops at EOL; a length byte below 2 or past the end is a typed error,
 * since such a list cannot be walked reliably.
 */
export function parseTcpOptions(options: Uint8Array): TcpOption[] {
  const r = new ByteReader(options);
  const out: TcpOption[] = [];
  let offset = 0;
  while (offset < r.length) {
    const kind = r.u8(offset, `option[${offset}].kind`);
    if (kind === TCP_OPTION_EOL) break;
    if (kind === TCP_OPTION_NOP) {
      out.push({ kind, offset, data: Buffer.alloc(0) });
      offset += 1;
      continue;
    }
    const length = r.u8(offset + 1, `option[${offset}].length`);
    if (length < 2) {
      throw new ProtocolDecodeError(
        'length',
        `option[${offset}].length`,
        `must be at least 2, got ${length}`,
      );
    }
    if (offset + length > r.length) {
      throw new ProtocolDecodeError(
        'overrun',
        `option[${offset}].length`,
        `${length} bytes from offset ${offset} run past the ${r.length}-byte option list`,
      );
    }
    out.push({ kind, offset, data: r.copy(offset + 2, length - 2, `option[${offset}].data`) });
    offset += length;
  }
  return out;
}

function isSmcOption(option: TcpOption): boolean {
  // Same test as the kernel's tcp_parse_options: exact length and magic.
  return (
    option.kind === TCP_OPTION_EXPERIMENTAL &&
    option.data.byteLength === SMC_TCP_OPTION_LENGTH - 2 &&
    option.data.readUInt32BE(0) === SMC_TCP_OPTION_EXID
  );
}

/** Offset of the SMC option in an options string, or null when absent. */
export function findSmcTcpOption(options: Uint8Array): number | null {
  const found = parseTcpOptions(options).find(isSmcOption);
  return found === undefined ? null : found.offset;
}

/** True when the options string carries the SMC option. */
export function hasSmcTcpOption(options: Uint8Array): boolean {
  return findSmcTcpOption(options) !== null;
}

/**
 * The TCP options of a saved SYN (TCP_SAVED_SYN: the IPv4 header with its
 * options, or the 40-byte IPv6 header, then the TCP header).
 */
export function savedSynOptions(syn: Uint8Array): Buffer {
  const r = new ByteReader(syn);
  const version = r.u8(0, 'ip.version') >> 4;
  let ipLen: number;
  if (version === 4) {
    ipLen = (r.u8(0, 'ip.ihl') & 0xf) * 4;
    if (ipLen < 20) throw new ProtocolDecodeError('length', 'ip.ihl', `IPv4 header of ${ipLen} bytes`);
    if (r.u8(9, 'ip.protocol') !== 6) throw new ProtocolDecodeError('type', 'ip.protocol', 'not TCP');
  } else if (version === 6) {
    ipLen = 40;
    if (r.u8(6, 'ip6.nextHeader') !== 6)
      throw new ProtocolDecodeError('type', 'ip6.nextHeader', 'not TCP (extension headers are not read)');
  } else {
    throw new ProtocolDecodeError('version', 'ip.version', `IP version ${version}`);
  }
  const tcpLen = (r.u8(ipLen + 12, 'tcp.dataOffset') >> 4) * 4;
  if (tcpLen < 20) throw new ProtocolDecodeError('length', 'tcp.dataOffset', `TCP header of ${tcpLen} bytes`);
  if ((r.u8(ipLen + 13, 'tcp.flags') & 0x12) !== 0x02)
    throw new ProtocolDecodeError('type', 'tcp.flags', 'not a SYN');
  if (ipLen + tcpLen > r.length)
    throw new ProtocolDecodeError(
      'truncated',
      'tcp.options',
      `${ipLen + tcpLen} bytes of headers, got ${r.length}`,
    );
  return Buffer.from(syn.subarray(ipLen + 20, ipLen + tcpLen));
}
