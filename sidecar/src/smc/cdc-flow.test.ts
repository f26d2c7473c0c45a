import { describe, expect, it } from 'vitest';
import type { CdcMessage } from '../protocol/cdc.js';
import type { Cursor } from '../protocol/cursor.js';
import { CdcFlow, CdcFlowError } from './cdc-flow.js';

const cdc = (producer: Cursor, consumer: Cursor): CdcMessage => ({
  kind: 'cdc',
  seqno: 0,
  token: 1,
  producer,
  consumer,
  producerFlags: {
    writeBlocked: false,
    urgentPending: false,
    urgentPresent: false,
    cursorUpdateRequested: false,
    failoverValidation: false,
  },
  connectionState: { peerDoneWriting: false, peerConnectionClosed: false, peerConnectionAbort: false },
});

describe('CdcFlow', () => {
  it('limits writes to the space the peer has freed and splits at the wrap', () => {
    const f = new CdcFlow(16, 10);
    expect(f.txFree()).toBe(10);
    expect(f.txSegments(7)).toEqual([{ offset: 0, length: 7 }]);
    f.commitTx(7);
    expect(f.producerCursor()).toEqual({ wrap: 0, count: 7 });
    expect(f.txFree()).toBe(3);
    expect(() => f.txSegments(4)).toThrow(CdcFlowError);
    expect(f.applyPeer(cdc({ wrap: 0, count: 0 }, { wrap: 0, count: 5 }))).toEqual({ readable: 0, freed: 5 });
    expect(f.txSegments(6)).toEqual([
      { offset: 7, length: 3 },
      { offset: 0, length: 3 },
    ]);
    f.commitTx(6);
    expect(f.producerCursor()).toEqual({ wrap: 1, count: 3 });
    expect(f.txDrained()).toBe(false);
    f.applyPeer(cdc({ wrap: 0, count: 0 }, { wrap: 1, count: 3 }));
    expect(f.txDrained()).toBe(true);
  });

  it('reads what the peer produced, across the wrap, and acknowledges with the consumer cursor', () => {
    const f = new CdcFlow(8, 8);
    expect(f.applyPeer(cdc({ wrap: 0, count: 6 }, { wrap: 0, count: 0 })).readable).toBe(6);
    f.commitRx(6);
    expect(f.consumerCursor()).toEqual({ wrap: 0, count: 6 });
    expect(f.applyPeer(cdc({ wrap: 1, count: 4 }, { wrap: 0, count: 0 })).readable).toBe(6);
    expect(f.rxSegments()).toEqual([
      { offset: 6, length: 2 },
      { offset: 0, length: 4 },
    ]);
    f.commitRx(6);
    expect(f.consumerCursor()).toEqual({ wrap: 1, count: 4 });
    expect(f.rxPending()).toBe(0);
  });

  it('rejects a peer that overruns our buffer or acknowledges unsent bytes', () => {
    const f = new CdcFlow(8, 8);
    f.applyPeer(cdc({ wrap: 0, count: 6 }, { wrap: 0, count: 0 }));
    expect(() => f.applyPeer(cdc({ wrap: 1, count: 1 }, { wrap: 0, count: 0 }))).toThrow(/overruns/);
    expect(() => new CdcFlow(8, 8).applyPeer(cdc({ wrap: 0, count: 0 }, { wrap: 0, count: 1 }))).toThrow(
      /ahead/,
    );
  });
});
