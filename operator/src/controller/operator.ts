import type http from 'node:http';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import {
  ConfigMapSchema,
  NamespaceSchema,
  NodeSchema,
  PodSchema,
  type ConfigMap,
  type Namespace,
  type Node,
  type Pod,
} from '../api/core.js';
import {
  DIRECTORY_LABEL,
  MAX_DIRECTORY_SHARDS,
  directoryConfigMapName,
  type DirectoryEndpoint,
} from '../api/directory.js';
import type { SidecarPorts, SidecarTimeouts } from '../api/sidecar.js';
import { objectKey, splitKey } from '../api/meta.js';
import { SmcNodeSchema, type SmcNode } from '../api/smcnode.js';
import { DIRECTORY_FINALIZER, SMC_API_VERSION, SmcPolicySchema, type SmcPolicy } from '../api/smcpolicy.js';
import { SmcTenantSchema, type SmcTenant } from '../api/smctenant.js';
import { buildViews, endpointFor, namespaceProfiles, type TenantProfile } from '../directory/build.js';
import { DirectoryPublisher, directoryCache } from '../directory/publisher.js';
import { DEFAULT_SIGNING_KEY_SECRET, loadSigningKey } from '../directory/signing-key.js';
import { ApiError, errorMessage } from '../errors.js';
import { EventRecorder } from '../events.js';
import { closeServer, startHealthServer, startMetricsServer } from '../health.js';
import { KubeClient } from '../kube/client.js';
import { Reflector, apiListerWatcher } from '../kube/reflector.js';
import { Resources, resourcePath, type ResourceType } from '../kube/resources.js';
import type { HasMeta } from '../kube/store.js';
import {
  NATIVE_SIDECARS_SINCE,
  formatVersion,
  parseKubeVersion,
  serverVersion,
  versionAtLeast,
  type VersionInfo,
} from '../kube/version.js';
import { LeaderElector } from '../leader/lease.js';
import { CONTROLLERS, OperatorMetrics } from '../metrics.js';
import { podHasAllowedDevice, type DeviceLookup } from '../policy/devices.js';
import { sidecarSmcPort } from '../policy/pod.js';
import { resolveNamespace, type PolicyResolution } from '../policy/resolve.js';
import { selectorMatches } from '../policy/selector.js';
import { computeStatus, conditionChanges, statusEqual } from '../policy/status.js';
import { admitPolicy, type TenantAdmission } from '../policy/tenancy.js';
import { CertFileSource } from '../webhook/certfiles.js';
import { CertManager, type TlsMaterial } from '../webhook/certmanager.js';
import type { SidecarMode } from '../webhook/inject.js';
import { WebhookServer } from '../webhook/server.js';
import { MaxOfRateLimiter } from './backoff.js';
import { realClock, sleep } from './clock.js';
import { podFingerprint, policyFingerprint } from './fingerprint.js';
import { DIRECTORY_KEY, parseKey, policyKey, type QueueKey } from './keys.js';
import { DEFAULT_NOT_INJECTED_OPTIONS, NOT_INJECTED_REASON, NotInjectedReporter } from './notinjected.js';
import { WorkQueue } from './workqueue.js';
import type { z } from 'zod';

export interface OperatorOptions {
  readonly namespace: string;
  readonly identity: string;
  readonly workers: number;
  readonly directoryShards: number;
  /** Delay before a directory sync, to batch bursts of pod events. */
  readonly directoryDebounceMs: number;
  readonly sidecarImage: string;
  readonly imagePullPolicy: 'Always' | 'IfNotPresent' | 'Never';
  /** The cluster's name in the tenants' User EIDs, given to the injected sidecars. */
  readonly cluster: string;
  /** Extended resource giving the sidecar the node's RDMA devices; null: none requested. */
  readonly rdmaResource: string | null;
  /**
   * Secret (in `namespace`) holding the Ed25519 key that signs the directory; created with a new
   * key when missing. Default smc-operator-directory-key.
   */
  readonly directoryKeySecretName?: string;
  /** The injected sidecar (docs/operator.md, docs/istio.md). */
  readonly sidecar: {
    /** `auto`: native when the API server is 1.29 or later (asked at start), else container. */
    readonly mode: 'auto' | SidecarMode;
    readonly uid: number;
    readonly ports: SidecarPorts;
    /** Uids the interception rules leave alone outbound besides the sidecar's (Istio's 1337). */
    readonly excludeOutboundUids: readonly number[];
    readonly interceptInbound: boolean;
    /** `peers`: redirect outbound only to directory peers (sets kept by the smc-redirect container). */
    readonly interceptRedirect?: 'all' | 'peers' | undefined;
    /** The sidecar's handshake timeouts (SMC_CLC_TIMEOUT_MS, SMC_LINK_SETUP_TIMEOUT_MS); its defaults when absent. */
    readonly timeouts?: SidecarTimeouts | undefined;
    /** SMC_MAX_CONCURRENT_HANDSHAKES; the sidecar's default when absent. */
    readonly maxConcurrentHandshakes?: number | undefined;
  };
  readonly bindAddress: string;
  readonly metricsPort: number; // 0 = disabled
  readonly healthPort: number; // 0 = disabled
  readonly leaderElection: {
    readonly enabled: boolean;
    readonly leaseName: string;
    readonly leaseDurationMs: number;
    readonly renewDeadlineMs: number;
    readonly retryPeriodMs: number;
  };
  readonly webhook: {
    readonly enabled: boolean;
    readonly port: number;
    readonly secretName: string;
    readonly configName: string;
    readonly hosts: readonly string[];
    readonly caValidityMs: number;
    readonly certValidityMs: number;
    readonly rotateBeforeMs: number;
    readonly checkIntervalMs: number;
    /**
     * Serve tls.crt / tls.key from this directory (a mounted Secret that cert-manager keeps
     * current), reloaded on change, instead of managing the Secret and the caBundle; '' or
     * absent: the operator issues and rotates the certificate itself.
     */
    readonly certDir?: string;
  };
  readonly queue: {
    readonly baseDelayMs: number;
    readonly maxDelayMs: number;
    readonly qps: number;
    readonly burst: number;
  };
}

type Handlers<T> = { onAdd?(o: T): void; onUpdate?(a: T, b: T): void; onDelete?(o: T): void };

/**
 * The operator: informer caches for every kind it reads, a work queue of policy keys and one
 * directory key, reconcilers, the webhook and the leader election that gates all writes.
 */
export class Operator {
  readonly client: KubeClient;
  readonly metrics: OperatorMetrics;
  readonly policies: Reflector<SmcPolicy>;
  readonly pods: Reflector<Pod>;
  readonly namespaces: Reflector<Namespace>;
  readonly nodes: Reflector<Node>;
  readonly smcNodes: Reflector<SmcNode>;
  /** SmcTenants: which namespaces may use which tenant (policy/tenancy.ts). */
  readonly tenants: Reflector<SmcTenant>;
  /**
   * The directory ConfigMaps, one reflector per shard index: each lists and watches
   * `fieldSelector=metadata.name=smc-directory-<i>` and `labelSelector=smc.dev/directory=true`
   * across namespaces, which RBAC can grant by resourceNames (no right to read other ConfigMaps).
   */
  readonly configMaps: Reflector<ConfigMap>[];
  readonly publisher: DirectoryPublisher;
  readonly webhook: WebhookServer;
  readonly events: EventRecorder;
  /** Warning Events on pods that opted in but run without the sidecar (leader only). */
  readonly notInjected: NotInjectedReporter;
  private queue: WorkQueue<QueueKey> | undefined;
  private elector: LeaderElector | undefined;
  private certs: CertManager | CertFileSource | undefined;
  private readonly stopAll = new AbortController();
  private electionDone: Promise<void> | undefined;
  /** Aborted by drain(): ends the election (and releases the Lease) before the rest stops. */
  private readonly stopElection = new AbortController();
  private draining = false;
  private workersDone: Promise<void>[] = [];
  private servers: http.Server[] = [];
  private leading = false;
  private readonly deviceLookup: DeviceLookup;
  /** Reconciles run since start (for tests and the benchmark). */
  reconcileCount = 0;
  /** The directory signing public key (base64), once start() loaded it. */
  directoryPublicKey: string | undefined;
  /** Size of the last directory computed. */
  lastDirectory: { endpoints: number; namespaces: number } = { endpoints: 0, namespaces: 0 };

  constructor(
    kc: KubeConfig,
    readonly opts: OperatorOptions,
    private readonly log: Logger,
    metrics?: OperatorMetrics,
  ) {
    this.client = new KubeClient(kc, `smc-operator/${opts.identity}`);
    this.metrics = metrics ?? new OperatorMetrics();
    this.client.observe((verb, resource, code) =>
      this.metrics.apiRequests.labels(verb, resource, String(code)).inc(),
    );
    this.events = new EventRecorder(this.client, 'smc.dev/operator', opts.identity, log);

    this.policies = this.reflector('smcpolicies', Resources.smcpolicies, SmcPolicySchema, {
      onAdd: (p) => this.onPolicy(p),
      onUpdate: (a, b) => {
        if (policyFingerprint(a) !== policyFingerprint(b)) this.onPolicy(b);
      },
      onDelete: (p) => this.onPolicy(p),
    });
    this.pods = this.reflector('pods', Resources.pods, PodSchema, {
      onAdd: (p) => {
        this.onPod(undefined, p);
        this.reportNotInjected(p);
      },
      onUpdate: (a, b) => {
        if (podFingerprint(a) !== podFingerprint(b)) {
          this.onPod(a, b);
          // Again on a later change: the namespace or policy cache may have lagged at the add.
          this.reportNotInjected(b);
        }
      },
      onDelete: (p) => {
        this.onPod(p, undefined);
        this.notInjected.forget(p);
      },
    });
    this.namespaces = this.reflector('namespaces', Resources.namespaces, NamespaceSchema, {
      onUpdate: (a, b) => {
        if (!a.metadata.deletionTimestamp && b.metadata.deletionTimestamp) this.enqueue(DIRECTORY_KEY);
        // Labels decide which SmcTenant namespaceSelectors admit the namespace.
        if (JSON.stringify(a.metadata.labels) !== JSON.stringify(b.metadata.labels))
          this.onNamespaceLabels(b.metadata.name);
      },
    });
    const tenantChanged = (t: SmcTenant): void => this.onTenant(t.metadata.name);
    this.tenants = this.reflector('smctenants', Resources.smctenants, SmcTenantSchema, {
      onAdd: tenantChanged,
      onUpdate: (a, b) => {
        if (JSON.stringify(a.spec) !== JSON.stringify(b.spec)) tenantChanged(b);
      },
      onDelete: tenantChanged,
    });
    const nodeChanged = (): void => this.onDevicesChanged();
    this.nodes = this.reflector('nodes', Resources.nodes, NodeSchema, {
      onAdd: nodeChanged,
      onUpdate: (a, b) => {
        if (JSON.stringify(a.metadata.labels) !== JSON.stringify(b.metadata.labels)) nodeChanged();
      },
      onDelete: nodeChanged,
    });
    this.smcNodes = this.reflector('smcnodes', Resources.smcnodes, SmcNodeSchema, {
      onAdd: nodeChanged,
      onUpdate: (a, b) => {
        if (JSON.stringify(a.status?.devices) !== JSON.stringify(b.status?.devices)) nodeChanged();
      },
      onDelete: nodeChanged,
    });
    this.configMaps = Array.from({ length: opts.directoryShards }, (_, i) => {
      const name = directoryConfigMapName(i);
      return this.reflector(
        `configmaps/${name}`,
        Resources.configmaps,
        ConfigMapSchema,
        {
          onUpdate: (_a, b) => this.onDirectoryConfigMap(b, false),
          onDelete: (c) => this.onDirectoryConfigMap(c, true),
        },
        { labelSelector: `${DIRECTORY_LABEL}=true`, fieldSelector: `metadata.name=${name}` },
      );
    });
    const cmGauge = this.metrics.watchedObjects.labels(Resources.configmaps.kind);
    for (const r of this.configMaps)
      r.onSize = () => cmGauge.set(this.configMaps.reduce((n, x) => n + x.store.size, 0));
    this.publisher = new DirectoryPublisher(
      this.client,
      directoryCache(this.configMaps),
      log.child({ c: 'directory' }),
    );
    this.notInjected = new NotInjectedReporter(
      {
        namespaceLabels: (ns) => this.namespaces.store.get(ns)?.metadata.labels,
        policies: (ns) => this.policies.store.inNamespace(ns),
      },
      (pod, reason) => {
        const { name, namespace = '', uid } = pod.metadata;
        void this.events.record(
          { apiVersion: 'v1', kind: 'Pod', name, namespace, uid },
          'Warning',
          NOT_INJECTED_REASON,
          'Inject',
          reason,
        );
      },
      { ...DEFAULT_NOT_INJECTED_OPTIONS, skipNamespaces: [opts.namespace] },
    );
    this.deviceLookup = {
      smcNode: (n) => this.smcNodes.store.get(n),
      node: (n) => this.nodes.store.get(n),
    };
    this.webhook = new WebhookServer(
      {
        namespaceLabels: (ns) => this.namespaces.store.get(ns)?.metadata.labels,
        policies: (ns) => this.policies.store.inNamespace(ns),
      },
      {
        sidecarImage: opts.sidecarImage,
        imagePullPolicy: opts.imagePullPolicy,
        directoryShards: opts.directoryShards,
        cluster: opts.cluster,
        rdmaResource: opts.rdmaResource,
        // `auto` is settled by start() before the webhook serves.
        sidecarMode: opts.sidecar.mode === 'auto' ? 'container' : opts.sidecar.mode,
        ports: opts.sidecar.ports,
        sidecarUid: opts.sidecar.uid,
        excludeOutboundUids: opts.sidecar.excludeOutboundUids,
        interceptInbound: opts.sidecar.interceptInbound,
        interceptRedirect: opts.sidecar.interceptRedirect ?? 'all',
        timeouts: opts.sidecar.timeouts,
        maxConcurrentHandshakes: opts.sidecar.maxConcurrentHandshakes,
      },
      this.metrics,
      log.child({ c: 'webhook' }),
    );
  }

  private reflector<T extends HasMeta>(
    name: string,
    rt: ResourceType,
    schema: z.ZodType<T>,
    handlers: Handlers<T>,
    filters: { labelSelector?: string; fieldSelector?: string } = {},
  ): Reflector<T> {
    const r = new Reflector<T>(
      name,
      apiListerWatcher(this.client, rt, filters),
      schema,
      handlers,
      this.log.child({ c: 'reflector' }),
    );
    r.onSize = (n) => this.metrics.watchedObjects.labels(rt.kind).set(n);
    return r;
  }

  private get allReflectors(): Reflector<HasMeta>[] {
    return [
      this.policies,
      this.pods,
      this.namespaces,
      this.nodes,
      this.smcNodes,
      this.tenants,
      ...this.configMaps,
    ] as Reflector<HasMeta>[];
  }

  get isLeader(): boolean {
    return this.leading;
  }

  get synced(): boolean {
    return this.allReflectors.every((r) => r.synced);
  }

  ready(): { ok: boolean; detail: string } {
    if (this.draining) return { ok: false, detail: 'shutting down' };
    const notSynced = this.allReflectors.filter((r) => !r.synced).map((r) => r.name);
    if (notSynced.length > 0) return { ok: false, detail: `caches not synced: ${notSynced.join(', ')}` };
    if (this.opts.webhook.enabled && !this.webhook.listening)
      return { ok: false, detail: 'webhook not serving' };
    return { ok: true, detail: 'ok' };
  }

  // ---- event handlers -------------------------------------------------------------------------

  private enqueue(key: QueueKey): void {
    if (!this.queue) return;
    if (key === DIRECTORY_KEY && this.opts.directoryDebounceMs > 0)
      this.queue.addAfter(key, this.opts.directoryDebounceMs);
    else this.queue.add(key);
  }

  private onPolicy(p: SmcPolicy): void {
    const ns = p.metadata.namespace ?? '';
    this.enqueue(policyKey(objectKey(p.metadata)));
    for (const other of this.policies.store.inNamespace(ns))
      this.enqueue(policyKey(objectKey(other.metadata)));
    this.enqueue(DIRECTORY_KEY);
  }

  private onPod(oldPod: Pod | undefined, pod: Pod | undefined): void {
    const ref = pod ?? oldPod;
    if (!ref) return;
    const ns = ref.metadata.namespace ?? '';
    let any = false;
    for (const p of this.policies.store.inNamespace(ns)) {
      if (
        (pod && selectorMatches(p.spec.podSelector, pod.metadata.labels)) ||
        (oldPod && selectorMatches(p.spec.podSelector, oldPod.metadata.labels))
      ) {
        this.enqueue(policyKey(objectKey(p.metadata)));
        any = true;
      }
    }
    if (any) this.enqueue(DIRECTORY_KEY);
  }

  /** Only the leader writes Events; without our webhook there is no injection to explain. */
  private reportNotInjected(pod: Pod): void {
    if (!this.leading || !this.opts.webhook.enabled) return;
    this.notInjected.observe(pod);
  }

  private onDevicesChanged(): void {
    for (const p of this.policies.store.list()) {
      if ((p.spec.devices ?? []).length > 0) this.enqueue(policyKey(objectKey(p.metadata)));
    }
    this.enqueue(DIRECTORY_KEY);
  }

  /** An SmcTenant changed: the policies naming it, and the directory. */
  private onTenant(name: string): void {
    for (const p of this.policies.store.list())
      if (p.spec.tenant === name) this.enqueue(policyKey(objectKey(p.metadata)));
    this.enqueue(DIRECTORY_KEY);
  }

  /** A namespace's labels changed: its policies may be admitted (or not) by a namespaceSelector now. */
  private onNamespaceLabels(ns: string): void {
    let any = false;
    for (const p of this.policies.store.inNamespace(ns)) {
      this.enqueue(policyKey(objectKey(p.metadata)));
      any = true;
    }
    if (any) this.enqueue(DIRECTORY_KEY);
  }

  /** Whether a policy's SmcTenant admits its namespace, from the caches. */
  admission(p: SmcPolicy): TenantAdmission {
    return admitPolicy(
      p,
      (name) => this.tenants.store.get(name),
      this.namespaces.store.get(p.metadata.namespace ?? '')?.metadata.labels,
    );
  }

  private onDirectoryConfigMap(cm: ConfigMap, deleted: boolean): void {
    if (!deleted && this.publisher.isOwnWrite(cm)) return;
    // Changed or deleted by someone else: forget what we wrote and publish again.
    this.publisher.invalidate(objectKey(cm.metadata));
    this.enqueue(DIRECTORY_KEY);
  }

  // ---- reconcilers ----------------------------------------------------------------------------

  /** Idempotent: brings one key's world in line with the caches. */
  async reconcile(key: QueueKey): Promise<void> {
    const k = parseKey(key);
    if (k.kind === 'directory') await this.reconcileDirectory();
    else await this.reconcilePolicy(k.objKey);
  }

  private resolution(ns: string): Map<string, PolicyResolution> {
    return resolveNamespace(this.pods.store.inNamespace(ns), this.policies.store.inNamespace(ns)).policies;
  }

  private async reconcilePolicy(objKey: string): Promise<void> {
    const policy = this.policies.store.get(objKey);
    if (!policy) return; // gone; the directory key takes care of its endpoints
    const { namespace = '', name } = splitKey(objKey);
    const path = resourcePath(Resources.smcpolicies, namespace, name);
    const finalizers = policy.metadata.finalizers ?? [];
    if (policy.metadata.deletionTimestamp) {
      if (!finalizers.includes(DIRECTORY_FINALIZER)) return;
      // Remove this policy's endpoints from the directory before letting the object go.
      await this.reconcileDirectory();
      const rest = finalizers.filter((f) => f !== DIRECTORY_FINALIZER);
      await this.client.request('PATCH', path, SmcPolicySchema, {
        body: { metadata: { finalizers: rest, resourceVersion: policy.metadata.resourceVersion } },
        patch: 'merge',
      });
      this.log.info({ policy: objKey }, 'directory entries removed; finalizer released');
      return;
    }
    if (!finalizers.includes(DIRECTORY_FINALIZER)) {
      const updated = await this.client.request('PATCH', path, SmcPolicySchema, {
        body: {
          metadata: {
            finalizers: [...finalizers, DIRECTORY_FINALIZER],
            resourceVersion: policy.metadata.resourceVersion,
          },
        },
        patch: 'merge',
      });
      this.policies.store.set(updated);
    }
    const current = this.policies.store.get(objKey) ?? policy;
    const res = this.resolution(namespace).get(objKey) ?? {
      matched: [],
      shadowed: 0,
      conflictsWith: new Set<string>(),
    };
    const status = computeStatus(
      current,
      res,
      (pod, p) => podHasAllowedDevice(pod, p, this.deviceLookup),
      new Date(),
      this.admission(current),
    );
    if (statusEqual(current.status, status)) return;
    const updated = await this.client.request('PATCH', `${path}/status`, SmcPolicySchema, {
      body: { status },
      patch: 'merge',
    });
    this.policies.store.set(updated);
    for (const c of conditionChanges(current.status?.conditions, status.conditions ?? [])) {
      void this.events.record(
        { apiVersion: SMC_API_VERSION, kind: 'SmcPolicy', name, namespace, uid: current.metadata.uid },
        c.eventType,
        c.reason,
        'Reconcile',
        `${c.type}=${c.status} (${c.reason}): ${c.message}`,
      );
    }
  }

  /**
   * Computes every namespace's view of the directory and writes the shards that changed. A policy
   * whose SmcTenant does not admit its namespace (policy/tenancy.ts) counts for nothing here: its
   * pods are not published and it gives its namespace no view of its tenant's endpoints. It still
   * takes part in resolving which policy governs a pod, as for the webhook, so its pods do not
   * fall to another policy.
   */
  async reconcileDirectory(): Promise<void> {
    const endpoints: DirectoryEndpoint[] = [];
    const profiles = new Map<string, TenantProfile[]>();
    const admitted = new Map<SmcPolicy, boolean>();
    const isAdmitted = (p: SmcPolicy): boolean => {
      let a = admitted.get(p);
      if (a === undefined) admitted.set(p, (a = this.admission(p).admitted));
      return a;
    };
    for (const ns of this.policies.store.namespaces()) {
      // A terminating namespace refuses new objects: drop its copy rather than block finalizers.
      if (this.namespaces.store.get(ns)?.metadata.deletionTimestamp) continue;
      const pr = namespaceProfiles([...this.policies.store.inNamespace(ns)].filter(isAdmitted));
      if (pr.length > 0) profiles.set(ns, pr);
    }
    for (const ns of this.pods.store.namespaces()) {
      if (!profiles.has(ns)) continue;
      const res = resolveNamespace(this.pods.store.inNamespace(ns), this.policies.store.inNamespace(ns));
      for (const [pk, r] of res.policies) {
        const policy = this.policies.store.get(pk);
        if (!policy || !isAdmitted(policy)) continue;
        for (const pod of r.matched) {
          const e = endpointFor(
            pod,
            policy,
            sidecarSmcPort(pod, this.opts.sidecar.ports.smc),
            podHasAllowedDevice(pod, policy, this.deviceLookup),
          );
          if (e) endpoints.push(e);
        }
      }
    }
    const views = buildViews(endpoints, profiles, this.opts.directoryShards);
    const r = await this.publisher.publish(views, this.opts.directoryShards);
    this.metrics.directoryEndpoints.set(endpoints.length);
    this.metrics.directoryWrites.labels('create').inc(r.created);
    this.metrics.directoryWrites.labels('update').inc(r.updated);
    this.metrics.directoryWrites.labels('delete').inc(r.deleted);
    this.lastDirectory = { endpoints: endpoints.length, namespaces: views.size };
  }

  // ---- lifecycle ------------------------------------------------------------------------------

  /** Starts caches, servers, certificate management and the leader election. */
  async start(): Promise<void> {
    for (const r of this.allReflectors) r.start();
    if (this.opts.healthPort > 0) {
      this.servers.push(
        await startHealthServer(
          { healthy: () => true, ready: () => this.ready() },
          this.opts.bindAddress,
          this.opts.healthPort,
          this.log,
        ),
      );
    }
    if (this.opts.metricsPort > 0) {
      this.servers.push(
        await startMetricsServer(
          this.metrics.registry,
          this.opts.bindAddress,
          this.opts.metricsPort,
          this.log,
        ),
      );
    }
    // Every replica loads the directory signing key: the leader signs with it, and the webhook
    // gives each injected sidecar its public half.
    const key = await loadSigningKey(
      this.client,
      this.opts.namespace,
      this.opts.directoryKeySecretName ?? DEFAULT_SIGNING_KEY_SECRET,
      this.log.child({ c: 'directory' }),
      this.stopAll.signal,
    );
    this.publisher.useSigningKey(key);
    this.webhook.updateSettings({ directoryPublicKeys: [key.publicKey] });
    this.directoryPublicKey = key.publicKey;
    if (this.opts.webhook.enabled) {
      await this.settleSidecarMode();
      const w = this.opts.webhook;
      const onTls = (tls: TlsMaterial): void => {
        this.webhook.setTls(tls, this.opts.bindAddress, w.port).catch((e: unknown) => {
          this.log.error({ err: errorMessage(e) }, 'webhook server failed to start');
        });
      };
      this.certs = w.certDir
        ? new CertFileSource(
            // Files are cheap to read: poll often enough that a lost watch event costs little.
            { dir: w.certDir, hosts: w.hosts, pollIntervalMs: Math.min(w.checkIntervalMs, 30_000) },
            onTls,
            this.log.child({ c: 'certs' }),
          )
        : new CertManager(
            this.client,
            {
              namespace: this.opts.namespace,
              secretName: w.secretName,
              webhookConfigName: w.configName,
              hosts: w.hosts,
              caValidityMs: w.caValidityMs,
              certValidityMs: w.certValidityMs,
              rotateBeforeMs: w.rotateBeforeMs,
              checkIntervalMs: w.checkIntervalMs,
            },
            onTls,
            this.log.child({ c: 'certs' }),
          );
      this.certs.start();
    }
    await Promise.all(this.allReflectors.map((r) => r.waitForSync()));
    this.log.info(
      { objects: Object.fromEntries(this.allReflectors.map((r) => [r.name, r.store.size])) },
      'caches synced',
    );
    const le = this.opts.leaderElection;
    if (!le.enabled) {
      this.startLeading(this.stopAll.signal);
      return;
    }
    this.elector = new LeaderElector(
      this.client,
      {
        namespace: this.opts.namespace,
        name: le.leaseName,
        identity: this.opts.identity,
        leaseDurationMs: le.leaseDurationMs,
        renewDeadlineMs: le.renewDeadlineMs,
        retryPeriodMs: le.retryPeriodMs,
      },
      {
        onStartedLeading: (signal) => this.startLeading(signal),
        onStoppedLeading: () => this.stopLeading(),
        onNewLeader: (id) => this.log.info({ leader: id }, 'leader observed'),
      },
      this.log.child({ c: 'leader' }),
    );
    this.electionDone = this.elector.run(AbortSignal.any([this.stopAll.signal, this.stopElection.signal]));
  }

  /**
   * Settles the sidecar mode from the API server's version (GET /version): `auto` becomes native
   * on 1.29 or later, container before. The answer also lets the webhook warn about a pod that
   * asks for native on an older server. `auto` waits for an answer, retrying while the API server
   * cannot be reached; a refusal or an unreadable version gives container, which runs everywhere.
   */
  private async settleSidecarMode(): Promise<void> {
    const configured = this.opts.sidecar.mode;
    const signal = this.stopAll.signal;
    let info: VersionInfo | undefined;
    for (let delayMs = 500; !signal.aborted; delayMs = Math.min(delayMs * 2, 30_000)) {
      try {
        info = await serverVersion(this.client, signal);
        break;
      } catch (e) {
        // An answer (a 403 where system:public-info-viewer was taken away) stays the same.
        if (e instanceof ApiError || configured !== 'auto') {
          this.log.warn({ err: errorMessage(e) }, 'API server version unknown');
          break;
        }
        this.log.warn({ err: errorMessage(e), retryInMs: delayMs }, 'API server version not read; retrying');
        await sleep(delayMs, signal);
      }
    }
    const version = info ? parseKubeVersion(info) : null;
    const supported = version ? versionAtLeast(version, NATIVE_SIDECARS_SINCE) : undefined;
    const mode: SidecarMode = configured !== 'auto' ? configured : supported ? 'native' : 'container';
    this.webhook.updateSettings({ sidecarMode: mode, nativeSidecarsSupported: supported });
    const fields = { serverVersion: info?.gitVersion, configured, sidecarMode: mode };
    if (mode === 'native' && supported === false)
      this.log.warn(
        fields,
        `native sidecars need Kubernetes ${formatVersion(NATIVE_SIDECARS_SINCE)} or later: injected pods may not start`,
      );
    else this.log.info(fields, 'sidecar mode');
  }

  private startLeading(signal: AbortSignal): void {
    if (this.leading) return;
    this.leading = true;
    this.metrics.leader.set(1);
    const q = new WorkQueue<QueueKey>(
      new MaxOfRateLimiter<QueueKey>(realClock, {
        baseMs: this.opts.queue.baseDelayMs,
        maxMs: this.opts.queue.maxDelayMs,
        qps: this.opts.queue.qps,
        burst: this.opts.queue.burst,
      }),
    );
    // One queue serves both reconcilers; its depth is split by the `controller` label the
    // reconcile metrics carry (the directory reconciler has a single key).
    q.onDepth = (d) => {
      const directory = q.isQueued(DIRECTORY_KEY) ? 1 : 0;
      this.metrics.queueDepth.labels('directory').set(directory);
      this.metrics.queueDepth.labels('smcpolicy').set(d - directory);
    };
    this.queue = q;
    for (const p of this.policies.store.list()) q.add(policyKey(objectKey(p.metadata)));
    q.add(DIRECTORY_KEY);
    // Shards beyond the shard count, left from a larger --directory-shards: only the current
    // shards are watched, so they are found by the count the cached shards were written with.
    const seen = Math.min(this.publisher.shardCountSeen(), MAX_DIRECTORY_SHARDS);
    if (seen > this.opts.directoryShards)
      this.publisher.sweepShards(this.opts.directoryShards, seen).catch((e: unknown) => {
        this.log.warn({ err: errorMessage(e) }, 'stale directory shards not deleted');
      });
    // Pods added while another replica led may not have been reported (once per UID here).
    const pods = [...this.pods.store.list()];
    this.notInjected.retainOnly(pods);
    for (const p of pods) this.reportNotInjected(p);
    this.workersDone = Array.from({ length: this.opts.workers }, () => this.worker(q));
    signal.addEventListener('abort', () => this.stopLeading(), { once: true });
    this.log.info({ workers: this.opts.workers }, 'controller started');
  }

  private stopLeading(): void {
    if (!this.leading) return;
    this.leading = false;
    this.metrics.leader.set(0);
    this.queue?.shutDown();
    this.queue = undefined;
    for (const c of CONTROLLERS) this.metrics.queueDepth.labels(c).set(0);
    this.log.info('controller stopped (not leading)');
  }

  private async worker(q: WorkQueue<QueueKey>): Promise<void> {
    for (;;) {
      const key = await q.get();
      if (key === undefined) return;
      const kind: (typeof CONTROLLERS)[number] = key === DIRECTORY_KEY ? 'directory' : 'smcpolicy';
      const end = this.metrics.reconcileDuration.labels(kind).startTimer();
      try {
        await this.reconcile(key);
        q.forget(key);
      } catch (e) {
        this.metrics.reconcileErrors.labels(kind).inc();
        const conflict = e instanceof ApiError && (e.conflict || e.notFound);
        this.log[conflict ? 'debug' : 'warn'](
          { key, err: errorMessage(e), retries: q.retries(key) },
          'reconcile failed; requeued',
        );
        if (!q.isShuttingDown()) q.addRateLimited(key);
      } finally {
        end();
        this.reconcileCount++;
        this.metrics.reconciles.labels(kind).inc();
        q.done(key);
      }
    }
  }

  /** Whether the queue is empty and idle (used by tests and the benchmark). */
  get idle(): boolean {
    const q = this.queue;
    return !q || (q.length === 0 && q.processingCount === 0 && q.waitingCount === 0);
  }

  /**
   * Stops everything. By default the lease is released so another replica takes over at once;
   * `releaseLease: false` leaves it to expire, as after a crash.
   */
  /**
   * The first step of a graceful stop: /readyz fails, so the endpoints drop this replica, and the
   * Lease is released, so another replica leads at once; the webhook keeps answering the requests
   * still routed here until stop().
   */
  drain(): void {
    this.draining = true;
    if (this.elector) this.elector.releaseOnStop = true;
    this.stopElection.abort();
  }

  async stop(opts: { releaseLease?: boolean } = {}): Promise<void> {
    if (this.elector) this.elector.releaseOnStop = opts.releaseLease ?? true;
    this.stopAll.abort();
    this.stopLeading();
    await this.electionDone;
    await Promise.all(this.workersDone);
    this.certs?.stop();
    await this.webhook.close();
    await Promise.all(this.allReflectors.map((r) => r.stop()));
    await Promise.all(this.servers.map((s) => closeServer(s)));
    this.client.close();
  }
}
