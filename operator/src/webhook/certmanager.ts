import { X509Certificate } from 'node:crypto';
import type { Logger } from 'pino';
import { MutatingWebhookConfigurationSchema, SecretSchema, type Secret } from '../api/core.js';
import { errorMessage, isApiError } from '../errors.js';
import type { KubeClient } from '../kube/client.js';
import { Resources, resourcePath } from '../kube/resources.js';
import { certCovers, createCa, issueServingCert, msUntilExpiry, type KeyPairPem } from './certs.js';

export interface CertManagerOptions {
  readonly namespace: string;
  readonly secretName: string;
  /** MutatingWebhookConfiguration whose webhooks get our caBundle ('' = do not patch). */
  readonly webhookConfigName: string;
  /** DNS names and IPs the serving certificate must cover. */
  readonly hosts: readonly string[];
  readonly caValidityMs: number;
  readonly certValidityMs: number;
  /** Re-issue a certificate when less than this remains. */
  readonly rotateBeforeMs: number;
  /** Longest wait between checks. */
  readonly checkIntervalMs: number;
}

export interface TlsMaterial {
  readonly certPem: string;
  readonly keyPem: string;
  /** PEM bundle the API server must trust (current CA, plus the previous one during a CA rotation). */
  readonly caBundlePem: string;
}

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: string | undefined): string => (s ? Buffer.from(s, 'base64').toString('utf8') : '');

function splitPems(bundle: string): string[] {
  return bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? [];
}

export interface CertificatePlan extends TlsMaterial {
  readonly caCertPem: string;
  readonly caKeyPem: string;
  readonly reason: string;
  /** A new CA was created and the serving certificate kept: issue a new one after the bundle spread. */
  readonly caRotated: boolean;
}

/**
 * Pure decision: what the Secret should contain, given what it contains now (undefined = keep).
 *
 * - No CA, or the CA has less than 2 x rotateBefore left: create a CA. The bundle then trusts the
 *   new and the old CA; a serving certificate still valid for longer than rotateBefore is kept
 *   this round (phase 1), so the API servers learn the new CA before it signs anything.
 * - The serving certificate is missing, expires within rotateBefore, does not cover the hosts or
 *   was not signed by the current CA: issue one (never valid beyond the CA).
 * - Expired CAs are dropped from the bundle.
 */
export function planCertificates(
  current: { ca?: KeyPairPem; serving?: KeyPairPem; bundle?: string } | undefined,
  o: Pick<CertManagerOptions, 'hosts' | 'caValidityMs' | 'certValidityMs' | 'rotateBeforeMs'>,
  now: Date,
): CertificatePlan | undefined {
  const notBefore = new Date(now.getTime() - 5 * 60_000);
  let ca = current?.ca;
  const oldBundle = current?.bundle ?? '';
  let bundle = oldBundle;
  const reasons: string[] = [];
  let caRotated = false;
  if (!ca || msUntilExpiry(ca.certPem, now) <= 2 * o.rotateBeforeMs) {
    reasons.push(ca ? 'CA expires soon' : 'no CA');
    caRotated = !!ca;
    ca = createCa({
      commonName: 'smc-operator-webhook-ca',
      notBefore,
      notAfter: new Date(now.getTime() + o.caValidityMs),
    });
    bundle = ca.certPem + bundle;
  }
  const kept = splitPems(bundle).filter((p) => {
    try {
      return msUntilExpiry(p, now) > 0;
    } catch {
      return false;
    }
  });
  if (!kept.some((p) => p.trim() === ca.certPem.trim())) kept.unshift(ca.certPem);
  const newBundle = kept.map((p) => (p.endsWith('\n') ? p : p + '\n')).join('');
  let serving = current?.serving;
  const servingValid = !!serving && msUntilExpiry(serving.certPem, now) > o.rotateBeforeMs;
  const servingCurrent = servingValid && !!serving && certCovers(serving.certPem, ca.certPem, o.hosts);
  const keepForPhase1 = caRotated && servingValid;
  if (!servingCurrent && !keepForPhase1) {
    reasons.push(
      serving
        ? 'serving certificate expiring, not covering the hosts or not signed by the CA'
        : 'no serving certificate',
    );
    serving = issueServingCert(ca, o.hosts, {
      commonName: o.hosts[0] ?? 'smc-operator-webhook',
      notBefore,
      notAfter: new Date(
        Math.min(now.getTime() + o.certValidityMs, Date.parse(new X509Certificate(ca.certPem).validTo)),
      ),
    });
  }
  if (reasons.length === 0 && newBundle === oldBundle) return undefined;
  if (!serving) throw new Error('unreachable: no serving certificate');
  return {
    certPem: serving.certPem,
    keyPem: serving.keyPem,
    caBundlePem: newBundle,
    caCertPem: ca.certPem,
    caKeyPem: ca.keyPem,
    reason: reasons.join('; ') || 'CA bundle pruned',
    caRotated: keepForPhase1,
  };
}

function materialOf(secret: Secret): { ca?: KeyPairPem; serving?: KeyPairPem; bundle?: string } {
  const d = secret.data ?? {};
  const out: { ca?: KeyPairPem; serving?: KeyPairPem; bundle?: string } = {};
  if (d['ca.crt'] && d['ca.key']) out.ca = { certPem: unb64(d['ca.crt']), keyPem: unb64(d['ca.key']) };
  if (d['tls.crt'] && d['tls.key'])
    out.serving = { certPem: unb64(d['tls.crt']), keyPem: unb64(d['tls.key']) };
  if (d['ca-bundle.crt']) out.bundle = unb64(d['ca-bundle.crt']);
  return out;
}

/**
 * Keeps the webhook's TLS material in a Secret (type kubernetes.io/tls plus ca.crt, ca.key and
 * ca-bundle.crt), creating a self-signed CA and a serving certificate when missing and
 * re-issuing them before they expire; patches the MutatingWebhookConfiguration's caBundle to
 * match. Every replica runs it: writes use resourceVersion preconditions, so concurrent replicas
 * converge on one Secret, and every replica serves what the Secret holds.
 */
export class CertManager {
  private current: TlsMaterial | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;
  private phase2Pending = false;

  constructor(
    private readonly client: KubeClient,
    private readonly opts: CertManagerOptions,
    private readonly onTls: (tls: TlsMaterial) => void,
    private readonly log: Logger,
  ) {}

  get tls(): TlsMaterial | undefined {
    return this.current;
  }

  /** Runs ensure() now and then periodically until stop(). */
  start(): void {
    const loop = async (): Promise<void> => {
      let wait = this.opts.checkIntervalMs;
      try {
        await this.ensure();
        const expiry = this.current
          ? msUntilExpiry(this.current.certPem, new Date()) - this.opts.rotateBeforeMs
          : 0;
        wait = Math.max(1_000, Math.min(wait, expiry + 1_000, this.phase2Pending ? 30_000 : wait));
      } catch (e) {
        wait = Math.min(wait, 5_000);
        this.log.warn({ err: errorMessage(e), retryMs: wait }, 'webhook certificate check failed');
      }
      if (!this.stopped) {
        this.timer = setTimeout(() => void loop(), wait);
        this.timer.unref();
      }
    };
    void loop();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  /** One pass: make the Secret current, load it, patch the caBundle. */
  async ensure(): Promise<TlsMaterial> {
    const path = resourcePath(Resources.secrets, this.opts.namespace, this.opts.secretName);
    for (let attempt = 0; ; attempt++) {
      let secret: Secret | undefined;
      try {
        secret = await this.client.request('GET', path, SecretSchema);
      } catch (e) {
        if (!isApiError(e, 404)) throw e;
      }
      const plan = planCertificates(secret ? materialOf(secret) : undefined, this.opts, new Date());
      let material: TlsMaterial;
      this.phase2Pending = plan?.caRotated ?? false;
      if (!plan) {
        const m = materialOf(secret as Secret);
        material = {
          certPem: m.serving?.certPem ?? '',
          keyPem: m.serving?.keyPem ?? '',
          caBundlePem: m.bundle ?? '',
        };
      } else {
        const body = {
          apiVersion: 'v1',
          kind: 'Secret',
          type: 'kubernetes.io/tls',
          metadata: {
            name: this.opts.secretName,
            namespace: this.opts.namespace,
            labels: { 'app.kubernetes.io/managed-by': 'smc-operator' },
            ...(secret ? { resourceVersion: secret.metadata.resourceVersion } : {}),
          },
          data: {
            'tls.crt': b64(plan.certPem),
            'tls.key': b64(plan.keyPem),
            'ca.crt': b64(plan.caCertPem),
            'ca.key': b64(plan.caKeyPem),
            'ca-bundle.crt': b64(plan.caBundlePem),
          },
        };
        try {
          if (secret) await this.client.request('PUT', path, SecretSchema, { body });
          else
            await this.client.request(
              'POST',
              resourcePath(Resources.secrets, this.opts.namespace),
              SecretSchema,
              { body },
            );
          this.log.info({ secret: this.opts.secretName, reason: plan.reason }, 'webhook certificate issued');
        } catch (e) {
          // Another replica wrote first: read again and use (or renew) what it wrote.
          if ((isApiError(e, 409) || isApiError(e, 404)) && attempt < 5) continue;
          throw e;
        }
        material = { certPem: plan.certPem, keyPem: plan.keyPem, caBundlePem: plan.caBundlePem };
      }
      if (
        !this.current ||
        this.current.certPem !== material.certPem ||
        this.current.caBundlePem !== material.caBundlePem
      ) {
        this.current = material;
        this.onTls(material);
      }
      await this.patchCaBundle(material.caBundlePem);
      return material;
    }
  }

  private async patchCaBundle(bundlePem: string): Promise<void> {
    if (!this.opts.webhookConfigName) return;
    const path = resourcePath(
      Resources.mutatingwebhookconfigurations,
      undefined,
      this.opts.webhookConfigName,
    );
    let mwc;
    try {
      mwc = await this.client.request('GET', path, MutatingWebhookConfigurationSchema);
    } catch (e) {
      if (isApiError(e, 404)) {
        this.log.warn(
          { name: this.opts.webhookConfigName },
          'MutatingWebhookConfiguration not found; caBundle not set',
        );
        return;
      }
      throw e;
    }
    const want = b64(bundlePem);
    const ops: unknown[] = [];
    (mwc.webhooks ?? []).forEach((w, i) => {
      if (w.clientConfig.caBundle === want) return;
      ops.push({ op: 'test', path: `/webhooks/${i}/name`, value: w.name });
      ops.push({ op: 'add', path: `/webhooks/${i}/clientConfig/caBundle`, value: want });
    });
    if (ops.length === 0) return;
    await this.client.requestRaw('PATCH', path, { body: ops, patch: 'json' });
    this.log.info({ name: this.opts.webhookConfigName, webhooks: ops.length / 2 }, 'caBundle updated');
  }
}
