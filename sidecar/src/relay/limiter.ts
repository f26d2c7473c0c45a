/** Counts concurrent proxied connections against the configured maximum. */
export class ConnectionLimiter {
  private active = 0;

  constructor(private readonly max: number) {}

  /** Takes a slot; returns a release function, or null when the limit is reached. */
  acquire(): (() => void) | null {
    if (this.active >= this.max) return null;
    this.active++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.active--;
    };
  }

  get count(): number {
    return this.active;
  }
}
