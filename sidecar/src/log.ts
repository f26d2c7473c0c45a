import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export type LogLevel = LevelWithSilent;

/** The sidecar's root logger: JSON lines on stdout; children carry `conn` / `link` ids. */
export function createLogger(level: LogLevel, name = 'smc-sidecar'): Logger {
  return pino({ name, level, base: { pid: process.pid } });
}

/** A logger that drops everything: the default for library code under test. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
