import { describe, expect, it } from 'vitest';
import { NATIVE_SIDECARS_SINCE, VersionInfoSchema, parseKubeVersion, versionAtLeast } from './version.js';

const info = (o: Record<string, string>) => VersionInfoSchema.parse(o);

describe('API server version', () => {
  it('reads gitVersion, else major and minor (managed clusters add "+")', () => {
    expect(parseKubeVersion(info({ major: '1', minor: '34', gitVersion: 'v1.34.4' }))).toEqual({
      major: 1,
      minor: 34,
    });
    expect(parseKubeVersion(info({ gitVersion: 'v1.29.3-eks-adc7111' }))).toEqual({ major: 1, minor: 29 });
    expect(parseKubeVersion(info({ major: '1', minor: '28+', gitVersion: 'unknown' }))).toEqual({
      major: 1,
      minor: 28,
    });
    expect(parseKubeVersion(info({}))).toBeNull();
  });

  it('native sidecars from 1.29', () => {
    const native = (gitVersion: string) => {
      const v = parseKubeVersion(info({ gitVersion }));
      return v !== null && versionAtLeast(v, NATIVE_SIDECARS_SINCE);
    };
    expect(native('v1.28.9')).toBe(false);
    expect(native('v1.29.0')).toBe(true);
    expect(native('v1.34.4')).toBe(true);
    expect(native('v2.0.0')).toBe(true);
    expect(native('v1.3.0')).toBe(false);
  });
});
