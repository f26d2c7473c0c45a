import { z } from 'zod';
import { DIRECTORY_MOUNT_PATH } from '../../../operator/src/api/directory.js';
import { publicKeyFromBase64 } from '../../../operator/src/api/directory-signature.js';
import { SIDECAR_DEFAULT_PORTS, SIDECAR_DEFAULT_UID } from '../../../operator/src/api/sidecar.js';
import { DEFAULT_MAX_PEER_RMBE_SIZE } from '../handshake/machine.js';
import { parseCidr } from '../net/ip.js';

const port = z.number().int().min(1).max(65535);
const uid = z.number().int().min(0).max(0xfffffffe);

const cidr = z.string().refine(
  (s) => {
    try {
      parseCidr(s);
      return true;
    } catch {
      return false;
    }
  },
  { message: 'expected an IPv4 or IPv6 CIDR such as 10.0.0.0/8 or fd00::/8' },
);

const tenant = z
  .string()
  .regex(/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/, 'expected a lowercase DNS name (a-z, 0-9, "-", ".")');

const isPowerOfTwo = (n: number): boolean => n > 0 && (n & (n - 1)) === 0;

export const DATA_PATHS = ['auto', 'native', 'link-only'] as const;
export type DataPath = (typeof DATA_PATHS)[number];

export const POLICY_MODES = ['Prefer', 'Require', 'Disabled'] as const;
export type PolicyMode = (typeof POLICY_MODES)[number];

/** RMBE sizes expressible in CLC (2^(n+14), n = 0..15). */
export const RMB_SIZE_MIN = 16 * 1024;
export const RMB_SIZE_MAX = 512 * 1024 * 1024;

export const SidecarConfigSchema = z
  .object({
    /** This pod's tenant; matched against peers' tenants from the endpoint directory. */
    tenant,
    /** The cluster's name: with the tenant it derives the tenant's SMC User EID (sidecar/src/eid). */
    cluster: z.string().min(1).max(253).default('cluster.local'),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    rdma: z
      .object({
        /** RDMA device name (mlx5_0, rxe0), a comma list to try in order, or `auto` (every device). */
        device: z.string().min(1).default('rxe0'),
        /**
         * The node's address on the RoCE network (the webhook passes status.hostIP): when set, the
         * device and GID index are the ones whose GID carries it, and gidIndex is ignored.
         */
        gidAddress: z.string().min(1).nullable().default(null),
        /** Devices a device plugin mapped into the container (its SMC_RDMA_DEVICES); null: no plugin. */
        mappedDevices: z.array(z.string().min(1)).nullable().default(null),
        /** Port number on the device (1-based, as ibv_query_port). */
        ibPort: z.number().int().min(1).max(255).default(1),
        /** GID table index used for RoCE addressing. */
        gidIndex: z.number().int().min(0).max(255).default(1),
        /** 802.1Q VLAN id of the RoCE network; null when untagged. */
        vlan: z.number().int().min(1).max(4094).nullable().default(null),
        /** InfiniBand partition key; 0xffff is the default full-membership partition. */
        pkey: z.number().int().min(0).max(0xffff).default(0xffff),
        /**
         * What carries the bytes of an SMC-R connection: `native` (the addon's DataPump),
         * `js` (RDMA WRITE + CDC posted from JavaScript), `auto` (native when the addon has it,
         * else js), or `link-only` (bring the link up and confirm it, then fall back to TCP:
         * for testing the link layer).
         */
        dataPath: z.enum(DATA_PATHS).default('auto'),
      })
      .strict()
      .prefault({}),
    ports: z
      .object({
        // Defaults clear of Istio's ports (operator/src/api/sidecar.ts): 15101/15106/15100/15190/15121/15104.
        outbound: port.default(SIDECAR_DEFAULT_PORTS.outbound),
        inbound: port.default(SIDECAR_DEFAULT_PORTS.inbound),
        smc: port.default(SIDECAR_DEFAULT_PORTS.smc),
        metrics: port.default(SIDECAR_DEFAULT_PORTS.metrics),
        health: port.default(SIDECAR_DEFAULT_PORTS.health),
        /** Admin endpoint (GET /connections), bound to 127.0.0.1 and ::1 only. */
        admin: port.default(SIDECAR_DEFAULT_PORTS.admin),
      })
      .strict()
      .prefault({})
      .refine((p) => new Set(Object.values(p)).size === Object.values(p).length, {
        message: 'sidecar ports must be distinct',
      }),
    directory: z
      .object({
        /**
         * Endpoint directory (schema: operator/src/api/directory.ts): the folder the operator's
         * ConfigMaps are projected into (every shard-*.json in it), or one JSON document.
         */
        path: z.string().min(1).default(DIRECTORY_MOUNT_PATH),
        /** Period of the stat() fallback that backs fs.watch. */
        pollIntervalMs: z.number().int().min(100).max(600_000).default(2000),
        /**
         * Ed25519 public keys (base64 of the 32 raw bytes) the operator signs the directory with.
         * Set (the webhook sets it): only shards signed with one of them, for `namespace`, and not
         * older than the last accepted one are used. Empty: shards are read unchecked (a directory
         * written by hand, the lab).
         */
        publicKeys: z
          .array(
            z.string().refine((k) => {
              try {
                publicKeyFromBase64(k);
                return true;
              } catch {
                return false;
              }
            }, 'expected an Ed25519 public key: 32 bytes in base64'),
          )
          .default([]),
        /** The pod's namespace (POD_NAMESPACE): a signed shard built for another namespace is refused. */
        namespace: z.string().min(1).nullable().default(null),
      })
      .strict()
      .prefault({})
      .refine((d) => d.publicKeys.length === 0 || d.namespace !== null, {
        message: 'directory.namespace (POD_NAMESPACE) is required with directory.publicKeys',
      }),
    intercept: z
      .object({
        /** The sidecar runs as this uid; its own sockets are never redirected (meta skuid). */
        sidecarUid: uid.default(SIDECAR_DEFAULT_UID),
        /**
         * Sockets of these uids are not redirected outbound either: another proxy in the pod, such
         * as Istio's Envoy (1337), whose own connections must leave as they are (docs/istio.md).
         */
        excludeOutboundUids: z.array(uid).default([]),
        /** Redirect inbound TCP to the inbound listener as well as outbound. */
        inbound: z.boolean().default(true),
        excludeOutboundPorts: z.array(port).default([]),
        excludeInboundPorts: z.array(port).default([]),
        /** Destination CIDRs whose outbound connections are left alone. */
        excludeOutboundCidrs: z.array(cidr).default([]),
        /** Source CIDRs whose inbound connections are left alone. */
        excludeInboundCidrs: z.array(cidr).default([]),
        /**
         * `all`: every outbound TCP connection goes through the sidecar. `peers`: only connections
         * to directory peers it may upgrade with (an nftables set that `smc intercept sync` keeps
         * in step with the directory and policy); everything else leaves untouched, at plain TCP's
         * cost, and inbound TCP from peers known not to upgrade is not redirected either. With
         * `policy.kernelPeers` outbound stays `all` (a kernel SMC-R peer is in no directory).
         */
        redirect: z.enum(['all', 'peers']).default('all'),
      })
      .strict()
      .prefault({}),
    policy: z
      .object({
        /** Prefer: upgrade when possible, else relay TCP. Require: never fall back for peers with a sidecar. Disabled: relay only. */
        mode: z.enum(POLICY_MODES).default('Prefer'),
        /** Peer tenants this pod may talk SMC-R to besides its own; the peer must allow this tenant too. */
        allowedPeerTenants: z
          .array(tenant)
          .max(7, 'at most 7: a CLC Proposal carries 8 user EIDs, the own tenant first')
          .default([]),
        /**
         * Accept SMC-R from peers without a sidecar that run the Linux kernel's SMC-R (their SYN
         * carries the SMC TCP option; our SYN-ACK must too, see docs/smc-option.md): the inbound
         * listener answers their CLC Proposal directly. They must share one of our User EIDs.
         */
        kernelPeers: z.boolean().default(false),
        /**
         * A destination that echoed the SMC TCP option but did not answer our Proposal in CLC is
         * not offered SMC (no option on our SYNs) for this long; 0 retries it every time.
         */
        kernelPeerSkipMs: z.number().int().min(0).max(2_147_483_647).default(600_000),
      })
      .strict()
      .prefault({}),
    limits: z
      .object({
        /**
         * Concurrent SMC-R connections (both directions, each with one RMB). One more falls back
         * to TCP: the client relays it straight to its destination, the server declines it
         * (SMC_CLC_DECL_MEM); reason `limit-reached`. Plain TCP relays are not counted.
         */
        maxConnections: z.number().int().min(1).max(1_000_000).default(4096),
        /** Receive buffer (RMBE) per SMC connection, bytes; a power of two. */
        rmbSize: z
          .number()
          .int()
          .min(RMB_SIZE_MIN)
          .max(RMB_SIZE_MAX)
          .refine(isPowerOfTwo, { message: 'must be a power of two' })
          .default(64 * 1024),
        /**
         * Largest RMBE (bytes, a power of two) taken from a peer's CLC Accept/Confirm; a larger one
         * is declined (SMC_CLC_DECL_MEM, reason `peer-rmb-too-large`) before anything is allocated:
         * the staging ring that mirrors it would be pinned memory the peer chose (up to 512 MiB).
         * null: the larger of 1 MiB (the largest rmbSize an SmcPolicy allows) and rmbSize.
         */
        maxPeerRmbSize: z
          .number()
          .int()
          .min(RMB_SIZE_MIN)
          .max(RMB_SIZE_MAX)
          .refine(isPowerOfTwo, { message: 'must be a power of two' })
          .nullable()
          .default(null),
        /**
         * Bytes of RMBs (rmbSize per SMC-R connection) reserved at once; a connection that would
         * exceed it falls back as for maxConnections. null: the larger of 256 MiB (half the
         * injected sidecar's 512Mi memory limit) and rmbSize. A value below rmbSize is accepted
         * and admits no SMC-R connection: an SmcPolicy may set it without rmbSize, and refusing
         * the configuration would stop the pod's sidecar instead.
         */
        maxRegisteredMemory: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).nullable().default(null),
        /**
         * RMBs a link group keeps registered for its next connections after their connection
         * closed in order (a join then needs no CONFIRM RKEY). Beyond it, and for every RMB of an
         * aborted connection, the peer deletes the rkey (LLC DELETE RKEY) and the RMB is
         * deregistered. 0: no pool.
         */
        rmbPoolSize: z.number().int().min(0).max(255).default(16),
        /**
         * CLC exchanges and link set-ups in flight at once. A connection beyond it falls back at
         * once (reason `handshake-overload`: the client relays to the destination over TCP, the
         * server declines with SMC_CLC_DECL_MEM) rather than queue into a handshake timeout. 16:
         * in bench/burst (1,000 connections at once, TCG) 64 let 207 handshakes time out, 16 none.
         */
        maxConcurrentHandshakes: z.number().int().min(1).max(65_535).default(16),
      })
      .strict()
      .prefault({})
      .refine((l) => l.maxPeerRmbSize === null || l.maxPeerRmbSize >= l.rmbSize, {
        message:
          'limits.maxPeerRmbSize must be at least limits.rmbSize: peers configured alike offer rmbSize',
        path: ['maxPeerRmbSize'],
      }),
    timeouts: z
      .object({
        /** Whole CLC exchange, preamble to Confirm (kernel CLC_WAIT_TIME is 6 s). */
        clcHandshakeMs: z.number().int().min(10).max(120_000).default(6000),
        /**
         * Link setup after Accept/Confirm: QP to RTS and LLC CONFIRM LINK (kernel
         * SMC_LLC_WAIT_FIRST_TIME is 5 s). Once a side is committed it waits this
         * plus clcHandshakeMs for the other side's answer.
         */
        linkSetupMs: z.number().int().min(10).max(120_000).default(5000),
        /** A link group without connections is torn down after this long. */
        linkGroupIdleMs: z.number().int().min(1000).max(86_400_000).default(600_000),
        /** TCP connect to the original destination or the peer sidecar. */
        connectMs: z.number().int().min(10).max(120_000).default(10_000),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export type SidecarConfig = z.output<typeof SidecarConfigSchema>;

/** The peer RMBE bound in effect: `limits.maxPeerRmbSize`, or at least what we offer ourselves. */
export function maxPeerRmbSize(limits: SidecarConfig['limits']): number {
  return limits.maxPeerRmbSize ?? Math.max(DEFAULT_MAX_PEER_RMBE_SIZE, limits.rmbSize);
}

/** The default RMB budget: 4096 connections (the default maxConnections) of 64 KiB. */
export const DEFAULT_MAX_REGISTERED_MEMORY = 256 * 1024 * 1024;

/** The RMB budget in effect: `limits.maxRegisteredMemory`, or the default, at least one rmbSize. */
export function maxRegisteredMemory(limits: SidecarConfig['limits']): number {
  return limits.maxRegisteredMemory ?? Math.max(DEFAULT_MAX_REGISTERED_MEMORY, limits.rmbSize);
}

/** What a config file may contain: every field but `tenant` is optional. */
export type SidecarConfigInput = z.input<typeof SidecarConfigSchema>;
