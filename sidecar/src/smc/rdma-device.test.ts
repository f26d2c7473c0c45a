import { describe, expect, it } from 'vitest';
import type { GidEntry, PortAttr } from '../../../native/index.js';
import { checkPortAndGid } from './rdma-device.js';

const port: PortAttr = {
  port: 1,
  state: 'ACTIVE',
  maxMtu: 4096,
  activeMtu: 1024,
  linkLayer: 'Ethernet',
  gidTblLen: 16,
  pkeyTblLen: 1,
  lid: 0,
  smLid: 0,
  portCapFlags: 0,
  activeSpeed: 0,
  activeWidth: 0,
  maxMsgSz: 0,
};
const gid = (index: number, type: GidEntry['type']): GidEntry => ({
  index,
  port: 1,
  gid: index === 0 ? 'fe80::5054:ff:fe12:3456' : '::ffff:10.77.0.1',
  type,
  netdev: 'eth0',
  ifindex: 2,
});

describe('checkPortAndGid', () => {
  const gids = [gid(0, 'RoCEv1'), gid(1, 'RoCEv2')];

  it('accepts an active RoCE port with the configured GID', () => {
    expect(checkPortAndGid(port, gids, 1)).toEqual({ gid: gids[1] });
  });

  it('explains what is wrong otherwise', () => {
    expect(checkPortAndGid({ ...port, state: 'DOWN' }, gids, 1)).toEqual({
      problem: 'port 1 is DOWN, not ACTIVE',
    });
    expect(checkPortAndGid({ ...port, linkLayer: 'InfiniBand' }, gids, 1)).toMatchObject({
      problem: expect.stringMatching(/not RoCE/),
    });
    expect(checkPortAndGid(port, gids, 3)).toEqual({ problem: 'GID index 3 is not populated' });
    expect(checkPortAndGid(port, [gid(1, 'IB')], 1)).toEqual({ problem: 'GID 1 is IB' });
  });
});
