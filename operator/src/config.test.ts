import { afterEach, describe, expect, it, vi } from 'vitest';
import { UsageError } from '../../sidecar/src/args.js';
import { OPERATOR_FLAG_SPECS, parseConfig, parseDuration, usage, webhookHosts } from './config.js';
import { ConfigError } from './errors.js';
import { operatorOptions } from './options.js';

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
    expect(() => parseConfig(['--nope=1'], { SIDECAR_IMAGE: 'i' })).toThrow(UsageError);
    expect(() => parseConfig(['--workers'], { SIDECAR_IMAGE: 'i' })).toThrow(/--workers needs a value/);
    expect(() => parseConfig(['--workers=x'], { SIDECAR_IMAGE: 'i' })).toThrow(ConfigError);
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

describe('smc operator command line', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  /** Runs main() with stdout and stderr captured; only paths that return before starting. */
  async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
    const { main } = await import('./main.js');
    let out = '';
    let err = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => ((out += String(chunk)), true));
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => ((err += String(chunk)), true));
    const code = await main(argv, { SIDECAR_IMAGE: 'i' });
    vi.restoreAllMocks();
    return { code, out, err };
  }

  it('--help (or -h, wherever it stands) prints every flag on stdout and exits 0', async () => {
    for (const argv of [['--help'], ['-h'], ['--workers=8', '--help'], ['--nope', '--help']]) {
      const r = await run(argv);
      expect(r.code, argv.join(' ')).toBe(0);
      expect(r.err).toBe('');
      expect(r.out).toMatch(/^usage: smc operator \[flags\]/);
      expect(r.out).toContain('--queue-burst VALUE');
      expect(r.out).toContain('--webhook[=BOOL]');
    }
    expect(usage().trimEnd().split('\n')).toHaveLength(Object.keys(OPERATOR_FLAG_SPECS).length);
  });

  it('an unknown flag, a missing or invalid value: the problem on stderr, exit 2', async () => {
    const cases: [string[], RegExp][] = [
      [['--nope'], /^smc operator: unknown flag --nope\nRun "smc operator --help" for usage\.\n$/],
      [['--workers'], /--workers needs a value/],
      [['--workers=0'], /--workers: /],
      [['stray'], /unexpected argument "stray"/],
      // Switches take =true / =false, not a separate value.
      [['--webhook', 'false'], /unexpected argument "false"/],
    ];
    for (const [argv, message] of cases) {
      const r = await run(argv);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.out).toBe('');
      expect(r.err).toMatch(message);
    }
  });

  it('switches: alone, =true / =false, and from the environment', () => {
    expect(OPERATOR_FLAG_SPECS.webhook.type).toBe('switch');
    expect(OPERATOR_FLAG_SPECS['leader-elect'].type).toBe('switch');
    expect(OPERATOR_FLAG_SPECS.workers.type).toBe('string');
    const env = { SIDECAR_IMAGE: 'i', SMC_OPERATOR_LEADER_ELECT: 'false' };
    expect(parseConfig([], env)['leader-elect']).toBe(false);
    expect(parseConfig(['--leader-elect'], env)['leader-elect']).toBe(true);
    expect(parseConfig(['--leader-elect=false', '--webhook=0'], env)).toMatchObject({
      'leader-elect': false,
      webhook: false,
    });
  });

  it('the injected sidecar: mode, uid and ports from flags or the environment, defaults clear of Istio', () => {
    const d = operatorOptions(parseConfig([], { SIDECAR_IMAGE: 'i' })).sidecar;
    expect(d).toEqual({
      mode: 'auto',
      uid: 7609,
      ports: { outbound: 15101, inbound: 15106, smc: 15100, metrics: 15190, health: 15121, admin: 15104 },
      excludeOutboundUids: [],
      interceptInbound: true,
      interceptRedirect: 'all',
      timeouts: { clcHandshakeMs: 6000, linkSetupMs: 5000 },
      maxConcurrentHandshakes: 16,
    });
    const c = operatorOptions(
      parseConfig(
        [
          '--sidecar-mode=container',
          '--sidecar-uid=4242',
          '--sidecar-port-admin=16000',
          '--sidecar-exclude-outbound-uids=1337, 2102',
          '--sidecar-intercept-inbound=false',
          '--sidecar-intercept-redirect=peers',
          '--sidecar-clc-timeout=30s',
          '--sidecar-link-setup-timeout=20000ms',
          '--sidecar-max-concurrent-handshakes=256',
        ],
        { SIDECAR_IMAGE: 'i', SMC_OPERATOR_SIDECAR_PORT_METRICS: '16090' },
      ),
    ).sidecar;
    expect(c).toMatchObject({ mode: 'container', uid: 4242, excludeOutboundUids: [1337, 2102] });
    expect(c.interceptInbound).toBe(false);
    expect(c.interceptRedirect).toBe('peers');
    expect(c.timeouts).toEqual({ clcHandshakeMs: 30_000, linkSetupMs: 20_000 });
    expect(c.maxConcurrentHandshakes).toBe(256);
    expect(c.ports).toMatchObject({ admin: 16000, metrics: 16090, smc: 15100 });
    const bad = (argv: string[]) => () => parseConfig(argv, { SIDECAR_IMAGE: 'i' });
    expect(bad(['--sidecar-mode=sometimes'])).toThrow(/sidecar-mode/);
    expect(bad(['--sidecar-uid=0'])).toThrow(/sidecar-uid/);
    expect(bad(['--sidecar-intercept-redirect=some'])).toThrow(/sidecar-intercept-redirect/);
    expect(bad(['--sidecar-port-smc=0'])).toThrow(/sidecar-port-smc/);
    expect(bad(['--sidecar-port-admin=15100'])).toThrow(/must be distinct/);
    expect(bad(['--sidecar-exclude-outbound-uids=envoy'])).toThrow(/sidecar-exclude-outbound-uids/);
  });
});
