import { z } from 'zod';
import type { KubeClient } from './client.js';

/** GET /version (readable by every client through the system:public-info-viewer role). */
export const VersionInfoSchema = z.object({
  major: z.string().default(''),
  minor: z.string().default(''),
  gitVersion: z.string().default(''),
});
export type VersionInfo = z.infer<typeof VersionInfoSchema>;

export interface KubeVersion {
  readonly major: number;
  readonly minor: number;
}

/** Native sidecars (init containers with restartPolicy Always) are on by default from 1.29. */
export const NATIVE_SIDECARS_SINCE: KubeVersion = { major: 1, minor: 29 };

/**
 * Major and minor of the API server: from gitVersion (`v1.34.4`, `v1.29.3-eks-adc7111`), else from
 * major and minor (managed clusters write `29+`); null when neither reads as a version.
 */
export function parseKubeVersion(v: VersionInfo): KubeVersion | null {
  const git = /^v?(\d+)\.(\d+)/.exec(v.gitVersion.trim());
  if (git) return { major: Number(git[1]), minor: Number(git[2]) };
  const major = /^(\d+)/.exec(v.major.trim());
  const minor = /^(\d+)/.exec(v.minor.trim());
  return major && minor ? { major: Number(major[1]), minor: Number(minor[1]) } : null;
}

export function versionAtLeast(v: KubeVersion, min: KubeVersion): boolean {
  return v.major > min.major || (v.major === min.major && v.minor >= min.minor);
}

export function formatVersion(v: KubeVersion): string {
  return `${v.major}.${v.minor}`;
}

export function serverVersion(c: KubeClient, signal?: AbortSignal): Promise<VersionInfo> {
  return c.request('GET', '/version', VersionInfoSchema, {
    timeoutMs: 10_000,
    ...(signal ? { signal } : {}),
  });
}
