import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  generateSigningKeyPem,
  signDocument,
  signingKeyFromPem,
} from '../../../operator/src/api/directory-signature.js';
import { renderShard } from '../../../operator/src/directory/build.js';
import { silentLogger } from '../log.js';
import { SidecarMetrics } from '../ops/metrics.js';
import { NO_LINK_GROUPS } from '../smc/link-group-manager.js';
import { endpoint } from './testing.js';
import {
  DirectoryRejection,
  UNVERIFIED,
  acceptShard,
  directoryTrust,
  type DirectoryRejectReason,
} from './verify.js';
import { DirectoryWatcher } from './watcher.js';

// Shards as the operator writes them: renderShard (operator/src/directory/build.ts) + signDocument.
const key = signingKeyFromPem(generateSigningKeyPem());
const attacker = signingKeyFromPem(generateSigningKeyPem());
const trust = directoryTrust([key.publicKey], 'shop');

function shard(
  ips: string[],
  o: { ns?: string; issuedAt?: number; shard?: number; shards?: number; signer?: typeof key } = {},
): string {
  const { doc } = renderShard(
    o.shard ?? 0,
    o.shards ?? 1,
    ips.map((ip) => endpoint(ip, { tenant: 'blue' })),
    o.ns ?? 'shop',
  );
  const { version, shard: s, shards, namespace, endpoints } = doc;
  return signDocument(
    { version, shard: s, shards, namespace, issuedAt: o.issuedAt ?? 1000, endpoints },
    o.signer ?? key,
  );
}

function reason(f: () => unknown): DirectoryRejectReason | undefined {
  try {
    f();
  } catch (e) {
    if (e instanceof DirectoryRejection) return e.reason;
    throw e;
  }
  return undefined;
}

describe('acceptShard', () => {
  it('accepts a shard the operator signed for this namespace', () => {
    const a = acceptShard('/d/shard-0.json', shard(['10.0.0.1']), trust);
    expect(a.doc.endpoints.map((e) => e.podIP)).toEqual(['10.0.0.1']);
  });

  it('rejects what a namespace user can write: edits, unsigned or self-signed content', () => {
    const good = JSON.parse(shard(['10.0.0.1'])) as { endpoints: { tenant: string }[] };
    const edited = JSON.stringify({
      ...good,
      endpoints: [...good.endpoints, { ...good.endpoints[0], podIP: '10.6.6.6' }],
    });
    expect(reason(() => acceptShard('/d/shard-0.json', edited, trust))).toBe('bad-signature');
    const unsigned = renderShard(0, 1, [endpoint('10.6.6.6')], 'shop').json;
    expect(reason(() => acceptShard('/d/shard-0.json', unsigned, trust))).toBe('unsigned');
    const selfSigned = shard(['10.6.6.6'], { signer: attacker });
    expect(reason(() => acceptShard('/d/shard-0.json', selfSigned, trust))).toBe('unknown-key');
    expect(reason(() => acceptShard('/d/shard-0.json', '{"version":', trust))).toBe('json');
  });

  it("rejects another namespace's signed shard, a shard in the wrong file, and a replayed older one", () => {
    expect(reason(() => acceptShard('/d/shard-0.json', shard(['10.0.0.1'], { ns: 'other' }), trust))).toBe(
      'namespace',
    );
    const one = shard(['10.0.0.1'], { shard: 1, shards: 2 });
    expect(reason(() => acceptShard('/d/shard-0.json', one, trust))).toBe('shard');
    const newer = acceptShard('/d/shard-0.json', shard(['10.0.0.2'], { issuedAt: 2000 }), trust);
    const older = shard(['10.0.0.1'], { issuedAt: 1000 });
    expect(reason(() => acceptShard('/d/shard-0.json', older, trust, newer))).toBe('rollback');
    expect(
      acceptShard('/d/shard-0.json', shard(['10.0.0.3'], { issuedAt: 2000 }), trust, newer),
    ).toBeTruthy();
  });

  it('without keys (a hand-written directory) only JSON and schema are checked', () => {
    const unsigned = renderShard(0, 1, [endpoint('10.0.0.9')]).json;
    expect(acceptShard('/d/x.json', unsigned, UNVERIFIED).doc.endpoints).toHaveLength(1);
    expect(reason(() => acceptShard('/d/x.json', '{"version":2}', UNVERIFIED))).toBe('schema');
  });
});

async function until(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting for condition');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('DirectoryWatcher with the operator key', () => {
  let root: string;
  let w: DirectoryWatcher | undefined;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'smc-dir-signed-'));
  });
  afterEach(async () => {
    w?.stop();
    await rm(root, { recursive: true, force: true });
  });

  const put = async (name: string, text: string): Promise<void> => {
    await writeFile(join(root, `.${name}.tmp`), text);
    await rename(join(root, `.${name}.tmp`), join(root, name));
  };

  it('keeps the last good version of a tampered shard, counts the rejection, still follows the others', async () => {
    await put('shard-0.json', shard(['10.0.0.1'], { shard: 0, shards: 2, issuedAt: 1000 }));
    await put('shard-1.json', shard(['10.0.1.1'], { shard: 1, shards: 2, issuedAt: 1000 }));
    const metrics = new SidecarMetrics(() => ({ ...NO_LINK_GROUPS }));
    w = new DirectoryWatcher({ path: root, pollIntervalMs: 50, log: silentLogger(), debounceMs: 10, trust });
    const rejected: DirectoryRejectReason[] = [];
    w.on('rejected', (r) => {
      rejected.push(r.reason);
      metrics.directoryRejected(r.reason);
    });
    await w.start();
    expect(w.ready).toBe(true);
    expect(w.directory.size).toBe(2);

    // A namespace user adds an endpoint to shard 0 (as an edit of the ConfigMap would).
    const doc = JSON.parse(shard(['10.0.0.1'], { shard: 0, shards: 2, issuedAt: 1000 })) as {
      endpoints: object[];
    };
    await put(
      'shard-0.json',
      JSON.stringify({ ...doc, endpoints: [...doc.endpoints, endpoint('10.6.6.6', { tenant: 'blue' })] }),
    );
    await until(() => rejected.length === 1);
    expect(rejected).toEqual(['bad-signature']);
    expect(w.directory.lookup('10.6.6.6')).toBeUndefined();
    expect(w.directory.lookup('10.0.0.1')).toBeDefined();
    expect(await metrics.render()).toMatch(/smc_directory_rejected_total\{reason="bad-signature"\} 1/);

    // The operator's next version of shard 1 is still followed.
    await put('shard-1.json', shard(['10.0.1.1', '10.0.1.2'], { shard: 1, shards: 2, issuedAt: 2000 }));
    await until(() => w?.directory.lookup('10.0.1.2') !== undefined);
    // And the operator's rewrite of shard 0 replaces the tampered file.
    await put('shard-0.json', shard(['10.0.0.1', '10.0.0.5'], { shard: 0, shards: 2, issuedAt: 3000 }));
    await until(() => w?.directory.lookup('10.0.0.5') !== undefined);
    expect(w.directory.lookup('10.6.6.6')).toBeUndefined();
  });

  it('is not ready while the only shard is forged, and becomes ready with a signed one', async () => {
    await put('shard-0.json', shard(['10.6.6.6'], { signer: attacker }));
    w = new DirectoryWatcher({ path: root, pollIntervalMs: 50, log: silentLogger(), debounceMs: 10, trust });
    await w.start();
    expect(w.ready).toBe(false);
    expect(w.directory.size).toBe(0);
    await put('shard-0.json', shard(['10.0.0.1']));
    await until(() => w?.ready === true);
    expect(w.directory.lookup('10.0.0.1')).toBeDefined();
  });
});
