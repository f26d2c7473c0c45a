// The application side of bench/burst (runs in the lab VMs; see run.sh).
//
//   node client.js burst --host IP --port PORT --path /burst.bin --size BYTES -n N --label LABEL
//                        --out FILE [--timeout-ms 240000] [--progress-ms 2000]
//   node client.js watch --url http://127.0.0.1:15190/metrics [--interval-ms 1000]
//
// burst: opens all N connections in one go (no pacing). Each sends one HTTP/1.0 GET, reads until
//   the server closes, and ends as: ok (status 200 and a body of --size bytes), reset (ECONNRESET),
//   error (any other error), truncated (closed before the whole answer), bad-answer (another status
//   or length), timeout (still open after --timeout-ms). Per connection it records, in ms from the
//   start of the burst: net.connect() called, the connect(2) call (the socket's connectionAttempt
//   event: Node issues it on the next tick, so the last socket's comes only after all N are
//   created), the 'connect' event, the first answer byte, the whole answer, the close. Latencies
//   count from the connect(2) call. Writes them to --out, prints progress lines and one
//   `BURST {json}` summary.
// watch: scrapes a sidecar's /metrics every --interval-ms and prints one JSON line per scrape with
//   the gauges the report follows (registered memory, RSS, open fds, link groups, RMBs, loop lag).
import { writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { createConnection } from 'node:net';
import { performance } from 'node:perf_hooks';

type Outcome = 'ok' | 'reset' | 'error' | 'truncated' | 'bad-answer' | 'timeout';

interface Conn {
  start: number;
  attempt: number | null;
  connect: number | null;
  firstByte: number | null;
  full: number | null;
  closed: number | null;
  outcome: Outcome | null;
  code: string | null;
  status: number;
  contentLength: number | null;
  bodyBytes: number;
}

interface Dist {
  n: number;
  p50: number | null;
  p90: number | null;
  p99: number | null;
  max: number | null;
}

interface BurstOptions {
  host: string;
  port: number;
  path: string;
  size: number;
  n: number;
  label: string;
  out: string;
  timeoutMs: number;
  progressMs: number;
}

const round = (x: number): number => Math.round(x * 1000) / 1000;

/** Nearest-rank percentiles. */
function dist(xs: readonly number[]): Dist {
  const s = [...xs].sort((a, b) => a - b);
  const at = (p: number): number | null => {
    if (s.length === 0) return null;
    const v = s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
    return v === undefined ? null : round(v);
  };
  return { n: s.length, p50: at(50), p90: at(90), p99: at(99), max: at(100) };
}

function parseArgs(argv: readonly string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i];
    const v = argv[i + 1];
    if (k === undefined || !k.startsWith('-')) throw new Error(`unexpected argument ${String(k)}`);
    if (v === undefined) throw new Error(`${k} needs a value`);
    m.set(k.replace(/^-+/, ''), v);
  }
  return m;
}

function str(m: Map<string, string>, k: string, dflt?: string): string {
  const v = m.get(k) ?? dflt;
  if (v === undefined) throw new Error(`--${k} is required`);
  return v;
}

function int(m: Map<string, string>, k: string, dflt?: number): number {
  const v = Number(str(m, k, dflt === undefined ? undefined : String(dflt)));
  if (!Number.isSafeInteger(v) || v < 0) throw new Error(`--${k} must be a non-negative integer`);
  return v;
}

const HEADER_END = Buffer.from('\r\n\r\n');

/** Reads what has arrived so far; true once the whole answer (headers and body) is there. */
function parseAnswer(c: Conn, buf: Buffer, size: number): boolean {
  const end = buf.indexOf(HEADER_END);
  if (end < 0) return false;
  const head = buf.subarray(0, end).toString('latin1');
  c.status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
  const len = /\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1];
  c.contentLength = len === undefined ? null : Number(len);
  c.bodyBytes = buf.length - end - HEADER_END.length;
  return c.bodyBytes >= (c.contentLength ?? size);
}

async function burst(o: BurstOptions): Promise<void> {
  const request = Buffer.from(`GET ${o.path} HTTP/1.0\r\nHost: ${o.host}\r\nUser-Agent: smc-burst\r\n\r\n`);
  const conns: Conn[] = [];
  const t0 = performance.now();
  const now = (): number => performance.now() - t0;
  let settled = 0;
  let issueMs = 0;
  const say = (): void => {
    const count = (f: (c: Conn) => boolean): number => conns.filter(f).length;
    console.log(
      `progress burst ${o.label} ${(now() / 1000).toFixed(1)}s: connected ${count((c) => c.connect !== null)}/${o.n}, ` +
        `answered ${count((c) => c.full !== null)}, closed ${settled}, resets ${count((c) => c.outcome === 'reset')}, ` +
        `other failures ${count((c) => c.outcome !== null && c.outcome !== 'ok' && c.outcome !== 'reset')}`,
    );
  };
  const ticker = o.progressMs > 0 ? setInterval(say, o.progressMs) : null;
  await new Promise<void>((resolve) => {
    const destroyers: (() => void)[] = [];
    const finish = (c: Conn, outcome: Outcome, code: string | null): void => {
      if (c.outcome !== null) return;
      c.outcome = outcome;
      c.code = code;
      c.closed = now();
      if (++settled === o.n) resolve();
    };
    // All N sockets are created here; their connect(2) calls follow on the next tick, before any
    // I/O event is handled.
    for (let i = 0; i < o.n; i++) {
      const c: Conn = {
        start: now(),
        attempt: null,
        connect: null,
        firstByte: null,
        full: null,
        closed: null,
        outcome: null,
        code: null,
        status: 0,
        contentLength: null,
        bodyBytes: 0,
      };
      conns.push(c);
      const s = createConnection({ host: o.host, port: o.port, noDelay: true });
      const chunks: Buffer[] = [];
      let err: NodeJS.ErrnoException | null = null;
      s.once('connectionAttempt', () => {
        c.attempt = now();
      });
      s.once('connect', () => {
        c.connect = now();
        s.write(request);
      });
      s.on('data', (b: Buffer) => {
        if (c.firstByte === null) c.firstByte = now();
        chunks.push(b);
        if (parseAnswer(c, Buffer.concat(chunks), o.size) && c.full === null) c.full = now();
      });
      s.on('error', (e: NodeJS.ErrnoException) => {
        err ??= e;
      });
      s.once('close', () => {
        if (err !== null) {
          const code = err.code ?? err.message;
          finish(c, code === 'ECONNRESET' ? 'reset' : 'error', code);
        } else if (c.full !== null) {
          const good = c.status === 200 && c.bodyBytes === o.size && (c.contentLength ?? o.size) === o.size;
          finish(c, good ? 'ok' : 'bad-answer', good ? null : `status ${c.status}, ${c.bodyBytes} B`);
        } else if (c.status !== 0 && c.status !== 200) {
          finish(c, 'bad-answer', `status ${c.status}`);
        } else {
          finish(c, 'truncated', `truncated at ${c.bodyBytes} B of body`);
        }
      });
      destroyers.push(() => {
        if (c.outcome !== null) return;
        finish(c, 'timeout', 'timeout');
        s.destroy();
      });
    }
    issueMs = now();
    const deadline = setTimeout(() => destroyers.forEach((d) => d()), o.timeoutMs);
    deadline.unref();
  });
  if (ticker !== null) clearInterval(ticker);
  say();

  const by = (k: Outcome): number => conns.filter((c) => c.outcome === k).length;
  const errors: Record<string, number> = {};
  for (const c of conns) {
    if (c.outcome !== 'ok' && c.code !== null) errors[c.code] = (errors[c.code] ?? 0) + 1;
  }
  const times = (f: (c: Conn) => number | null): number[] =>
    conns.map(f).filter((x): x is number => x !== null);
  const since = (c: Conn, t: number | null): number | null =>
    t === null ? null : t - (c.attempt ?? c.start);
  const summary = {
    label: o.label,
    host: o.host,
    port: o.port,
    n: o.n,
    size: o.size,
    ok: by('ok'),
    reset: by('reset'),
    error: by('error'),
    truncated: by('truncated'),
    badAnswer: by('bad-answer'),
    timeout: by('timeout'),
    // A reset that came after the whole answer still reached the application as an error.
    resetAfterAnswer: conns.filter((c) => c.outcome === 'reset' && c.full !== null).length,
    errors,
    // From the first net.connect() to the last connect(2): how close to "all at once" the burst was.
    issueMs: round(Math.max(issueMs, ...times((c) => c.attempt))),
    wallMs: round(Math.max(0, ...times((c) => c.closed))),
    connectMs: dist(times((c) => since(c, c.connect))),
    firstByteMs: dist(times((c) => since(c, c.firstByte))),
    fullMs: dist(times((c) => since(c, c.full))),
  };
  const rows = conns.map((c) => [
    round(c.start),
    c.attempt === null ? null : round(c.attempt),
    c.connect === null ? null : round(c.connect),
    c.firstByte === null ? null : round(c.firstByte),
    c.full === null ? null : round(c.full),
    c.closed === null ? null : round(c.closed),
    c.outcome,
    c.code,
  ]);
  writeFileSync(
    o.out,
    JSON.stringify({
      summary,
      columns: ['start', 'attempt', 'connect', 'firstByte', 'full', 'closed', 'outcome', 'code'],
      rows,
    }),
  );
  console.log(`BURST ${JSON.stringify(summary)}`);
}

const WATCHED =
  /^(smc_registered_memory_bytes|smc_link_groups|smc_links|smc_rmbs|process_resident_memory_bytes|process_open_fds|process_max_fds|nodejs_eventloop_lag_max_seconds|nodejs_eventloop_lag_p99_seconds)(\{[^}]*\})?\s+(\S+)/;

function scrape(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = get(url, { timeout: 10_000 }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (b: Buffer) => parts.push(b));
      res.on('end', () =>
        res.statusCode === 200
          ? resolve(Buffer.concat(parts).toString('utf8'))
          : reject(new Error(`HTTP ${res.statusCode}`)),
      );
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('scrape timed out')));
    req.on('error', reject);
  });
}

async function watch(url: string, intervalMs: number): Promise<never> {
  for (;;) {
    const t = Date.now();
    try {
      const m: Record<string, number> = {};
      for (const line of (await scrape(url)).split('\n')) {
        const x = WATCHED.exec(line);
        if (x?.[1] !== undefined && x[3] !== undefined) m[x[1] + (x[2] ?? '')] = Number(x[3]);
      }
      console.log(JSON.stringify({ t, m }));
    } catch (err) {
      console.log(JSON.stringify({ t, error: err instanceof Error ? err.message : String(err) }));
    }
    await new Promise((r) => setTimeout(r, Math.max(0, t + intervalMs - Date.now())));
  }
}

async function main(): Promise<void> {
  const [mode, ...rest] = process.argv.slice(2);
  const a = parseArgs(rest);
  if (mode === 'burst') {
    if (int(a, 'n') < 1) throw new Error('-n must be at least 1');
    await burst({
      host: str(a, 'host'),
      port: int(a, 'port'),
      path: str(a, 'path', '/burst.bin'),
      size: int(a, 'size'),
      n: int(a, 'n'),
      label: str(a, 'label'),
      out: str(a, 'out'),
      timeoutMs: int(a, 'timeout-ms', 240_000),
      progressMs: int(a, 'progress-ms', 2000),
    });
    process.exit(0);
  } else if (mode === 'watch') {
    await watch(str(a, 'url'), int(a, 'interval-ms', 1000));
  } else {
    throw new Error('usage: client.js burst|watch ...');
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(2);
});
