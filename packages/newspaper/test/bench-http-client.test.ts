import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { PaywordChain, parseAuthorization } from '@netpay/protocol';
import { loadHttp } from '../src/bench-http-client.ts';
import { runHttpLoad } from '../src/bench-http-load.ts';

const servers: Server[] = [];
after(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
});

/** A real HTTP server on loopback; answers as `handler` says. */
async function serve(handler: RequestListener): Promise<number> {
  const server = createServer(handler);
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

const get = (path: string, extra = '') => `GET ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\n${extra}\r\n`;

describe('the benchmark load client', () => {
  it('counts every answer the server sent, each connection sending its own requests in turn', async () => {
    const seen: string[] = [];
    const port = await serve((req, res) => {
      seen.push(String(req.headers['x-connection']));
      const body = JSON.stringify({ n: seen.length });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
    const sent = [0, 0, 0];
    const run = await loadHttp({
      host: '127.0.0.1',
      port,
      connections: 3,
      durationSec: 0.3,
      request: (connection) => {
        sent[connection] = (sent[connection] ?? 0) + 1;
        return get('/', `x-connection: ${connection}\r\n`);
      },
    });
    assert.equal(run.other, 0);
    assert.ok(run.ok > 30, `only ${run.ok} answers`);
    // Nothing is counted that the server did not answer, and every request sent was answered.
    assert.equal(run.ok, seen.length);
    assert.deepEqual(
      [0, 1, 2].map((c) => seen.filter((s) => s === String(c)).length),
      sent,
    );
    assert.ok(run.reqPerSec > 0 && run.reqPerSec <= run.ok / 0.3);
    assert.ok(run.p50Ms > 0 && run.p50Ms <= run.p99Ms);
  });

  it('counts answers other than 2xx apart, and measures how long each took', async () => {
    let n = 0;
    const port = await serve((_req, res) => {
      n++;
      // Every other answer is a 402 after 20 ms.
      const status = n % 2 === 0 ? 402 : 200;
      setTimeout(() => res.writeHead(status, { 'content-length': '2' }).end('{}'), status === 402 ? 20 : 0);
    });
    const run = await loadHttp({ host: '127.0.0.1', port, connections: 1, durationSec: 0.5, request: () => get('/') });
    assert.ok(run.ok >= 5, `${run.ok} ok`);
    assert.ok(Math.abs(run.ok - run.other) <= 1, `${run.ok} ok against ${run.other} other`);
    // Half the answers took 20 ms or more: the p99 is one of them, the median is either side.
    assert.ok(run.p99Ms >= 20, `p99 ${run.p99Ms}`);
  });

  it('stops a connection on an answer it cannot delimit (no Content-Length) and counts it as failed', async () => {
    const port = await serve((_req, res) => {
      res.write('{"chunked":');
      res.end('true}');
    });
    const run = await loadHttp({ host: '127.0.0.1', port, connections: 2, durationSec: 0.3, request: () => get('/') });
    assert.equal(run.ok, 0);
    assert.equal(run.other, 2);
  });

  it('rejects with the error of a request it could not make (out of coins), rather than a short run', async () => {
    const port = await serve((_req, res) => res.writeHead(200, { 'content-length': '0' }).end());
    let made = 0;
    await assert.rejects(
      loadHttp({
        host: '127.0.0.1',
        port,
        connections: 2,
        durationSec: 2,
        request: () => {
          if (++made > 10) throw new Error('the benchmark ran out of coins');
          return get('/');
        },
      }),
      /ran out of coins/,
    );
  });

  it('opens a new connection when the server closes one after an answer (nginx after keepalive_requests)', async () => {
    let served = 0;
    const port = await serve((_req, res) => {
      served++;
      res.writeHead(200, { 'content-length': '2' }).end('{}');
    });
    // Node's server answers the 10th request of a connection with `Connection: close`, then closes it.
    (servers.at(-1) as Server).maxRequestsPerSocket = 10;
    const run = await loadHttp({ host: '127.0.0.1', port, connections: 2, durationSec: 0.3, request: () => get('/') });
    assert.equal(run.other, 0);
    assert.ok(run.ok > 40, `${run.ok} answers: the connections did not come back`);
    assert.equal(run.ok, served);
  });

  it('takes an answer without a body (204) without a Content-Length', async () => {
    const port = await serve((_req, res) => res.writeHead(204).end());
    const run = await loadHttp({ host: '127.0.0.1', port, connections: 2, durationSec: 0.2, request: () => get('/') });
    assert.equal(run.other, 0);
    assert.ok(run.ok > 10);
  });

  it('rates the answers within the run, not the wait for one that never comes', async () => {
    let n = 0;
    const port = await serve((_req, res) => {
      // The fifth request is never answered; its connection gives up at the answer timeout, after the run.
      if (++n === 5) return;
      res.writeHead(200, { 'content-length': '2' }).end('{}');
    });
    const started = performance.now();
    const run = await loadHttp({
      host: '127.0.0.1',
      port,
      connections: 2,
      durationSec: 0.3,
      answerTimeoutMs: 1_000,
      request: () => get('/'),
    });
    assert.ok(performance.now() - started >= 1_000, 'the run waited for the straggler');
    assert.equal(run.other, 1);
    // Every answer but those to requests still out at the end (one a connection) came within the 0.3 s.
    assert.ok(run.reqPerSec >= (run.ok - 2) / 0.3, `${run.reqPerSec} req/s for ${run.ok} answers`);
  });

  it('pays each request with the next payword of its own coin, skipping coins spent to their end', async () => {
    const paid: Array<{ chain: string; index: number }> = [];
    const chains = [PaywordChain.generate(5), PaywordChain.generate(5), PaywordChain.generate(5)];
    const port = await serve((req, res) => {
      const { chain, index, payword } = parseAuthorization(req.headers.authorization);
      const coin = chains.find((c) => c.chainIdB64 === chain);
      assert.equal(payword, coin?.b64(index));
      paid.push({ chain, index });
      res.writeHead(200, { 'content-length': '2' }).end('{}');
    });
    const coins = chains.map((c, i) => ({
      chainId: c.chainIdB64,
      seed: Buffer.from(c.seed).toString('base64url'),
      length: 5,
      // The first coin was spent to its end in an earlier round.
      startIndex: i === 0 ? 5 : 0,
    }));
    const plan = { kind: 'http' as const, url: `http://127.0.0.1:${port}`, path: '/', connections: 1, durationSec: 1 };
    // Ten paywords left in all: the run pays them in order, then says the coins ran out.
    await assert.rejects(runHttpLoad({ ...plan, chains: coins }), /ran out of coins/);
    assert.deepEqual(
      paid,
      [1, 2].flatMap((c) => [1, 2, 3, 4, 5].map((index) => ({ chain: chains[c]?.chainIdB64 as string, index }))),
    );
  });

  it('counts a connection the server refuses as failed', async () => {
    const port = await serve(() => {});
    const closed = servers.at(-1) as Server;
    closed.close();
    await once(closed, 'close');
    const run = await loadHttp({ host: '127.0.0.1', port, connections: 2, durationSec: 0.2, request: () => get('/') });
    assert.equal(run.ok, 0);
    assert.equal(run.other, 2);
  });
});
