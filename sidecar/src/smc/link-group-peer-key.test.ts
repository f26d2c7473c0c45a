import { describe, expect, it } from 'vitest';
import { EndpointDirectory } from '../directory/endpoint-directory.js';
import { endpoint } from '../directory/testing.js';
import { linkGroupPeerKey } from './link-group-manager.js';

describe('linkGroupPeerKey', () => {
  const dir = new EndpointDirectory([
    endpoint('10.244.1.5', { namespace: 'shop', pod: 'web-0', podIPs: ['10.244.1.5', 'fd00:10:244:1::5'] }),
    endpoint('10.244.1.6', { namespace: 'shop', pod: 'web-1', podIPs: ['10.244.1.6', 'fd00:10:244:1::6'] }),
  ]);
  const key = (address: string): string => linkGroupPeerKey(dir.lookup(address), address);

  it('is the pod for a peer sidecar, whichever of its addresses and spellings a connection used', () => {
    // The client dials either address; the server sees the client's v4 (IPv4-mapped on a dual-stack
    // listener) or its v6 source address.
    for (const a of ['10.244.1.5', '::ffff:10.244.1.5', 'fd00:10:244:1::5', 'fd00:10:244:1:0:0:0:5'])
      expect(key(a), a).toBe('shop/web-0');
    expect(key('fd00:10:244:1::6')).toBe('shop/web-1');
  });

  it('is the canonical address for a peer outside the directory (kernel SMC-R)', () => {
    expect(key('::ffff:10.9.0.1')).toBe('10.9.0.1');
    expect(key('FD00:0:0:0:0:0:0:9')).toBe('fd00::9');
    expect(linkGroupPeerKey(null, '10.9.0.1')).toBe('10.9.0.1');
    // An entry without a pod name cannot say which pod it is: its address stands in.
    expect(linkGroupPeerKey(endpoint('10.9.0.2', { namespace: '', pod: '' }), '10.9.0.2')).toBe('10.9.0.2');
  });
});
