import { ByteReader, ByteWriter } from './bytes.js';
import type { Cursor } from './cursor.js';
import { ProtocolDecodeError } from './errors.js';

/*
 * Connection Data Control message (RFC 7609 Appendix A "Connection Data
 * Control (CDC) message format"; net/smc/smc_cdc.h struct smc_cdc_msg,
 * union smc_cdc_cursor; flag bits from struct smc_cdc_producer_flags and
 * smc_cdc_conn_state_flags in net/smc/smc.h), 44 bytes:
 *
 *   0 type 0xFE, 1 length 44, 2 sequence number u16, 4 alert token u32,
 *   8 producer cursor { reserved u16, wrap u16, count u32 },
 *  16 consumer cursor { reserved u16, wrap u16, count u32 },
 *  24 producer flags, 25 connection state flags, 26 reserved (18)
 */
export const CDC_MESSAGE_TYPE = 0xfe;
export const CDC_MESSAGE_LENGTH = 44;

export const CDC_PRODUCER_FLAG = {
  writeBlocked: 0x80,
  urgentPending: 0x40,
  urgentPresent: 0x20,
  cursorUpdateRequested: 0x10,
  failoverValidation: 0x08,
} as const;

export const CDC_CONN_STATE_FLAG = {
  peerDoneWriting: 0x80,
  peerConnectionClosed: 0x40,
  peerConnectionAbort: 0x20,
} as const;

export type CdcProducerFlags = Record<keyof typeof CDC_PRODUCER_FLAG, boolean>;
export type CdcConnectionState = Record<keyof typeof CDC_CONN_STATE_FLAG, boolean>;

export interface CdcMessage {
  kind: 'cdc';
  seqno: number;
  /** RMBE alert token of the receiving connection. */
  token: number;
  /** How far the sender has written into the receiver's RMBE. */
  producer: Cursor;
  /** How far the sender has consumed its own RMBE (the piggy-backed ack). */
  consumer: Cursor;
  producerFlags: CdcProducerFlags;
  connectionState: CdcConnectionState;
}

/**
 * Sizes the cursors are checked against, from the receiver's point of view:
 * the producer cursor indexes the receiver's own RMBE, the consumer cursor the
 * peer's RMBE that the receiver writes into. A single number applies to both.
 */
export type CdcCursorLimits = number | { localRmbeSize: number; peerRmbeSize: number };

function readFlags<K extends string>(byte: number, table: Readonly<Record<K, number>>): Record<K, boolean> {
  const out = {} as Record<K, boolean>;
  for (const key of Object.keys(table) as K[]) out[key] = (byte & table[key]) !== 0;
  return out;
}

function packFlags<K extends string>(flags: Record<K, boolean>, table: Readonly<Record<K, number>>): number {
  let byte = 0;
  for (const key of Object.keys(table) as K[]) if (flags[key]) byte |= table[key];
  return byte;
}

function readCursor(r: ByteReader, at: number, limit: number, field: string): Cursor {
  const cursor = { wrap: r.u16(at + 2, `${field}.wrap`), count: r.u32(at + 4, `${field}.count`) };
  if (cursor.count >= limit) {
    throw new ProtocolDecodeError(
      'overrun',
      `${field}.count`,
      `${cursor.count} is past the end of the ${limit}-byte RMBE`,
    );
  }
  return cursor;
}

export function decodeCdcMessage(bytes: Uint8Array, limits: CdcCursorLimits): CdcMessage {
  const r = new ByteReader(bytes);
  if (r.length < CDC_MESSAGE_LENGTH) {
    throw new ProtocolDecodeError('truncated', 'message', `CDC messages are 44 bytes, got ${r.length}`);
  }
  if (r.length > CDC_MESSAGE_LENGTH) {
    throw new ProtocolDecodeError('length', 'message', `CDC messages are 44 bytes, got ${r.length}`);
  }
  const type = r.u8(0, 'type');
  if (type !== CDC_MESSAGE_TYPE) {
    throw new ProtocolDecodeError('type', 'type', `expected 0xfe, got 0x${type.toString(16)}`);
  }
  const length = r.u8(1, 'length');
  if (length !== CDC_MESSAGE_LENGTH) {
    throw new ProtocolDecodeError('length', 'length', `must be 44, got ${length}`);
  }
  const local = typeof limits === 'number' ? limits : limits.localRmbeSize;
  const peer = typeof limits === 'number' ? limits : limits.peerRmbeSize;
  return {
    kind: 'cdc',
    seqno: r.u16(2, 'seqno'),
    token: r.u32(4, 'token'),
    producer: readCursor(r, 8, local, 'producer'),
    consumer: readCursor(r, 16, peer, 'consumer'),
    producerFlags: readFlags(r.u8(24, 'producerFlags'), CDC_PRODUCER_FLAG),
    connectionState: readFlags(r.u8(25, 'connectionState'), CDC_CONN_STATE_FLAG),
  };
}

export function encodeCdcMessage(m: CdcMessage): Buffer {
  const w = new ByteWriter(CDC_MESSAGE_LENGTH);
  w.u8(0, CDC_MESSAGE_TYPE, 'type');
  w.u8(1, CDC_MESSAGE_LENGTH, 'length');
  w.u16(2, m.seqno, 'seqno');
  w.u32(4, m.token, 'token');
  w.u16(10, m.producer.wrap, 'producer.wrap');
  w.u32(12, m.producer.count, 'producer.count');
  w.u16(18, m.consumer.wrap, 'consumer.wrap');
  w.u32(20, m.consumer.count, 'consumer.count');
  w.u8(24, packFlags(m.producerFlags, CDC_PRODUCER_FLAG), 'producerFlags');
  w.u8(25, packFlags(m.connectionState, CDC_CONN_STATE_FLAG), 'connectionState');
  return w.bytes;
}
