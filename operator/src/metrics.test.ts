import { describe, expect, it } from 'vitest';
import { CONTROLLERS, OperatorMetrics } from './metrics.js';

describe('OperatorMetrics', () => {
  it('labels the per-controller metrics alike: one `controller` label, the same values', async () => {
    const m = new OperatorMetrics({ defaultMetrics: false });
    for (const c of CONTROLLERS) {
      m.reconciles.labels(c).inc();
      m.reconcileDuration.labels(c).observe(0.01);
    }
    const byName = new Map((await m.registry.getMetricsAsJSON()).map((x) => [x.name, x]));
    const perController = [
      'smc_operator_reconcile_duration_seconds',
      'smc_operator_reconcile_errors_total',
      'smc_operator_reconciles_total',
      'smc_operator_queue_depth',
    ];
    for (const name of perController) {
      const metric = byName.get(name);
      expect(metric, name).toBeDefined();
      const labelSets = (metric?.values ?? []).map((v) => v.labels);
      // Every series has exactly the controller label (histogram buckets add only `le`).
      for (const labels of labelSets) {
        expect(
          Object.keys(labels).filter((k) => k !== 'le'),
          name,
        ).toEqual(['controller']);
      }
      expect(new Set(labelSets.map((l) => l['controller'])), name).toEqual(new Set(CONTROLLERS));
    }
  });

  it('starts the error counters and queue depths at 0, so that they exist on a standby too', async () => {
    const m = new OperatorMetrics({ defaultMetrics: false });
    const text = await m.registry.metrics();
    for (const c of CONTROLLERS) {
      expect(text).toContain(`smc_operator_reconcile_errors_total{controller="${c}"} 0`);
      expect(text).toContain(`smc_operator_queue_depth{controller="${c}"} 0`);
    }
  });
});
