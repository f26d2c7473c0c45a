import type { Socket } from 'node:net';
import { ClcFramer } from '../handshake/framer.js';
import type { ClcMachine } from '../handshake/machine.js';
import type { HandshakeAction, HandshakeEvent } from '../handshake/types.js';
import type { Logger } from '../log.js';
import { declineCodeFor, FallbackReason } from '../policy/reasons.js';
import { SMC_CLC_DECL } from '../protocol/clc/decline-codes.js';
import { type ClcDecline, decodeClcDecline, encodeClcDecline } from '../protocol/clc/decline.js';
import { CLC_TYPE } from '../protocol/clc/constants.js';
import { decodeClcHeader } from '../protocol/clc/header.js';
import { FIRST_MESSAGE_SNIFF_LENGTH, serverReplyVerdict } from '../protocol/clc/first-message.js';
import { reasonForLocalDecline } from './decline-reason.js';
import { asLinkSetupError, type LinkSetupError } from './link-errors.js';
import type { LinkCommit, PreparedSmcConnection } from './link-group-manager.js';
import type { SmcConnection } from './smc-connection.js';

export type ClcOutcome =
  | { kind: 'established'; connection: SmcConnection }
  | {
      kind: 'fallback';
      reason: FallbackReason;
      /** The Decline code that ended the exchange (ours or the peer's). */
      code: number;
      origin: 'local' | 'peer';
      description: string;
      /** Application bytes from the peer that followed its Decline. */
      residual: Buffer;
      /** The peer's Decline was out of sync: the link group with it must go. */
      terminateLinkGroup: boolean;
      /** Client side: the server's first bytes were CLC (an Accept or a Decline). */
      peerSpokeClc: boolean;
    }
  | {
      kind: 'aborted';
      /** 'closed': the peer closed or reset the TCP connection; 'protocol': it stopped following CLC. */
      cause: 'closed' | 'protocol';
      reason: string;
      /** Client side: the server's first bytes were CLC (an Accept or a Decline). */
      peerSpokeClc: boolean;
    };

/** An outcome before the driver adds what it saw of the peer's first bytes. */
type DraftOutcome =
  | Extract<ClcOutcome, { kind: 'established' }>
  | Omit<Extract<ClcOutcome, { kind: 'fallback' }>, 'peerSpokeClc'>
  | Omit<Extract<ClcOutcome, { kind: 'aborted' }>, 'peerSpokeClc'>;

/** A Decline of ours outside the state machine: the v1 layout, which every SMC-R version reads. */
export function encodePlainDecline(peerId: Buffer, code: number): Buffer {
  const d: ClcDecline = {
    kind: 'decline',
    version: 1,
    eyecatcher: 'SMC-R',
    outOfSync: false,
    peerId,
    peerDiagnosis: code >>> 0,
    osType: 0,
    diagnosisV2: null,
  };
  return encodeClcDecline(d);
}

export interface ClcDriverOptions {
  machine: ClcMachine;
  /** The TCP connection to the peer sidecar, paused, preamble already exchanged. */
  socket: Socket;
  /** Bytes already read from `socket` past the preamble. */
  initial?: Buffer;
  prepared: PreparedSmcConnection | null;
  peerId: Buffer;
  /** How long to wait for the peer's closing Decline after ours. */
  syncTimeoutMs: number;
  /**
   * The peer is the kernel's SMC-R, not a sidecar: as in af_smc.c, a side that
   * declines falls back at once and the other side does not answer its Decline
   * (an answer would reach the kernel's application as data). A client whose
   * kernel peer's first bytes were not CLC sends no Decline at all: that peer
   * echoed the SMC option without speaking SMC.
   */
  kernelPeer?: boolean;
  /**
   * We are the client: the peer's first bytes must be an Accept or a Decline, or it does not speak
   * CLC (outcome.peerSpokeClc). Without it the peer counts as speaking CLC.
   */
  expectServerReply?: boolean;
  log: Logger;
}

/**
 * Runs a pure CLC state machine over a real socket: feeds it bytes, timeouts
 * and link results, performs its sends, and ends in SMC or in TCP fallback.
 *
 * Fallback framing between the two sidecars: each side sends exactly one
 * Decline and treats the bytes after the peer's Decline as application data.
 * A side that falls back because of the peer's Decline answers with its own;
 * a side that declined first discards CLC messages until the peer's Decline.
 * So neither side mistakes a handshake message in flight for data.
 */
export function runClcHandshake(opts: ClcDriverOptions): Promise<ClcOutcome> {
  const { machine, socket, log } = opts;
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | null = null;
    let done = false;
    let sentDecline = false;
    let linkError: LinkSetupError | null = null;
    let connection: SmcConnection | null = null;
    /** The peer's first bytes, until they tell whether it speaks CLC (client side). */
    let sniffed = Buffer.alloc(0);
    let peerSpokeClc = opts.expectServerReply !== true;
    /**
     * Link setup passed its point of no return (see LinkCommit): the peer may
     * start its data path, so our own timers no longer lead to a fallback.
     */
    let committed = false;
    const gate: LinkCommit = {
      commit: () => {
        if (done || sync !== null) return false;
        committed = true;
        return true;
      },
    };
    /** Set once the machine fell back: we then only look for the peer's Decline. */
    let sync: { framer: ClcFramer; outcome: Extract<DraftOutcome, { kind: 'fallback' }> } | null = null;

    const clearTimer = (): void => {
      if (timer !== null) clearTimeout(timer);
      timer = null;
    };
    const finish = (draft: DraftOutcome): void => {
      if (done) return;
      done = true;
      const outcome: ClcOutcome = draft.kind === 'established' ? draft : { ...draft, peerSpokeClc };
      clearTimer();
      socket.pause();
      socket.off('data', onData);
      socket.off('end', onClosed);
      socket.off('close', onClosed);
      socket.off('error', onError);
      if (outcome.kind !== 'established') {
        // A peer that does not know the link group we offered says so (out of sync, or no such
        // link): that group is of no use any more.
        const unknownGroup =
          outcome.kind === 'fallback' &&
          outcome.origin === 'peer' &&
          (outcome.terminateLinkGroup ||
            outcome.code === SMC_CLC_DECL.NOSRVLINK ||
            outcome.code === SMC_CLC_DECL.SYNCERR);
        opts.prepared?.release({ terminateLinkGroup: unknownGroup, committed });
        connection?.abort('handshake did not complete');
      }
      resolve(outcome);
    };

    /** A kernel peer that does not speak CLC would read a Decline of ours as application data. */
    const declineWelcome = (): boolean => opts.kernelPeer !== true || peerSpokeClc;
    const sendDecline = (code: number): void => {
      if (!declineWelcome()) return;
      socket.write(encodePlainDecline(opts.peerId, code));
      sentDecline = true;
    };

    /** Scans for the peer's Decline after ours; everything after it is application data. */
    const pumpSync = (): void => {
      if (sync === null) return;
      const { framer, outcome } = sync;
      for (;;) {
        let frame: Buffer | null;
        try {
          frame = framer.next();
        } catch (err) {
          finish({
            kind: 'aborted',
            cause: 'protocol',
            reason: `garbage while waiting for the peer's Decline: ${String(err)}`,
          });
          return;
        }
        if (frame === null) return;
        if (decodeClcHeader(frame).type !== CLC_TYPE.decline) continue;
        try {
          const d = decodeClcDecline(frame);
          log.debug({ code: d.peerDiagnosis }, 'peer acknowledged the fallback');
        } catch {
          // Even a malformed Decline marks the end of the handshake.
        }
        finish({ ...outcome, residual: framer.takeRest() });
        return;
      }
    };

    const enterFallback = (a: Extract<HandshakeAction, { type: 'fallback' }>): void => {
      clearTimer();
      const reason =
        a.origin === 'peer'
          ? FallbackReason.PeerDeclined
          : a.cause === 'no-common-eid'
            ? FallbackReason.TenantNotAllowed
            : a.cause === 'peer-rmb-too-large'
              ? FallbackReason.PeerRmbTooLarge
              : (linkError?.reason ?? reasonForLocalDecline(a.reasonCode));
      const outcome = {
        kind: 'fallback' as const,
        reason,
        code: a.reasonCode,
        origin: a.origin,
        description: a.description,
        residual: a.residual,
        terminateLinkGroup: a.terminateLinkGroup,
      };
      if (opts.kernelPeer === true) {
        if (a.origin === 'local' && !sentDecline) sendDecline(a.reasonCode);
        finish(outcome);
        return;
      }
      if (!sentDecline) sendDecline(a.origin === 'peer' ? SMC_CLC_DECL.PEERDECL : a.reasonCode);
      if (a.origin === 'peer') {
        finish(outcome);
        return;
      }
      const framer = new ClcFramer();
      framer.push(a.residual);
      sync = { framer, outcome };
      timer = setTimeout(
        () =>
          finish({
            kind: 'aborted',
            cause: 'protocol',
            reason: `peer did not answer our Decline within ${opts.syncTimeoutMs} ms`,
          }),
        opts.syncTimeoutMs,
      );
      pumpSync();
    };

    const dispatch = (actions: HandshakeAction[]): void => {
      for (const a of actions) {
        if (done || sync !== null) return;
        switch (a.type) {
          case 'send':
            if (a.message.kind === 'decline' && !declineWelcome()) {
              log.debug('no Decline to a peer that does not speak CLC');
              break;
            }
            socket.write(a.bytes);
            if (a.message.kind === 'decline') sentDecline = true;
            log.debug({ clc: a.message.kind }, 'CLC sent');
            break;
          case 'await':
            clearTimer();
            timer = setTimeout(() => feed({ type: 'timeout' }), a.timeoutMs);
            break;
          case 'proceed':
            void startLink(a.link);
            break;
          case 'established':
            if (connection === null) {
              finish({ kind: 'aborted', cause: 'protocol', reason: 'established without a connection' });
              return;
            }
            finish({ kind: 'established', connection });
            return;
          case 'fallback':
            enterFallback(a);
            return;
          case 'abort':
            finish({ kind: 'aborted', cause: 'closed', reason: a.reason });
            return;
          case 'ignored':
            log.debug({ why: a.reason }, 'CLC event ignored');
            break;
        }
      }
    };

    const feed = (event: HandshakeEvent): void => {
      if (done) return;
      if (sync !== null) {
        if (event.type === 'data') {
          sync.framer.push(event.bytes);
          pumpSync();
        } else if (event.type === 'closed') {
          finish({
            kind: 'aborted',
            cause: 'closed',
            reason: 'connection closed while waiting for the peer Decline',
          });
        }
        return;
      }
      if (event.type === 'timeout' && committed) {
        // The link's own (longer) waits end this stage: with the link up, or with an abort.
        log.debug('link setup timer ignored: committed to SMC-R');
        return;
      }
      dispatch(machine.handle(event));
    };

    const startLink = async (link: Parameters<PreparedSmcConnection['establish']>[0]): Promise<void> => {
      if (opts.prepared === null) {
        linkError = asLinkSetupError(new Error('no prepared RDMA resources'));
        feed({ type: 'link-failed', reasonCode: SMC_CLC_DECL.INTERR });
        return;
      }
      try {
        const established = await opts.prepared.establish(link, socket, gate);
        if (done || sync !== null) {
          established.abort('the handshake fell back while the link came up');
          return;
        }
        connection = established;
        feed({ type: 'link-up' });
      } catch (err) {
        linkError = asLinkSetupError(err);
        log.info({ err: linkError }, 'SMC-R link setup failed');
        if (committed && !linkError.declineAfterCommit) {
          // The peer may be running its data path: falling back now would make the sides disagree.
          finish({
            kind: 'aborted',
            cause: 'protocol',
            reason: `SMC-R link failed after commit: ${linkError.message}`,
          });
          return;
        }
        feed({
          type: 'link-failed',
          reasonCode: declineCodeFor(linkError.reason) ?? SMC_CLC_DECL.ERR_RDYLNK,
        });
      }
    };

    const onData = (chunk: Buffer): void => {
      if (opts.expectServerReply === true && sniffed.byteLength < FIRST_MESSAGE_SNIFF_LENGTH) {
        sniffed = Buffer.concat([
          sniffed,
          chunk.subarray(0, FIRST_MESSAGE_SNIFF_LENGTH - sniffed.byteLength),
        ]);
        peerSpokeClc = serverReplyVerdict(sniffed) === 'clc';
      }
      feed({ type: 'data', bytes: chunk });
    };
    const onClosed = (): void => feed({ type: 'closed' });
    const onError = (err: Error): void => {
      log.debug({ err }, 'peer sidecar connection failed during CLC');
      feed({ type: 'closed' });
    };

    socket.on('data', onData);
    socket.once('end', onClosed);
    socket.once('close', onClosed);
    socket.once('error', onError);
    feed({ type: 'start' });
    if (opts.initial !== undefined && opts.initial.byteLength > 0) onData(opts.initial);
    // The peer's FIN may have arrived with its first bytes, before we listened for 'end'.
    if (socket.readableEnded || socket.destroyed) feed({ type: 'closed' });
    if (!done) socket.resume();
  });
}
