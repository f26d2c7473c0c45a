import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The reconcilers: label `controller` of the reconcile and queue-depth metrics. */
export const CONTROLLERS = ['smcpolicy', 'directory'] as const;

/** Every metric the operator exports (on :8080/metrics), in one registry per operator instance. */
export class OperatorMetrics {
  readonly registry = new Registry();
  readonly reconcileDuration = new Histogram({
    name: 'smc_operator_reconcile_duration_seconds',
    help: 'Time spent in one reconcile(key)',
    labelNames: ['controller'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly reconcileErrors = new Counter({
    name: 'smc_operator_reconcile_errors_total',
    help: 'Reconciles that failed and were requeued with backoff',
    labelNames: ['controller'] as const,
    registers: [this.registry],
  });
  readonly reconciles = new Counter({
    name: 'smc_operator_reconciles_total',
    help: 'Reconciles run',
    labelNames: ['controller'] as const,
    registers: [this.registry],
  });
  /** One work queue serves both controllers; each key counts for the controller that reconciles it. */
  readonly queueDepth = new Gauge({
    name: 'smc_operator_queue_depth',
    help: 'Keys waiting in the work queue, by the controller that reconciles them',
    labelNames: ['controller'] as const,
    registers: [this.registry],
  });
  readonly watchedObjects = new Gauge({
    name: 'smc_operator_watched_objects',
    help: 'Objects in the informer caches',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly webhookDuration = new Histogram({
    name: 'smc_operator_webhook_duration_seconds',
    help: 'Admission request handling time',
    labelNames: ['outcome'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });
  readonly apiRequests = new Counter({
    name: 'smc_operator_api_requests_total',
    help: 'Requests made to the API server',
    labelNames: ['verb', 'resource', 'code'] as const,
    registers: [this.registry],
  });
  readonly directoryWrites = new Counter({
    name: 'smc_operator_directory_writes_total',
    help: 'Directory ConfigMap writes',
    labelNames: ['op'] as const,
    registers: [this.registry],
  });
  readonly directoryEndpoints = new Gauge({
    name: 'smc_operator_directory_endpoints',
    help: 'SMC-capable endpoints in the directory',
    registers: [this.registry],
  });
  readonly leader = new Gauge({
    name: 'smc_operator_leader',
    help: '1 while this replica holds the leader lease',
    registers: [this.registry],
  });
  readonly maxRss = new Gauge({
    name: 'smc_operator_process_max_rss_bytes',
    help: 'Peak resident set size of the process',
    registers: [this.registry],
    collect() {
      this.set(process.resourceUsage().maxRSS * 1024);
    },
  });

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    // Errors start at 0, so that an error rate is 0 rather than absent until the first failure;
    // the queue depth too, on every replica (a standby's queue is empty).
    for (const c of CONTROLLERS) {
      this.reconcileErrors.inc({ controller: c }, 0);
      this.queueDepth.set({ controller: c }, 0);
    }
  }
}
