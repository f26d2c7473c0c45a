/**
 * Publishes the node's SmcNode: creates it when missing, keeps the agent's labels on it, and
 * replaces its status (a subresource) only when the content changed. Optimistic concurrency: every
 * write carries the resourceVersion it was computed from; a conflict re-reads and retries.
 */
import { ApiException, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { z } from 'zod';
import {
  SMC_API_GROUP,
  SMC_API_VERSION,
  SMCNODE_PLURAL,
  labelsSatisfied,
  sameContent,
  type SmcNodeObject,
} from './mapping.js';

/** What the agent reads back from the API server (validated at the edge; unknown keys dropped). */
const GidReadSchema = z.object({
  index: z.number().int(),
  gid: z.string(),
  type: z.enum(['IB', 'RoCEv1', 'RoCEv2']),
  netdev: z.string().optional(),
  vlan: z.number().int().optional(),
});

const PortReadSchema = z.object({
  port: z.number().int(),
  state: z.enum(['Down', 'Init', 'Armed', 'Active', 'ActiveDefer', 'Unknown']),
  linkLayer: z.enum(['InfiniBand', 'Ethernet', 'Unknown']).default('Unknown'),
  activeMtu: z.number().int().optional(),
  netdev: z.string().optional(),
  gids: z.array(GidReadSchema).default([]),
  pkeys: z.array(z.string()).default([]),
});

const StatusReadSchema = z.object({
  observedTime: z.string().optional(),
  deviceCount: z.number().int().optional(),
  devices: z
    .array(
      z.object({
        name: z.string(),
        pciAddress: z.string().optional(),
        ports: z.array(PortReadSchema).default([]),
      }),
    )
    .optional(),
  vlanNetdevs: z
    .array(z.object({ vlan: z.number().int(), netdev: z.string(), parent: z.string().optional() }))
    .optional(),
});

export const SmcNodeReadSchema = z.object({
  apiVersion: z.string().optional(),
  kind: z.string().optional(),
  metadata: z.object({
    name: z.string(),
    resourceVersion: z.string().optional(),
    labels: z.record(z.string(), z.string()).nullish(),
  }),
  spec: z.object({ nodeName: z.string() }),
  status: StatusReadSchema.nullish(),
});
export type SmcNodeRead = z.infer<typeof SmcNodeReadSchema>;

/** The API operations the publisher needs; the real one is {@link KubeSmcNodeStore}. */
export interface SmcNodeStore {
  /** null when the object does not exist. */
  get(name: string): Promise<SmcNodeRead | null>;
  create(obj: SmcNodeObject): Promise<SmcNodeRead>;
  /** PUT of the main resource (metadata/spec); the body carries metadata.resourceVersion. */
  replace(obj: SmcNodeObject): Promise<SmcNodeRead>;
  /** PUT of the status subresource; the body carries metadata.resourceVersion. */
  replaceStatus(obj: SmcNodeObject): Promise<SmcNodeRead>;
}

/** An API error with its HTTP status code (409 conflict, 404 not found, ...). */
export class StoreError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
    this.name = 'StoreError';
  }
}

function errorCode(err: unknown): number | undefined {
  if (err instanceof StoreError) return err.code;
  if (err instanceof ApiException) return err.code;
  return undefined;
}

function wrap(err: unknown, what: string): never {
  if (err instanceof ApiException) {
    const body: unknown = err.body;
    const message =
      typeof body === 'string'
        ? body
        : body !== null && typeof body === 'object' && 'message' in body
          ? String(body.message)
          : err.message;
    throw new StoreError(err.code, `${what}: HTTP ${err.code}: ${message}`);
  }
  throw err;
}

/** SmcNode operations over @kubernetes/client-node's CustomObjectsApi. */
export class KubeSmcNodeStore implements SmcNodeStore {
  private readonly api: CustomObjectsApi;
  private readonly base = { group: SMC_API_GROUP, version: SMC_API_VERSION, plural: SMCNODE_PLURAL };

  constructor(
    kc: KubeConfig,
    private readonly fieldManager = 'smc-node-agent',
  ) {
    this.api = kc.makeApiClient(CustomObjectsApi);
  }

  async get(name: string): Promise<SmcNodeRead | null> {
    try {
      return SmcNodeReadSchema.parse(await this.api.getClusterCustomObject({ ...this.base, name }));
    } catch (err) {
      if (errorCode(err) === 404) return null;
      return wrap(err, `get smcnode ${name}`);
    }
  }

  async create(obj: SmcNodeObject): Promise<SmcNodeRead> {
    try {
      const body = { ...obj, metadata: { name: obj.metadata.name, labels: obj.metadata.labels } };
      const created: unknown = await this.api.createClusterCustomObject({
        ...this.base,
        body,
        fieldManager: this.fieldManager,
      });
      return SmcNodeReadSchema.parse(created);
    } catch (err) {
      return wrap(err, `create smcnode ${obj.metadata.name}`);
    }
  }

  async replace(obj: SmcNodeObject): Promise<SmcNodeRead> {
    try {
      const replaced: unknown = await this.api.replaceClusterCustomObject({
        ...this.base,
        name: obj.metadata.name,
        body: obj,
        fieldManager: this.fieldManager,
      });
      return SmcNodeReadSchema.parse(replaced);
    } catch (err) {
      return wrap(err, `replace smcnode ${obj.metadata.name}`);
    }
  }

  async replaceStatus(obj: SmcNodeObject): Promise<SmcNodeRead> {
    try {
      const replaced: unknown = await this.api.replaceClusterCustomObjectStatus({
        ...this.base,
        name: obj.metadata.name,
        body: obj,
        fieldManager: this.fieldManager,
      });
      return SmcNodeReadSchema.parse(replaced);
    } catch (err) {
      return wrap(err, `replace smcnode ${obj.metadata.name} status`);
    }
  }
}

export type PublishResult = 'created' | 'updated' | 'unchanged';

export interface PublishOutcome {
  readonly result: PublishResult;
  /** Which writes were made, in order: create, labels, status. */
  readonly writes: readonly ('create' | 'labels' | 'status')[];
  readonly object: SmcNodeRead;
}

/**
 * Brings the live SmcNode in line with `desired`: create if missing, restore the agent's labels if
 * they were changed, replace the status if its content (everything but observedTime) differs.
 * Nothing is written when both already match.
 */
export async function publishSmcNode(
  store: SmcNodeStore,
  desired: SmcNodeObject,
  maxAttempts = 4,
): Promise<PublishOutcome> {
  const name = desired.metadata.name;
  const labels = desired.metadata.labels ?? {};
  const writes: ('create' | 'labels' | 'status')[] = [];
  let created = false;
  for (let attempt = 1; ; attempt++) {
    try {
      let live = await store.get(name);
      if (live === null) {
        live = await store.create(desired);
        created = true;
        writes.push('create');
      }
      if (!labelsSatisfied(live.metadata.labels, labels)) {
        live = await store.replace({
          apiVersion: desired.apiVersion,
          kind: desired.kind,
          metadata: {
            name,
            labels: { ...(live.metadata.labels ?? {}), ...labels },
            resourceVersion: live.metadata.resourceVersion,
          },
          spec: live.spec,
        });
        writes.push('labels');
      }
      // A missing status (just created) is written even when the inventory is empty.
      if (live.status == null || !sameContent(live.status, desired.status)) {
        live = await store.replaceStatus({
          ...desired,
          metadata: {
            ...desired.metadata,
            labels: live.metadata.labels ?? labels,
            resourceVersion: live.metadata.resourceVersion,
          },
        });
        writes.push('status');
      }
      const result: PublishResult = created ? 'created' : writes.length > 0 ? 'updated' : 'unchanged';
      return { result, writes, object: live };
    } catch (err) {
      const code = errorCode(err);
      // 409: someone else wrote in between (or a create raced another agent); re-read and retry.
      if ((code === 409 || code === 404) && attempt < maxAttempts) continue;
      throw err;
    }
  }
}
