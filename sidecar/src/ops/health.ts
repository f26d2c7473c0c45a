/** Readiness of the parts the sidecar needs before it can carry traffic. */
export class HealthState {
  private readonly checks = new Map<string, boolean>();
  private shuttingDown = false;

  /** Registers a check as not yet ready. */
  register(name: string): void {
    if (!this.checks.has(name)) this.checks.set(name, false);
  }

  set(name: string, ready: boolean): void {
    this.checks.set(name, ready);
  }

  /** Fails readiness from now on (drain before exit). */
  drain(): void {
    this.shuttingDown = true;
  }

  ready(): { ready: boolean; checks: Record<string, boolean> } {
    const checks = Object.fromEntries(this.checks);
    const ready = !this.shuttingDown && [...this.checks.values()].every(Boolean);
    return { ready, checks };
  }
}
