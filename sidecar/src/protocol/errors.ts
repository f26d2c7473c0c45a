/** Classes of malformed input a decoder can report. */
export type ProtocolDecodeErrorCode =
  | 'truncated' // fewer bytes than the layout or the length field needs
  | 'eyecatcher' // header or trailer eyecatcher is not "SMCR" (EBCDIC)
  | 'length' // a length field disagrees with the layout or the bytes given
  | 'type' // unknown message type
  | 'version' // unsupported protocol version
  | 'overrun' // a count or offset points past the end of the message
  | 'range'; // a field holds a value the layout does not allow

/**
 * The only error a decoder throws. `field` names the offending field so that
 * the handshake can report it and tests can assert on it.
 */
export class ProtocolDecodeError extends Error {
  readonly code: ProtocolDecodeErrorCode;
  readonly field: string;
  readonly reason: string;

  constructor(code: ProtocolDecodeErrorCode, field: string, reason: string) {
    super(`${field}: ${reason} (${code})`);
    this.name = 'ProtocolDecodeError';
    this.code = code;
    this.field = field;
    this.reason = reason;
  }
}

/** Thrown by encoders when a message model cannot be represented on the wire. */
export class ProtocolEncodeError extends Error {
  readonly field: string;
  readonly reason: string;

  constructor(field: string, reason: string) {
    super(`${field}: ${reason}`);
    this.name = 'ProtocolEncodeError';
    this.field = field;
    this.reason = reason;
  }
}
