import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { clientHelloVerdict } from '../protocol/clc/first-message.js';
import { closeAll, loopbackPair } from '../relay/testing.js';
import { readFirstMessage } from './first-message.js';

const servers: import('node:net').Server[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await closeAll(servers.splice(0));
});

async function pair(): Promise<{ accepted: Socket; client: Socket }> {
  const [client, accepted] = await loopbackPair(servers);
  sockets.push(client, accepted);
  return { accepted, client };
}

const PROPOSAL_HEAD = Buffer.from([0xe2, 0xd4, 0xc3, 0xd9, 0x01, 0x00, 0x2c, 0x10]);

describe('readFirstMessage', () => {
  it('hands a Proposal arriving in pieces to CLC, bytes intact', async () => {
    const { accepted, client } = await pair();
    const read = readFirstMessage(accepted, clientHelloVerdict, 5000);
    client.write(PROPOSAL_HEAD.subarray(0, 3));
    await new Promise((r) => setTimeout(r, 20));
    client.write(PROPOSAL_HEAD.subarray(3));
    const r = await read;
    expect(r.verdict).toBe('clc');
    expect(r.ended).toBe(false);
    expect(r.bytes.subarray(0, PROPOSAL_HEAD.byteLength)).toEqual(PROPOSAL_HEAD);
  });

  it('gives an application request back as data at its first byte', async () => {
    const { accepted, client } = await pair();
    const read = readFirstMessage(accepted, clientHelloVerdict, 5000);
    client.write('GET / HTTP/1.1\r\n');
    const r = await read;
    expect(r.verdict).toBe('not-clc');
    expect(r.bytes.toString()).toBe('GET / HTTP/1.1\r\n');
  });

  it('reports an end after a prefix of the eyecatcher, with those bytes', async () => {
    const { accepted, client } = await pair();
    const read = readFirstMessage(accepted, clientHelloVerdict, 5000);
    client.end(Buffer.from([0xe2, 0xd4]));
    const r = await read;
    expect(r).toMatchObject({ verdict: 'undecided', ended: true });
    expect([...r.bytes]).toEqual([0xe2, 0xd4]);
  });

  it('stops waiting for a silent peer after the timeout', async () => {
    const { accepted } = await pair();
    const r = await readFirstMessage(accepted, clientHelloVerdict, 50);
    expect(r).toMatchObject({ verdict: 'undecided', ended: false });
    expect(r.bytes.byteLength).toBe(0);
  });
});
