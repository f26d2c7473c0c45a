import { readFileSync } from 'node:fs';
import type { z } from 'zod';
import { CONFIG_FILE_ENV, configFromEnv } from './env.js';
import { ConfigError, type ConfigIssue } from './errors.js';
import { deepMerge } from './merge.js';
import { type SidecarConfig, SidecarConfigSchema } from './schema.js';

export interface LoadConfigOptions {
  /** Config file path; defaults to $SMC_CONFIG_FILE; no file is fine when the environment is enough. */
  file?: string | undefined;
  env?: Readonly<Record<string, string | undefined>>;
  /** Injected for tests. */
  readFile?: (path: string) => string;
}

function readConfigFile(path: string, readFile: (path: string) => string): unknown {
  let text: string;
  try {
    text = readFile(path);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    throw new ConfigError([{ path: '', source: `file ${path}`, message: `cannot read: ${msg}` }]);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    throw new ConfigError([{ path: '', source: `file ${path}`, message: `not valid JSON: ${msg}` }]);
  }
}

function issueSource(
  path: string,
  envSources: Map<string, string>,
  fileValue: unknown,
  file: string | undefined,
): string {
  for (const [p, env] of envSources) {
    if (path === p || path.startsWith(`${p}.`)) return `env ${env}`;
  }
  return file !== undefined && fileValue !== undefined ? `file ${file}` : 'default';
}

function valueAt(obj: unknown, path: readonly PropertyKey[]): unknown {
  let node = obj;
  for (const key of path) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Record<PropertyKey, unknown>)[key];
  }
  return node;
}

function toIssues(
  error: z.ZodError,
  envSources: Map<string, string>,
  fileObj: unknown,
  file: string | undefined,
): ConfigIssue[] {
  return error.issues.map((issue) => {
    const path = issue.path.map(String).join('.');
    return {
      path,
      source: issueSource(path, envSources, valueAt(fileObj, issue.path), file),
      message: issue.message,
    };
  });
}

/** Loads file then environment (environment wins), validates, and fills defaults. Throws {@link ConfigError}. */
export function loadConfig(opts: LoadConfigOptions = {}): SidecarConfig {
  const env = opts.env ?? process.env;
  const file = opts.file ?? env[CONFIG_FILE_ENV];
  const readFile = opts.readFile ?? ((p: string) => readFileSync(p, 'utf8'));
  const fileObj = file === undefined ? {} : readConfigFile(file, readFile);
  if (typeof fileObj !== 'object' || fileObj === null || Array.isArray(fileObj)) {
    throw new ConfigError([{ path: '', source: `file ${file}`, message: 'must hold a JSON object' }]);
  }
  const fromEnv = configFromEnv(env);
  const merged = deepMerge(fileObj, fromEnv.values);
  const result = SidecarConfigSchema.safeParse(merged);
  if (!result.success) throw new ConfigError(toIssues(result.error, fromEnv.sources, fileObj, file));
  return result.data;
}
