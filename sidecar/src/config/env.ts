/**
 * Environment overrides: each variable sets one config field. Pure: turns an
 * environment into a partial config object plus where each value came from.
 */

type Kind = 'string' | 'int' | 'nullableInt' | 'bool' | 'intList' | 'stringList';

interface EnvBinding {
  env: string;
  /** Other names accepted for the same field (the primary name wins), e.g. those the operator's webhook sets. */
  aliases?: readonly string[];
  path: readonly string[];
  kind: Kind;
}

export const ENV_BINDINGS: readonly EnvBinding[] = [
  { env: 'SMC_TENANT', path: ['tenant'], kind: 'string' },
  { env: 'SMC_CLUSTER', path: ['cluster'], kind: 'string' },
  { env: 'SMC_LOG_LEVEL', path: ['logLevel'], kind: 'string' },
  { env: 'SMC_RDMA_DEVICE', path: ['rdma', 'device'], kind: 'string' },
  { env: 'SMC_RDMA_PORT', path: ['rdma', 'ibPort'], kind: 'int' },
  { env: 'SMC_GID_INDEX', path: ['rdma', 'gidIndex'], kind: 'int' },
  { env: 'SMC_GID_ADDRESS', path: ['rdma', 'gidAddress'], kind: 'string' },
  { env: 'SMC_RDMA_DEVICES', path: ['rdma', 'mappedDevices'], kind: 'stringList' },
  { env: 'SMC_VLAN', path: ['rdma', 'vlan'], kind: 'nullableInt' },
  { env: 'SMC_PKEY', path: ['rdma', 'pkey'], kind: 'int' },
  { env: 'SMC_RDMA_DATA_PATH', path: ['rdma', 'dataPath'], kind: 'string' },
  { env: 'SMC_PORT_OUTBOUND', aliases: ['SMC_OUTBOUND_PORT'], path: ['ports', 'outbound'], kind: 'int' },
  { env: 'SMC_PORT_INBOUND', aliases: ['SMC_INBOUND_PORT'], path: ['ports', 'inbound'], kind: 'int' },
  { env: 'SMC_PORT_SMC', path: ['ports', 'smc'], kind: 'int' },
  { env: 'SMC_PORT_METRICS', path: ['ports', 'metrics'], kind: 'int' },
  { env: 'SMC_PORT_HEALTH', path: ['ports', 'health'], kind: 'int' },
  { env: 'SMC_PORT_ADMIN', path: ['ports', 'admin'], kind: 'int' },
  { env: 'SMC_DIRECTORY_PATH', aliases: ['SMC_DIRECTORY'], path: ['directory', 'path'], kind: 'string' },
  { env: 'SMC_DIRECTORY_POLL_MS', path: ['directory', 'pollIntervalMs'], kind: 'int' },
  // Set by the operator's webhook: the keys the directory must be signed with, and (downward API)
  // the pod's namespace, the only one whose directory shards it accepts.
  { env: 'SMC_DIRECTORY_PUBLIC_KEYS', path: ['directory', 'publicKeys'], kind: 'stringList' },
  {
    env: 'SMC_DIRECTORY_NAMESPACE',
    aliases: ['POD_NAMESPACE'],
    path: ['directory', 'namespace'],
    kind: 'string',
  },
  { env: 'SMC_SIDECAR_UID', path: ['intercept', 'sidecarUid'], kind: 'int' },
  { env: 'SMC_EXCLUDE_OUTBOUND_UIDS', path: ['intercept', 'excludeOutboundUids'], kind: 'intList' },
  { env: 'SMC_INTERCEPT_INBOUND', path: ['intercept', 'inbound'], kind: 'bool' },
  { env: 'SMC_EXCLUDE_OUTBOUND_PORTS', path: ['intercept', 'excludeOutboundPorts'], kind: 'intList' },
  { env: 'SMC_EXCLUDE_INBOUND_PORTS', path: ['intercept', 'excludeInboundPorts'], kind: 'intList' },
  { env: 'SMC_EXCLUDE_OUTBOUND_CIDRS', path: ['intercept', 'excludeOutboundCidrs'], kind: 'stringList' },
  { env: 'SMC_EXCLUDE_INBOUND_CIDRS', path: ['intercept', 'excludeInboundCidrs'], kind: 'stringList' },
  { env: 'SMC_INTERCEPT_REDIRECT', path: ['intercept', 'redirect'], kind: 'string' },
  { env: 'SMC_POLICY_MODE', aliases: ['SMC_MODE'], path: ['policy', 'mode'], kind: 'string' },
  { env: 'SMC_ALLOWED_PEER_TENANTS', path: ['policy', 'allowedPeerTenants'], kind: 'stringList' },
  { env: 'SMC_KERNEL_PEERS', path: ['policy', 'kernelPeers'], kind: 'bool' },
  { env: 'SMC_KERNEL_PEER_SKIP_MS', path: ['policy', 'kernelPeerSkipMs'], kind: 'int' },
  { env: 'SMC_MAX_CONNECTIONS', path: ['limits', 'maxConnections'], kind: 'int' },
  { env: 'SMC_RMB_SIZE', path: ['limits', 'rmbSize'], kind: 'int' },
  { env: 'SMC_RMB_POOL_SIZE', path: ['limits', 'rmbPoolSize'], kind: 'int' },
  { env: 'SMC_MAX_CONCURRENT_HANDSHAKES', path: ['limits', 'maxConcurrentHandshakes'], kind: 'int' },
  { env: 'SMC_MAX_PEER_RMB_SIZE', path: ['limits', 'maxPeerRmbSize'], kind: 'nullableInt' },
  { env: 'SMC_MAX_REGISTERED_MEMORY', path: ['limits', 'maxRegisteredMemory'], kind: 'nullableInt' },
  { env: 'SMC_CLC_TIMEOUT_MS', path: ['timeouts', 'clcHandshakeMs'], kind: 'int' },
  { env: 'SMC_LINK_SETUP_TIMEOUT_MS', path: ['timeouts', 'linkSetupMs'], kind: 'int' },
  { env: 'SMC_LINK_GROUP_IDLE_MS', path: ['timeouts', 'linkGroupIdleMs'], kind: 'int' },
  { env: 'SMC_CONNECT_TIMEOUT_MS', path: ['timeouts', 'connectMs'], kind: 'int' },
];

/** Names the config file; not itself a config field. */
export const CONFIG_FILE_ENV = 'SMC_CONFIG_FILE';

export type EnvValue = string | number | boolean | null | (string | number)[];

/** Integers become numbers; anything else stays a string for the schema to reject with the right path. */
function toInt(raw: string): string | number {
  const t = raw.trim();
  if (/^0x[0-9a-f]+$/i.test(t)) return parseInt(t, 16);
  return /^-?\d+$/.test(t) ? Number(t) : raw;
}

function list(raw: string): string[] {
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

function convert(kind: Kind, raw: string): EnvValue {
  switch (kind) {
    case 'string':
      return raw;
    case 'int':
      return toInt(raw);
    case 'nullableInt':
      return ['', 'none', 'null'].includes(raw.trim().toLowerCase()) ? null : toInt(raw);
    case 'bool': {
      const t = raw.trim().toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(t)) return true;
      if (['0', 'false', 'no', 'off'].includes(t)) return false;
      return raw;
    }
    case 'intList':
      return list(raw).map(toInt);
    case 'stringList':
      return list(raw);
  }
}

export interface EnvOverrides {
  /** Nested partial config object. */
  values: Record<string, unknown>;
  /** Dotted config path → environment variable that set it. */
  sources: Map<string, string>;
}

export function configFromEnv(env: Readonly<Record<string, string | undefined>>): EnvOverrides {
  const values: Record<string, unknown> = {};
  const sources = new Map<string, string>();
  for (const b of ENV_BINDINGS) {
    const name = [b.env, ...(b.aliases ?? [])].find((n) => env[n] !== undefined);
    const raw = name === undefined ? undefined : env[name];
    if (name === undefined || raw === undefined) continue;
    let node = values;
    for (const key of b.path.slice(0, -1)) {
      const child = node[key];
      if (typeof child === 'object' && child !== null && !Array.isArray(child)) {
        node = child as Record<string, unknown>;
      } else {
        const fresh: Record<string, unknown> = {};
        node[key] = fresh;
        node = fresh;
      }
    }
    node[b.path[b.path.length - 1] ?? ''] = convert(b.kind, raw);
    sources.set(b.path.join('.'), name);
  }
  return { values, sources };
}
