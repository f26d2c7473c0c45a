import { describe, expect, it } from 'vitest';
import type { GidEntry } from '../../../native/index.js';
import { candidateDevices, selectGidByAddress, type DeviceGids } from './gid-select.js';

const gid = (index: number, text: string, type: GidEntry['type']): GidEntry => ({
  index,
  port: 1,
  gid: text,
  type,
  netdev: 'eth0',
  ifindex: 2,
});

const rxe0: DeviceGids = {
  device: 'rxe0',
  port: 1,
  gids: [
    gid(0, 'fe80::5054:ff:fe77:1', 'RoCEv2'),
    gid(1, '::ffff:10.77.0.1', 'RoCEv2'),
    gid(2, '::ffff:10.77.0.1', 'RoCEv1'),
  ],
};
const mlx: DeviceGids = {
  device: 'mlx5_0',
  port: 1,
  gids: [gid(0, 'fe80::1', 'RoCEv1'), gid(3, '::ffff:192.168.5.7', 'RoCEv1')],
};

describe('selectGidByAddress', () => {
  it('picks the RoCE v2 GID that carries the node address', () => {
    expect(selectGidByAddress([mlx, rxe0], '10.77.0.1')).toEqual({ device: 'rxe0', gidIndex: 1 });
  });

  it('takes a RoCE v1 GID only when no device has a v2 one', () => {
    expect(selectGidByAddress([rxe0, mlx], '192.168.5.7')).toEqual({ device: 'mlx5_0', gidIndex: 3 });
  });

  it('matches an IPv6 node address', () => {
    const v6: DeviceGids = { device: 'rxe1', port: 1, gids: [gid(4, 'fd00::7', 'RoCEv2')] };
    expect(selectGidByAddress([rxe0, v6], 'fd00::7')).toEqual({ device: 'rxe1', gidIndex: 4 });
  });

  it('says which devices it searched when the address is on none', () => {
    const r = selectGidByAddress([rxe0, mlx], '10.0.0.9');
    expect(r).toEqual({ problem: 'no RoCE GID for 10.0.0.9 on device(s) rxe0, mlx5_0' });
    expect(selectGidByAddress([], '10.0.0.9')).toEqual({
      problem: 'no RoCE GID for 10.0.0.9 on device(s) none',
    });
  });

  it('ignores a malformed address instead of throwing', () => {
    expect('problem' in selectGidByAddress([rxe0], 'not-an-ip')).toBe(true);
  });
});

describe('candidateDevices', () => {
  it('auto is every device present, limited to what a device plugin mapped', () => {
    expect(candidateDevices('auto', null, ['rxe0', 'rxe1'])).toEqual(['rxe0', 'rxe1']);
    expect(candidateDevices('auto', ['rxe1'], ['rxe0', 'rxe1'])).toEqual(['rxe1']);
  });

  it('a device plugin that mapped none leaves no candidate', () => {
    expect(candidateDevices('auto', [], ['rxe0'])).toEqual([]);
  });

  it('a configured list keeps its order and drops absent devices', () => {
    expect(candidateDevices('mlx5_1, rxe0', null, ['rxe0', 'mlx5_1'])).toEqual(['mlx5_1', 'rxe0']);
    expect(candidateDevices('mlx5_9', null, ['rxe0'])).toEqual([]);
  });
});
