import type { CdcMessage } from '../cdc.js';
import type { ClcAcceptConfirm } from '../clc/accept-confirm.js';
import type { ClcAcceptConfirmV2, ClcFirstContactExt } from '../clc/accept-confirm-v2.js';
import { SMC_TYPE, type SmcType } from '../clc/constants.js';
import type { ClcDecline } from '../clc/decline.js';
import type { ClcIpArea, ClcProposal, ClcV2Extension } from '../clc/proposal.js';
import type { LlcMessage } from '../llc/message.js';
import type { LlcV2Message } from '../llc/v2.js';
import type { Prng } from './prng.js';

/* Random valid message models for round-trip property tests. */

const SMC_TYPES: readonly SmcType[] = [SMC_TYPE.R, SMC_TYPE.D, SMC_TYPE.N, SMC_TYPE.B];

function ipArea(g: Prng): ClcIpArea {
  const count = g.bool(0.7) ? 0 : g.int(1, 8);
  return {
    ipv4Subnet: g.bytes(4),
    ipv4PrefixLength: g.u8(),
    ipv6Prefixes: Array.from({ length: count }, () => ({ prefix: g.bytes(16), prefixLength: g.u8() })),
  };
}

function v2Extension(g: Prng, typeV2: SmcType): ClcV2Extension {
  const smcd = typeV2 === SMC_TYPE.D || typeV2 === SMC_TYPE.B;
  return {
    release: g.int(0, 15),
    seid: g.bool(),
    userEids: Array.from({ length: g.int(0, 8) }, () => g.bytes(32)),
    roceV2Gid: g.bytes(16),
    maxConns: g.u8(),
    maxLinks: g.u8(),
    featureMask: g.u16(),
    smcdV2: smcd
      ? {
          systemEid: g.bytes(32),
          gidChids: Array.from({ length: g.int(0, 8) }, () => ({ gid: g.u64(), chid: g.u16() })),
        }
      : null,
  };
}

export function arbitraryProposal(g: Prng): ClcProposal {
  const base = { kind: 'proposal' as const, peerId: g.bytes(8), gid: g.bytes(16), mac: g.bytes(6) };
  if (g.bool()) {
    return {
      ...base,
      version: 1,
      typeV1: g.pick([SMC_TYPE.R, SMC_TYPE.D, SMC_TYPE.B]),
      growthArea: g.bytes(g.bool(0.7) ? 0 : g.int(1, 48)),
      ipArea: ipArea(g),
    };
  }
  const typeV1 = g.pick(SMC_TYPES);
  const typeV2 = g.pick(SMC_TYPES);
  return {
    ...base,
    version: 2,
    typeV1,
    typeV2,
    smcd: { ismGid: g.u64(), ismChid: g.u16() },
    ipArea: typeV1 === SMC_TYPE.N ? null : ipArea(g),
    v2Extension: typeV2 === SMC_TYPE.N ? null : v2Extension(g, typeV2),
  };
}

export function arbitraryAcceptConfirm(g: Prng): ClcAcceptConfirm {
  return {
    kind: g.bool() ? 'accept' : 'confirm',
    version: 1,
    firstContact: g.bool(),
    peerId: g.bytes(8),
    gid: g.bytes(16),
    mac: g.bytes(6),
    qpn: g.u24(),
    rmbRkey: g.nextU32(),
    rmbeIndex: g.u8(),
    rmbeAlertToken: g.nextU32(),
    rmbeSize: g.int(0, 15),
    qpMtu: g.int(0, 15),
    rmbVirtualAddress: g.u64(),
    initialPsn: g.u24(),
  };
}

export function arbitraryAcceptConfirmV2(g: Prng): ClcAcceptConfirmV2 {
  const kind = g.bool() ? 'accept' : 'confirm';
  const firstContact = g.bool(0.7);
  let firstContactExt: ClcFirstContactExt | null = null;
  let gidList: Buffer[] | null = null;
  if (firstContact) {
    const release = g.pick([0, 0, 1, 1, 1, g.int(2, 15)]);
    const withV2x = release >= 1 || g.bool();
    firstContactExt = {
      v2Direct: g.bool(),
      osType: g.int(0, 15),
      release,
      hostname: g.bytes(32),
      v2x: withV2x
        ? { maxConns: g.u8(), maxLinks: g.u8(), featureMask: g.u16(), vendorOptions: g.nextU32() }
        : null,
    };
    if (kind === 'confirm' && g.bool(0.8)) {
      gidList = Array.from({ length: g.bool(0.9) ? g.int(0, 3) : g.int(0, 40) }, () => g.bytes(16));
      const v2x = firstContactExt.v2x;
      // the one release-0 combination that reads back as the 36-byte form (see accept-confirm-v2.ts)
      if (release === 0 && v2x !== null && v2x.maxConns === gidList.length + 1) v2x.maxConns = 0;
    }
  }
  return {
    kind,
    version: 2,
    firstContact,
    peerId: g.bytes(8),
    gid: g.bytes(16),
    mac: g.bytes(6),
    qpn: g.u24(),
    rmbRkey: g.nextU32(),
    rmbeIndex: g.u8(),
    rmbeAlertToken: g.nextU32(),
    rmbeSize: g.int(0, 15),
    qpMtu: g.int(0, 15),
    rmbVirtualAddress: g.u64(),
    initialPsn: g.u24(),
    eid: g.bool(0.2) ? Buffer.alloc(32) : g.bytes(32),
    firstContactExt,
    gidList,
  };
}

export function arbitraryDecline(g: Prng): ClcDecline {
  const v2 = g.bool();
  return {
    kind: 'decline',
    version: v2 ? 2 : 1,
    eyecatcher: g.bool(0.8) ? 'SMC-R' : 'SMC-D',
    outOfSync: g.bool(),
    peerId: g.bytes(8),
    peerDiagnosis: g.nextU32(),
    osType: g.int(0, 15),
    diagnosisV2: v2 ? [g.nextU32(), g.nextU32(), g.nextU32(), g.nextU32()] : null,
  };
}

export function arbitraryLlc(g: Prng): LlcMessage {
  const response = g.bool();
  const rtoken = (): { linkId: number; rmbKey: number; rmbVaddr: bigint } => ({
    linkId: g.u8(),
    rmbKey: g.nextU32(),
    rmbVaddr: g.u64(),
  });
  switch (g.int(0, 7)) {
    case 0:
      return {
        kind: 'confirm-link',
        response,
        noRmbeEyecatcher: g.bool(),
        senderMac: g.bytes(6),
        senderGid: g.bytes(16),
        senderQpn: g.u24(),
        linkNum: g.u8(),
        linkUid: g.bytes(4),
        maxLinks: g.u8(),
        maxConns: g.u8(),
      };
    case 1:
      return {
        kind: 'add-link',
        response,
        rejected: g.bool(),
        rejectReason: g.int(0, 15),
        senderMac: g.bytes(6),
        senderGid: g.bytes(16),
        senderQpn: g.u24(),
        linkNum: g.u8(),
        qpMtu: g.int(0, 15),
        initialPsn: g.u24(),
      };
    case 2: {
      const numRkeys = g.u8();
      return {
        kind: 'add-link-cont',
        response,
        linkNum: g.u8(),
        numRkeys,
        rtokens: Array.from({ length: Math.min(numRkeys, 2) }, () => ({
          rmbKey: g.nextU32(),
          rmbKeyNew: g.nextU32(),
          rmbVaddrNew: g.u64(),
        })),
      };
    }
    case 3:
      return {
        kind: 'delete-link',
        response,
        all: g.bool(),
        orderly: g.bool(),
        linkNum: g.u8(),
        reason: g.nextU32(),
      };
    case 4: {
      const numRkeys = g.int(0, 3);
      return {
        kind: 'confirm-rkey',
        response,
        negative: g.bool(),
        retry: g.bool(),
        numRkeys,
        own: { rmbKey: g.nextU32(), rmbVaddr: g.u64() },
        others: Array.from({ length: Math.min(numRkeys, 2) }, rtoken),
      };
    }
    case 5:
      return {
        kind: 'confirm-rkey-cont',
        response,
        negative: g.bool(),
        rtokens: Array.from({ length: g.int(0, 3) }, rtoken),
      };
    case 6:
      return {
        kind: 'delete-rkey',
        response,
        negative: g.bool(),
        errorMask: g.u8(),
        rkeys: Array.from({ length: g.int(0, 8) }, () => g.nextU32()),
      };
    default:
      return { kind: 'test-link', response, userData: g.bytes(16) };
  }
}

export function arbitraryLlcV2(g: Prng): LlcV2Message {
  const response = g.bool();
  const v1 = arbitraryLlc(g);
  switch (g.int(0, 6)) {
    case 0:
      return {
        kind: 'confirm-link',
        version: 2,
        response,
        noRmbeEyecatcher: g.bool(),
        senderMac: g.bytes(6),
        senderGid: g.bytes(16),
        senderQpn: g.u24(),
        linkNum: g.u8(),
        linkUid: g.bytes(4),
        maxLinks: g.u8(),
        maxConns: g.u8(),
      };
    case 1: {
      const many = g.bool(0.1);
      return {
        kind: 'add-link',
        version: 2,
        response,
        rejected: g.bool(),
        senderMac: g.bytes(6),
        senderGid: g.bytes(16),
        senderQpn: g.u24(),
        linkNum: g.u8(),
        qpMtu: g.int(0, 15),
        initialPsn: g.u24(),
        ext: g.bool(0.2)
          ? null
          : {
              direct: g.bool(),
              clientTargetGid: g.bytes(16),
              rtokens: Array.from({ length: many ? g.int(0, 255) : g.int(0, 6) }, () => ({
                rmbKey: g.nextU32(),
                rmbKeyNew: g.nextU32(),
                rmbVaddrNew: g.u64(),
              })),
            },
      };
    }
    case 2:
      return {
        kind: 'delete-link',
        version: 2,
        response,
        all: g.bool(),
        orderly: g.bool(),
        linkNum: g.u8(),
        reason: g.nextU32(),
      };
    case 3:
      return {
        kind: 'req-add-link',
        version: 2,
        response,
        gids: Array.from({ length: g.bool(0.9) ? g.int(0, 4) : g.int(0, 255) }, () => g.bytes(16)),
      };
    case 4: {
      if (v1.kind === 'confirm-rkey') return { ...v1, version: 2 };
      const numRkeys = g.int(0, 3);
      const rtoken = () => ({ linkId: g.u8(), rmbKey: g.nextU32(), rmbVaddr: g.u64() });
      return {
        kind: 'confirm-rkey',
        version: 2,
        response,
        negative: g.bool(),
        retry: g.bool(),
        numRkeys,
        own: { rmbKey: g.nextU32(), rmbVaddr: g.u64() },
        others: Array.from({ length: Math.min(numRkeys, 2) }, rtoken),
      };
    }
    case 5:
      return { kind: 'test-link', version: 2, response, userData: g.bytes(16) };
    default:
      return {
        kind: 'delete-rkey',
        version: 2,
        response,
        negative: g.bool(),
        invalidCount: g.u8(),
        rkeys: Array.from({ length: g.bool(0.9) ? g.int(0, 12) : g.int(0, 255) }, () => g.nextU32()),
      };
  }
}

export function arbitraryCdc(g: Prng, rmbeSize: number): CdcMessage {
  return {
    kind: 'cdc',
    seqno: g.u16(),
    token: g.nextU32(),
    producer: { wrap: g.u16(), count: g.int(0, rmbeSize - 1) },
    consumer: { wrap: g.u16(), count: g.int(0, rmbeSize - 1) },
    producerFlags: {
      writeBlocked: g.bool(),
      urgentPending: g.bool(),
      urgentPresent: g.bool(),
      cursorUpdateRequested: g.bool(),
      failoverValidation: g.bool(),
    },
    connectionState: {
      peerDoneWriting: g.bool(),
      peerConnectionClosed: g.bool(),
      peerConnectionAbort: g.bool(),
    },
  };
}
