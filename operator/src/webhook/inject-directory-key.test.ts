import { describe, expect, it } from 'vitest';
import { generateSigningKeyPem, signingKeyFromPem } from '../api/directory-signature.js';
import { SIDECAR_DEFAULT_PORTS, SIDECAR_DEFAULT_UID } from '../api/sidecar.js';
import { policy } from '../testing/fixtures.js';
import { sidecarContainer, type InjectionSettings } from './inject.js';

const base: InjectionSettings = {
  sidecarImage: 'smc:1',
  imagePullPolicy: 'IfNotPresent',
  directoryShards: 2,
  cluster: 'east.example',
  rdmaResource: 'smc.dev/rdma',
  sidecarMode: 'container',
  ports: SIDECAR_DEFAULT_PORTS,
  sidecarUid: SIDECAR_DEFAULT_UID,
  excludeOutboundUids: [],
  interceptInbound: true,
};

type Env = { name: string; value?: string; valueFrom?: unknown }[];
const envOf = (s: InjectionSettings, mode: 'native' | 'container'): Env =>
  sidecarContainer(s, policy('p', { tenant: 'blue' }), mode)['env'] as Env;

describe('the directory public key in the injected sidecar', () => {
  const key = signingKeyFromPem(generateSigningKeyPem()).publicKey;

  it('is set as SMC_DIRECTORY_PUBLIC_KEYS, next to the namespace from the downward API', () => {
    for (const mode of ['native', 'container'] as const) {
      const env = envOf({ ...base, directoryPublicKeys: [key] }, mode);
      expect(env).toContainEqual({ name: 'SMC_DIRECTORY_PUBLIC_KEYS', value: key });
      expect(env).toContainEqual({
        name: 'POD_NAMESPACE',
        valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } },
      });
    }
  });

  it('is absent until the operator has loaded its key', () => {
    expect(envOf(base, 'container').map((e) => e.name)).not.toContain('SMC_DIRECTORY_PUBLIC_KEYS');
  });
});
