import { describe, expect, it } from 'vitest';
import { parseConfig, parseDuration, webhookHosts } from './config.js';
import { ConfigError } from './errors.js';

describe('config', () => {
  it('parses durations', () => {
    expect(parseDuration('150ms')).toBe(150);
    expect(parseDuration('15s')).toBe(15_000);
    expect(parseDuration('2m')).toBe(120_000);
    expect(parseDuration('720h')).toBe(2_592_000_000);
    expect(parseDuration('42')).toBe(42);
    expect(() => parseDuration('soon')).toThrow();
  });
  it('takes defaults, then environment, then flags', () => {
    const c = parseConfig(['--workers=8', '--lease-name', 'x', '--webhook=false'], {
      POD_NAMESPACE: 'ops',
      POD_NAME: 'op-0',
      SMC_OPERATOR_WORKERS: '2',
      SMC_OPERATOR_DIRECTORY_SHARDS: '8',
    });
    expect(c.namespace).toBe('ops');
    expect(c.identity).toBe('op-0');
    expect(c.workers).toBe(8);
    expect(c['directory-shards']).toBe(8);
    expect(c['lease-name']).toBe('x');
    expect(c.webhook).toBe(false);
    expect(c['metrics-port']).toBe(8080);
    expect(c['health-port']).toBe(8081);
    expect(c['webhook-port']).toBe(9443);
    expect(c['lease-duration']).toBe(15_000);
  });
  it('requires the sidecar image with the webhook, and rejects bad flags', () => {
    expect(() => parseConfig([], {})).toThrow(/sidecar-image/);
    expect(parseConfig([], { SIDECAR_IMAGE: 'img' })['sidecar-image']).toBe('img');
    expect(() => parseConfig(['--nope=1'], { SIDECAR_IMAGE: 'i' })).toThrow(ConfigError);
    expect(() => parseConfig(['--workers=0'], { SIDECAR_IMAGE: 'i' })).toThrow(/workers/);
    expect(() => parseConfig(['--renew-deadline=20s'], { SIDECAR_IMAGE: 'i' })).toThrow(/renew-deadline/);
  });
  it('lists the certificate hosts for the service', () => {
    const c = parseConfig(['--webhook-extra-hosts=127.0.0.1'], { SIDECAR_IMAGE: 'i', POD_NAMESPACE: 'smc' });
    expect(webhookHosts(c)).toEqual([
      'smc-operator-webhook.smc.svc',
      'smc-operator-webhook',
      'smc-operator-webhook.smc',
      'smc-operator-webhook.smc.svc.cluster.local',
      '127.0.0.1',
    ]);
  });
});
