import { describe, expect, it } from 'vitest';
import { ConfigError } from './errors.js';
import { loadConfig } from './load.js';

const files = (content: Record<string, string>) => (path: string) => {
  const c = content[path];
  if (c === undefined) throw new Error(`ENOENT: no such file, open '${path}'`);
  return c;
};

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('fills every default from a minimal file', () => {
    const cfg = loadConfig({
      file: '/c.json',
      env: {},
      readFile: files({ '/c.json': '{"tenant":"team-a"}' }),
    });
    expect(cfg.tenant).toBe('team-a');
    expect(cfg.ports).toEqual({
      outbound: 15101,
      inbound: 15106,
      smc: 15100,
      metrics: 15190,
      health: 15121,
      admin: 15104,
    });
    expect(cfg.intercept.sidecarUid).toBe(7609);
    expect(cfg.intercept.excludeOutboundUids).toEqual([]);
    expect(cfg.policy).toEqual({
      mode: 'Prefer',
      allowedPeerTenants: [],
      kernelPeers: false,
      kernelPeerSkipMs: 600_000,
    });
    expect(cfg.cluster).toBe('cluster.local');
    expect(cfg.limits.rmbSize).toBe(65536);
    expect(cfg.limits.maxConnections).toBe(4096);
    expect(cfg.limits.maxRegisteredMemory).toBeNull();
    expect(cfg.timeouts.clcHandshakeMs).toBe(6000);
    expect(cfg.rdma.vlan).toBeNull();
  });

  it('lets the environment override the file, with list and number parsing', () => {
    const cfg = loadConfig({
      file: '/c.json',
      env: {
        SMC_TENANT: 'team-b',
        SMC_POLICY_MODE: 'Require',
        SMC_ALLOWED_PEER_TENANTS: 'team-a, team-c',
        SMC_EXCLUDE_OUTBOUND_PORTS: '22,5432',
        SMC_EXCLUDE_OUTBOUND_CIDRS: '169.254.0.0/16,fd00::/8',
        SMC_VLAN: '100',
        SMC_PKEY: '0x8001',
        SMC_INTERCEPT_INBOUND: 'false',
      },
      readFile: files({
        '/c.json': '{"tenant":"team-a","policy":{"mode":"Disabled"},"rdma":{"device":"mlx5_0"}}',
      }),
    });
    expect(cfg.tenant).toBe('team-b');
    expect(cfg.policy.mode).toBe('Require');
    expect(cfg.policy.allowedPeerTenants).toEqual(['team-a', 'team-c']);
    expect(cfg.intercept.excludeOutboundPorts).toEqual([22, 5432]);
    expect(cfg.intercept.excludeOutboundCidrs).toEqual(['169.254.0.0/16', 'fd00::/8']);
    expect(cfg.intercept.inbound).toBe(false);
    expect(cfg.rdma).toMatchObject({ device: 'mlx5_0', vlan: 100, pkey: 0x8001 });
  });

  it('accepts the names the operator webhook sets', () => {
    const cfg = loadConfig({
      env: {
        SMC_TENANT: 't',
        SMC_MODE: 'Require',
        SMC_DIRECTORY: '/var/run/smc/directory',
        SMC_OUTBOUND_PORT: '16001',
        SMC_INBOUND_PORT: '16006',
        SMC_PKEY: '0x8001',
        SMC_ALLOWED_PEER_TENANTS: '',
      },
    });
    expect(cfg.policy).toEqual({
      mode: 'Require',
      allowedPeerTenants: [],
      kernelPeers: false,
      kernelPeerSkipMs: 600_000,
    });
    expect(cfg.ports).toMatchObject({ outbound: 16001, inbound: 16006 });
    expect(cfg.rdma.pkey).toBe(0x8001);
    expect(
      loadConfig({ env: { SMC_TENANT: 't', SMC_MODE: 'Require', SMC_POLICY_MODE: 'Disabled' } }).policy.mode,
    ).toBe('Disabled');
    const err = errorOf(() => loadConfig({ env: { SMC_TENANT: 't', SMC_MODE: 'Off' } }));
    expect(err.issues[0]?.source).toBe('env SMC_MODE');
  });

  it('works from the environment alone', () => {
    const cfg = loadConfig({ env: { SMC_TENANT: 'solo' } });
    expect(cfg.tenant).toBe('solo');
  });

  it('reports every problem with its path and source', () => {
    const err = errorOf(() =>
      loadConfig({
        file: '/c.json',
        env: { SMC_POLICY_MODE: 'Sometimes', SMC_MAX_CONNECTIONS: 'lots' },
        readFile: files({
          '/c.json': JSON.stringify({
            tenant: 'Team_A',
            limits: { rmbSize: 100000 },
            intercept: { excludeOutboundCidrs: ['10.0.0.0/33'] },
            bogus: true,
          }),
        }),
      }),
    );
    const byPath = new Map(err.issues.map((i) => [i.path, i]));
    expect(byPath.get('tenant')?.source).toBe('file /c.json');
    expect(byPath.get('policy.mode')?.source).toBe('env SMC_POLICY_MODE');
    expect(byPath.get('limits.maxConnections')?.source).toBe('env SMC_MAX_CONNECTIONS');
    expect(byPath.get('limits.rmbSize')?.message).toMatch(/power of two/);
    expect(byPath.get('intercept.excludeOutboundCidrs.0')?.message).toMatch(/CIDR/);
    expect(byPath.get('')?.message).toMatch(/bogus/);
    expect(err.message).toMatch(/policy\.mode \[env SMC_POLICY_MODE\]/);
  });

  it('requires a tenant', () => {
    const err = errorOf(() => loadConfig({ env: {} }));
    expect(err.issues).toEqual([expect.objectContaining({ path: 'tenant', source: 'default' })]);
  });

  it('rejects clashing ports', () => {
    const err = errorOf(() => loadConfig({ env: { SMC_TENANT: 't', SMC_PORT_METRICS: '15101' } }));
    expect(err.issues[0]?.message).toMatch(/distinct/);
    expect(errorOf(() => loadConfig({ env: { SMC_TENANT: 't', SMC_PORT_ADMIN: '15190' } })).message).toMatch(
      /distinct/,
    );
  });

  it("takes other proxies' uids from SMC_EXCLUDE_OUTBOUND_UIDS", () => {
    const cfg = loadConfig({ env: { SMC_TENANT: 't', SMC_EXCLUDE_OUTBOUND_UIDS: '1337, 2102' } });
    expect(cfg.intercept.excludeOutboundUids).toEqual([1337, 2102]);
  });

  it('takes the admin port from SMC_PORT_ADMIN', () => {
    expect(loadConfig({ env: { SMC_TENANT: 't', SMC_PORT_ADMIN: '16000' } }).ports.admin).toBe(16000);
  });

  it('explains unreadable and malformed files', () => {
    expect(
      errorOf(() => loadConfig({ file: '/missing.json', env: {}, readFile: files({}) })).message,
    ).toMatch(/file \/missing\.json\]: cannot read: ENOENT/);
    expect(
      errorOf(() => loadConfig({ file: '/c.json', env: {}, readFile: files({ '/c.json': '{"tenant":' }) }))
        .message,
    ).toMatch(/not valid JSON/);
    expect(
      errorOf(() => loadConfig({ file: '/c.json', env: {}, readFile: files({ '/c.json': '[1]' }) })).message,
    ).toMatch(/must hold a JSON object/);
  });
});
