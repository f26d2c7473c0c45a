/** Typed errors of the operator. Each has a stable `code` for logs and metrics. */

export class OperatorError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A non-2xx answer of the API server (status is the HTTP status, reason the metav1.Status reason). */
export class ApiError extends OperatorError {
  readonly status: number;
  readonly reason: string | undefined;
  readonly method: string;
  readonly path: string;
  constructor(method: string, path: string, status: number, reason: string | undefined, message: string) {
    super('API_ERROR', `${method} ${path}: ${status} ${reason ?? ''} ${message}`.trim());
    this.status = status;
    this.reason = reason;
    this.method = method;
    this.path = path;
  }
  get notFound(): boolean {
    return this.status === 404;
  }
  get conflict(): boolean {
    return this.status === 409;
  }
  get gone(): boolean {
    return this.status === 410;
  }
}

/** The connection to the API server failed (refused, reset, TLS, timeout). */
export class TransportError extends OperatorError {
  constructor(method: string, path: string, cause: unknown) {
    super('TRANSPORT', `${method} ${path}: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
    });
  }
}

/** An object from the cluster did not match the schema the operator expects. */
export class SchemaError extends OperatorError {
  constructor(what: string, detail: string) {
    super('SCHEMA', `${what}: ${detail}`);
  }
}

/** Invalid flags or environment. */
export class ConfigError extends OperatorError {
  constructor(message: string) {
    super('CONFIG', message);
  }
}

export function isApiError(e: unknown, status?: number): e is ApiError {
  return e instanceof ApiError && (status === undefined || e.status === status);
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
