import type { Directory, DirectoryEndpoint } from '../../../operator/src/api/directory.js';

/** A directory endpoint with test defaults. */
export function endpoint(podIP: string, over: Partial<DirectoryEndpoint> = {}): DirectoryEndpoint {
  return {
    podIP,
    node: 'node-a',
    namespace: 'default',
    pod: `pod-${podIP}`,
    tenant: 'team-a',
    sidecarPort: 15100,
    allowedPeerTenants: [],
    ...over,
  };
}

export function directoryDoc(endpoints: DirectoryEndpoint[], shard = 0, shards = 1): Directory {
  return { version: 1, shard, shards, endpoints };
}
