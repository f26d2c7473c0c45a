import { describe, expect, it } from 'vitest';
import { PodSchema, type Pod } from '../api/core.js';
import { podInjected, sidecarReady, sidecarSmcPort } from './pod.js';

const sidecar = { name: 'smc-sidecar', ports: [{ name: 'smc-clc', containerPort: 16100 }] };
const running = { name: 'smc-sidecar', ready: true, state: { running: { startedAt: 'now' } } };

function pod(spec: Record<string, unknown>, status: Record<string, unknown> = {}): Pod {
  return PodSchema.parse({
    metadata: { name: 'p', namespace: 'ns' },
    spec,
    status: { phase: 'Running', ...status },
  });
}

describe('the injected sidecar of a pod', () => {
  it('as a plain container', () => {
    const p = pod({ containers: [{ name: 'app' }, sidecar] }, { containerStatuses: [running] });
    expect(podInjected(p)).toBe(true);
    expect(sidecarReady(p)).toBe(true);
    expect(sidecarSmcPort(p, 15100)).toBe(16100);
  });

  it('as a native sidecar: an init container, its status among the init containers', () => {
    const spec = { containers: [{ name: 'app' }], initContainers: [{ name: 'smc-init' }, sidecar] };
    const p = pod(spec, {
      initContainerStatuses: [
        { name: 'smc-init', ready: false, state: { terminated: { exitCode: 0 } } },
        running,
      ],
      containerStatuses: [{ name: 'app', ready: true, state: { running: {} } }],
    });
    expect(podInjected(p)).toBe(true);
    expect(sidecarReady(p)).toBe(true);
    expect(sidecarSmcPort(p, 15100)).toBe(16100);
    const starting = pod(spec, { initContainerStatuses: [{ ...running, ready: false }] });
    expect(sidecarReady(starting)).toBe(false);
  });

  it('none: not injected, not ready; the configured SMC port when the pod names none', () => {
    const p = pod({ containers: [{ name: 'app' }], initContainers: [{ name: 'setup' }] });
    expect(podInjected(p)).toBe(false);
    expect(sidecarReady(p)).toBe(false);
    expect(sidecarSmcPort(pod({ containers: [{ name: 'smc-sidecar' }] }), 15100)).toBe(15100);
  });
});
