import type { CdcMessage } from '../cdc.js';
import type { ClcAcceptConfirm } from '../clc/accept-confirm.js';
import { SMC_TYPE, type SmcType } from '../clc/constants.js';
import type { ClcDecline } from '../clc/decline.js';
import type { ClcIpArea, ClcProposal, ClcV2Extension } from '../clc/proposal.js';
import type { LlcMessage } from '../llc/message.js';
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
