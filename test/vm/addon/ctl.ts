// A tiny JSON-lines control channel between the two lab nodes (node1 listens, node0 connects),
// used by the VM-side addon programs to swap endpoints and synchronise steps.
import { connect, createServer, type Socket } from 'node:net';

export type Json = Record<string, unknown>;

export class Ctl {
  #buf = '';
  #lines: string[] = [];
  #waiters: { resolve: (line: string) => void; reject: (e: Error) => void }[] = [];
  #closed: Error | undefined;
  constructor(readonly sock: Socket) {
    sock.setNoDelay(true);
    // The peer gone (crashed, or its VM killed): fail pending and later receives at once.
    const fail = (why: string): void => {
      this.#closed ??= new Error(`control channel ${why}`);
      for (const w of this.#waiters.splice(0)) w.reject(this.#closed);
    };
    sock.on('close', () => fail('closed by the peer'));
    sock.on('error', (e) => fail(`error: ${e.message}`));
    sock.on('data', (d: Buffer) => {
      this.#buf += d.toString('utf8');
      let i: number;
      while ((i = this.#buf.indexOf('\n')) >= 0) {
        const line = this.#buf.slice(0, i);
        this.#buf = this.#buf.slice(i + 1);
        const w = this.#waiters.shift();
        if (w) w.resolve(line);
        else this.#lines.push(line);
      }
    });
  }
  send(tag: string, data: Json = {}): void {
    this.sock.write(`${JSON.stringify({ tag, ...data })}\n`);
  }
  async recv<T extends Json>(tag: string): Promise<T> {
    let line = this.#lines.shift();
    if (line === undefined) {
      if (this.#closed) throw this.#closed;
      line = await new Promise<string>((resolve, reject) => this.#waiters.push({ resolve, reject }));
    }
    const msg = JSON.parse(line) as Json;
    if (msg['tag'] !== tag) throw new Error(`control: expected ${tag}, got ${String(msg['tag'])}`);
    return msg as T;
  }
}

/** node1 (listen = true) accepts one connection on `port`; node0 connects, retrying while node1 boots. */
export async function openCtl(listen: boolean, port: number, peerIp: string): Promise<Ctl> {
  if (listen) {
    const server = createServer();
    const accepted = new Promise<Socket>((r) => server.once('connection', r));
    server.listen(port, '0.0.0.0');
    const s = await accepted;
    server.close();
    return new Ctl(s);
  }
  for (let i = 0; ; i++) {
    try {
      const s = await new Promise<Socket>((res, rej) => {
        const c = connect(port, peerIp);
        c.once('connect', () => res(c));
        c.once('error', rej);
      });
      return new Ctl(s);
    } catch (e) {
      if (i > 300) throw e;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}
