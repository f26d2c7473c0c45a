export class DirectoryError extends Error {
  constructor(
    readonly path: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`endpoint directory ${path}: ${message}`, options);
    this.name = 'DirectoryError';
  }
}
