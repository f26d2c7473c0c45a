// The server pod's HTTP application (unmodified, knows nothing of SMC): /hello, /upload (answers
// "<n> <sha256>" of the body), /download?n=N (N random bytes; logs "DOWNLOAD <n> <sha256>" once
// sent), /endless (streams until the client goes away; logs
// "ENDLESS_END error <code>" or "ENDLESS_END eof"), /reset (resets the connection at the
// first body bytes, with the rest of the upload unread).

import http from 'node:http';
import { Buffer } from 'node:buffer';
import { URL } from 'node:url';
import { createHash, randomBytes } from 'node:crypto';

http
  .createServer((q, s) => {
    const url = new URL(q.url, 'http://x');
    if (url.pathname === '/download') {
      const total = Number(url.searchParams.get('n'));
      const h = createHash('sha256');
      let sent = 0;
      s.writeHead(200, { 'content-length': String(total) });
      const more = () => {
        while (sent < total) {
          const chunk = randomBytes(Math.min(1 << 20, total - sent));
          h.update(chunk);
          sent += chunk.length;
          if (!s.write(chunk)) return void s.once('drain', more);
        }
        s.end(() => console.log(`DOWNLOAD ${sent} ${h.digest('hex')}`));
      };
      more();
      return;
    }
    if (url.pathname === '/endless') {
      // How the stream ended for this application: a reset (an error) or a clean end of data.
      let told = false;
      const tell = (how) => {
        if (!told) console.log(`ENDLESS_END ${how}`);
        told = true;
      };
      q.socket.once('error', (e) => tell(`error ${e.code}`));
      q.socket.once('end', () => tell('eof'));
      const chunk = Buffer.alloc(1 << 16, 0x61);
      const more = () => {
        while (!s.destroyed && s.write(chunk));
        if (!s.destroyed) s.once('drain', more);
      };
      more();
      return;
    }
    if (url.pathname === '/reset') {
      q.once('data', () => s.socket?.resetAndDestroy());
      return;
    }
    const h = createHash('sha256');
    let n = 0;
    q.on('data', (c) => {
      n += c.length;
      h.update(c);
    });
    q.on('end', () =>
      s.end(url.pathname === '/upload' ? `${n} ${h.digest('hex')}\n` : `pod-b ${url.pathname} ${n}\n`),
    );
  })
  .listen(8080, '0.0.0.0');
