/**
 * Publishes the node's SmcNode: creates it when missing, keeps the agent's labels on it, and
 * replaces its status (a subresource) only when the content changed. Optimistic concurrency: every
 * write carries the resourceVersion it was computed from; a conflict re-reads and retries.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { z } from 'zod';
import { ApiError } from '../../../operator/src/errors.js';
import { KubeClient } from '../../../operator/src/kube/client.js';
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
  if (err instanceof ApiError) return err.status;
  return undefined;
}

function wrap(err: unknown, what: string): never {
  // The ApiError's message has the verb, path, status and the API server's message.
  if (err instanceof ApiError) throw new StoreError(err.status, `${what}: ${err.message}`);
  throw err;
}

const SMCNODES_PATH = `/apis/${SMC_API_GROUP}/${SMC_API_VERSION}/${SMCNODE_PLURAL}`;

/**
 * SmcNode operations over the operator's API-server client (operator/src/kube/client.ts), so the
 * operator and the node agent talk to the API server one way: TLS and credentials from the
 * KubeConfig, a keep-alive agent, a request timeout, every answer checked with zod.
 */
export class KubeSmcNodeStore implements SmcNodeStore {
  private readonly client: KubeClient;

  constructor(
    kc: KubeConfig,
    private readonly fieldManager = 'smc-node-agent',
  ) {
    this.client = new KubeClient(kc, 'smc-node-agent');
  }

  /** Releases the pooled connections. */
  close(): void {
    this.client.close();
  }

  private path(name: string, status = false): string {
    return `${SMCNODES_PATH}/${encodeURIComponent(name)}${status ? '/status' : ''}`;
  }

  async get(name: string): Promise<SmcNodeRead | null> {
    try {
      return await this.client.request('GET', this.path(name), SmcNodeReadSchema);
    } catch (err) {
      if (errorCode(err) === 404) return null;
      return wrap(err, `get smcnode ${name}`);
    }
  }

  async create(obj: SmcNodeObject): Promise<SmcNodeRead> {
    try {
      const body = { ...obj, metadata: { name: obj.metadata.name, labels: obj.metadata.labels } };
      return await this.client.request('POST', SMCNODES_PATH, SmcNodeReadSchema, {
        body,
        query: { fieldManager: this.fieldManager },
      });
    } catch (err) {
      return wrap(err, `create smcnode ${obj.metadata.name}`);
    }
  }

  async replace(obj: SmcNodeObject): Promise<SmcNodeRead> {
    try {
      return await this.client.request('PUT', this.path(obj.metadata.name), SmcNodeReadSchema, {
        body: obj,
        query: { fieldManager: this.fieldManager },
      });
    } catch (err) {
      return wrap(err, `replace smcnode ${obj.metadata.name}`);
    }
  }

  async replaceStatus(obj: SmcNodeObject): Promise<SmcNodeRead> {
    try {
      return await this.client.request('PUT', this.path(obj.metadata.name, true), SmcNodeReadSchema, {
        body: obj,
        query: { fieldManager: this.fieldManager },
      });
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
