export interface ConfigIssue {
  /** Dotted path in the config object, e.g. "policy.mode"; "" for the root. */
  path: string;
  /** Where the offending value came from: "file /etc/smc/sidecar.json", "env SMC_POLICY_MODE" or "default". */
  source: string;
  message: string;
}

/** The configuration could not be read or is invalid; `issues` lists every problem found. */
export class ConfigError extends Error {
  constructor(
    readonly issues: readonly ConfigIssue[],
    summary = 'invalid sidecar configuration',
  ) {
    super(
      [
        `${summary}:`,
        ...issues.map((i) => `  - ${i.path === '' ? '(root)' : i.path} [${i.source}]: ${i.message}`),
      ].join('\n'),
    );
    this.name = 'ConfigError';
  }
}
