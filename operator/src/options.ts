import { KubeConfig } from '@kubernetes/client-node';
import { webhookHosts, type Config } from './config.js';
import type { OperatorOptions } from './controller/operator.js';

export function operatorOptions(c: Config): OperatorOptions {
  return {
    namespace: c.namespace,
    identity: c.identity,
    workers: c.workers,
    directoryShards: c['directory-shards'],
    directoryKeySecretName: c['directory-key-secret-name'],
    directoryDebounceMs: c['directory-debounce'],
    sidecarImage: c['sidecar-image'],
    imagePullPolicy: c['sidecar-image-pull-policy'],
    cluster: c.cluster,
    rdmaResource: c['rdma-resource'] === '' ? null : c['rdma-resource'],
    sidecar: {
      mode: c['sidecar-mode'],
      uid: c['sidecar-uid'],
      ports: {
        outbound: c['sidecar-port-outbound'],
        inbound: c['sidecar-port-inbound'],
        smc: c['sidecar-port-smc'],
        metrics: c['sidecar-port-metrics'],
        health: c['sidecar-port-health'],
        admin: c['sidecar-port-admin'],
      },
      excludeOutboundUids: c['sidecar-exclude-outbound-uids'],
      interceptInbound: c['sidecar-intercept-inbound'],
      interceptRedirect: c['sidecar-intercept-redirect'],
      timeouts: { clcHandshakeMs: c['sidecar-clc-timeout'], linkSetupMs: c['sidecar-link-setup-timeout'] },
      maxConcurrentHandshakes: c['sidecar-max-concurrent-handshakes'],
    },
    bindAddress: c['bind-address'],
    metricsPort: c['metrics-port'],
    healthPort: c['health-port'],
    leaderElection: {
      enabled: c['leader-elect'],
      leaseName: c['lease-name'],
      leaseDurationMs: c['lease-duration'],
      renewDeadlineMs: c['renew-deadline'],
      retryPeriodMs: c['retry-period'],
    },
    webhook: {
      enabled: c.webhook,
      port: c['webhook-port'],
      secretName: c['webhook-secret-name'],
      configName: c['webhook-config-name'],
      hosts: webhookHosts(c),
      caValidityMs: c['ca-validity'],
      certValidityMs: c['cert-validity'],
      rotateBeforeMs: c['cert-rotate-before'],
      checkIntervalMs: c['cert-check-interval'],
      certDir: c['webhook-cert-dir'],
    },
    queue: {
      baseDelayMs: c['queue-base-delay'],
      maxDelayMs: c['queue-max-delay'],
      qps: c['queue-qps'],
      burst: c['queue-burst'],
    },
  };
}

export function loadKubeConfig(path: string): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromDefault();
  return kc;
}
