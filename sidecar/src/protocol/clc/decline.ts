import { ByteWriter, checkBits } from '../bytes.js';
import { ProtocolDecodeError, ProtocolEncodeError } from '../errors.js';
import {
  CLC_FLAG_FIRST_CONTACT,
  CLC_TYPE,
  SMC_CLC_DECLINE_LEN,
  SMC_CLC_DECLINE_V2_LEN,
  SMC_SYSTEMID_LEN,
  SMC_TYPE,
  SMCD_EYECATCHER,
  SMCR_EYECATCHER,
} from './constants.js';
import { decodeClcFrame, writeClcFrame } from './header.js';

/*
 * CLC Decline (RFC 7609 Appendix A "SMC Decline CLC Message Format";
 * net/smc/smc_clc.h struct smc_clc_msg_decline (28 bytes) and
 * struct smc_clc_msg_decline_v2 (44 bytes)):
 *
 *   0  header (8); byte 7 bit 3 = out of sync (SMC_FIRST_CONTACT_MASK in typev2)
 *   8  sender peer id (8)
 *  16  peer diagnosis u32 (SMC_CLC_DECL_*)
 *  20  OS type (high nibble) | reserved
 *  21  reserved (3)
 *  v1: 24 trailer
 *  v2: 24 four more diagnosis codes u32, 40 trailer
 */

export interface ClcDecline {
  kind: 'decline';
  version: 1 | 2;
  /** SMC-D peers use the "SMCD" eyecatcher; we keep it so their diagnosis is not lost. */
  eyecatcher: 'SMC-R' | 'SMC-D';
  /** Sender lost synchronisation with the link group; the receiver must terminate it. */
  outOfSync: boolean;
  peerId: Buffer;
  peerDiagnosis: number;
  /** SMC_CLC_OS_*: 1 z/OS, 2 Linux, 3 AIX; zero in v1. */
  osType: number;
  /** Additional diagnosis codes, v2 only. */
  diagnosisV2: [number, number, number, number] | null;
}

export function decodeClcDecline(bytes: Uint8Array): ClcDecline {
  // The kernel does not check a Decline's trailer (smc_clc_msg_hdr_valid); neither do we, to keep the peer's diagnosis.
  const { header, reader: r } = decodeClcFrame(bytes, false);
  if (header.type !== CLC_TYPE.decline) {
    throw new ProtocolDecodeError('type', 'type', `expected Decline (4), got ${header.type}`);
  }
  if (header.typeV1 !== SMC_TYPE.R && header.typeV1 !== SMC_TYPE.D) {
    throw new ProtocolDecodeError('range', 'typeV1', `expected SMC-R or SMC-D, got ${header.typeV1}`);
  }
  const expected = header.version === 1 ? SMC_CLC_DECLINE_LEN : SMC_CLC_DECLINE_V2_LEN;
  if (header.length !== expected) {
    throw new ProtocolDecodeError(
      'length',
      'length',
      `v${header.version} Decline is ${expected} bytes, got ${header.length}`,
    );
  }
  return {
    kind: 'decline',
    version: header.version,
    eyecatcher: header.eyecatcher,
    outOfSync: (r.u8(7, 'flags') & CLC_FLAG_FIRST_CONTACT) !== 0,
    peerId: r.copy(8, SMC_SYSTEMID_LEN, 'peerId'),
    peerDiagnosis: r.u32(16, 'peerDiagnosis'),
    osType: r.u8(20, 'osType') >> 4,
    diagnosisV2:
      header.version === 1
        ? null
        : [
            r.u32(24, 'diagnosisV2[0]'),
            r.u32(28, 'diagnosisV2[1]'),
            r.u32(32, 'diagnosisV2[2]'),
            r.u32(36, 'diagnosisV2[3]'),
          ],
  };
}

export function encodeClcDecline(m: ClcDecline): Buffer {
  if ((m.version === 1) !== (m.diagnosisV2 === null)) {
    throw new ProtocolEncodeError('diagnosisV2', 'present exactly in v2 Declines');
  }
  const w = new ByteWriter(m.version === 1 ? SMC_CLC_DECLINE_LEN : SMC_CLC_DECLINE_V2_LEN);
  writeClcFrame(
    w.bytes,
    CLC_TYPE.decline,
    m.version,
    m.outOfSync ? CLC_FLAG_FIRST_CONTACT >> 2 : 0,
    SMC_TYPE.R,
    m.eyecatcher === 'SMC-D' ? SMCD_EYECATCHER : SMCR_EYECATCHER,
  );
  w.fixed(8, m.peerId, SMC_SYSTEMID_LEN, 'peerId');
  w.u32(16, m.peerDiagnosis, 'peerDiagnosis');
  w.u8(20, checkBits('osType', m.osType, 4) << 4, 'osType');
  m.diagnosisV2?.forEach((code, i) => w.u32(24 + 4 * i, code, `diagnosisV2[${i}]`));
  return w.bytes;
}
