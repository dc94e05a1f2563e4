/**
 * The default exchange with the broker (node:http(s)): a URL scheme is case-insensitive (RFC 3986 §3.1), so a broker
 * configured or discovered as `HTTPS://…` is reached over TLS, as fetch reached it, instead of every call failing.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { describe, it } from 'node:test';
import { nodeExchange } from '../src/broker-client.ts';

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
          timeoutMs: 2000,
        }),
      );
      // 0x16: a TLS handshake record (the ClientHello), not a refusal before any byte was sent.
      assert.equal(firstBytes[0]?.[0], 0x16, 'a TLS ClientHello reached the broker');
    } finally {
      server.close();
    }
  });
});
