/**
 * The default exchange with the broker (node:http(s)) against real listeners: a URL scheme is case-insensitive (RFC
 * 3986 §3.1), so a broker configured or discovered as `HTTPS://…` is reached over TLS, as fetch reached it; and
 * every way an answer can go wrong (a redirect, too large, too slow, cut short) is a rejection, never a hang or a
 * partial answer taken for a whole one.
 */
import assert from 'node:assert/strict';
import { createServer as createHttpServer, type ServerResponse } from 'node:http';
import { createServer } from 'node:net';
import { describe, it } from 'node:test';
import { nodeExchange } from '../src/broker-client.ts';

const GET = { method: 'GET', headers: {}, body: null, timeoutMs: 5000 };

/** A loopback HTTP server answering every request with `answer`; closed after `use`. */
async function withServer(answer: (res: ServerResponse) => void, use: (url: string) => Promise<void>) {
  const server = createHttpServer((_req, res) => answer(res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  try {
    await use(`http://127.0.0.1:${port}/x`);
  } finally {
    server.closeAllConnections();
    server.close();
  }
}

describe('the default broker exchange', () => {
  it('speaks TLS to an HTTPS URL written in capitals', async () => {
    const firstBytes: Buffer[] = [];
    const server = createServer((socket) => {
      socket.once('data', (chunk: Buffer) => {
        firstBytes.push(chunk);
        socket.destroy();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    try {
      await assert.rejects(
        nodeExchange(`HTTPS://127.0.0.1:${port}/.well-known/netpay`, {
          method: 'GET',
          headers: {},
          body: null,
          timeoutMs: 5000,
        }),
      );
      // 0x16: a TLS handshake record (the ClientHello), not a refusal before any byte was sent.
      assert.equal(firstBytes[0]?.[0], 0x16, 'a TLS ClientHello reached the broker');
    } finally {
      server.close();
    }
  });

  it('answers the status and the whole body, on a kept-alive connection the second time', async () => {
    const sockets = new Set<unknown>();
    await withServer(
      (res) => {
        sockets.add(res.socket);
        res.setHeader('content-type', 'application/json');
        res.end('{"ok":true}');
      },
      async (url) => {
        assert.deepEqual(await nodeExchange(url, GET), { status: 200, text: '{"ok":true}' });
        assert.deepEqual(await nodeExchange(url, { ...GET, method: 'POST', body: '{}' }), {
          status: 200,
          text: '{"ok":true}',
        });
        assert.equal(sockets.size, 1, 'the second exchange reused the connection');
      },
    );
  });

  it('refuses a redirect', async () => {
    await withServer(
      (res) => {
        res.writeHead(302, { location: 'http://127.0.0.1:1/elsewhere' });
        res.end();
      },
      async (url) => {
        await assert.rejects(nodeExchange(url, GET), /redirected \(HTTP 302\)/);
      },
    );
  });

  it('refuses an answer over 4 MiB while reading it', async () => {
    await withServer(
      (res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(Buffer.alloc(4 * 1024 * 1024 + 1, 0x20));
      },
      async (url) => {
        await assert.rejects(nodeExchange(url, GET), /answer too large/);
      },
    );
  });

  it('gives up at the timeout when the answer never ends', async () => {
    await withServer(
      (res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{"slow":');
      },
      async (url) => {
        const started = performance.now();
        await assert.rejects(nodeExchange(url, { ...GET, timeoutMs: 200 }), /timed out after 200 ms/);
        assert.ok(performance.now() - started < 2000);
      },
    );
  });

  it('refuses an answer cut short by the server', async () => {
    await withServer(
      (res) => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
        res.write('{"cut":');
        setTimeout(() => res.socket?.destroy(), 20);
      },
      async (url) => {
        // Refused when the connection ends, not later at the timeout.
        await assert.rejects(nodeExchange(url, GET), (error: Error) => !/timed out/.test(error.message));
      },
    );
  });
});
