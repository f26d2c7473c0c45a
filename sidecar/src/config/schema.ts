import { z } from 'zod';
import { DIRECTORY_MOUNT_PATH } from '../../../operator/src/api/directory.js';
import { parseCidr } from '../net/ip.js';

const port = z.number().int().min(1).max(65535);

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

export const DATA_PATHS = ['auto', 'native', 'js', 'link-only'] as const;
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
        outbound: port.default(15001),
        inbound: port.default(15006),
        smc: port.default(15100),
        metrics: port.default(15090),
        health: port.default(15021),
        /** Admin endpoint (GET /connections), bound to 127.0.0.1 and ::1 only. */
        admin: port.default(15000),
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
      })
      .strict()
      .prefault({}),
    intercept: z
      .object({
        /** The sidecar runs as this uid; its own sockets are never redirected (meta skuid). */
        sidecarUid: z.number().int().min(0).max(0xfffffffe).default(1337),
        /** Redirect inbound TCP to the inbound listener as well as outbound. */
        inbound: z.boolean().default(true),
        excludeOutboundPorts: z.array(port).default([]),
        excludeInboundPorts: z.array(port).default([]),
        /** Destination CIDRs whose outbound connections are left alone. */
        excludeOutboundCidrs: z.array(cidr).default([]),
        /** Source CIDRs whose inbound connections are left alone. */
        excludeInboundCidrs: z.array(cidr).default([]),
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
        /** Concurrent proxied connections (both directions); more are reset. */
        maxConnections: z.number().int().min(1).max(1_000_000).default(4096),
        /** Receive buffer (RMBE) per SMC connection, bytes; a power of two. */
        rmbSize: z
          .number()
          .int()
          .min(RMB_SIZE_MIN)
          .max(RMB_SIZE_MAX)
          .refine(isPowerOfTwo, { message: 'must be a power of two' })
          .default(64 * 1024),
      })
      .strict()
      .prefault({}),
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
/** What a config file may contain: every field but `tenant` is optional. */
export type SidecarConfigInput = z.input<typeof SidecarConfigSchema>;
