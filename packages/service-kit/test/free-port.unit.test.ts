import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { describe, it } from 'node:test';
import { freePort } from '../src/free-port.ts';

function listen(port: number): Promise<() => Promise<void>> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(() => new Promise((done) => server.close(() => done()))));
  });
}

describe('freePort', () => {
  it('answers distinct ports a service can listen on, below the ephemeral range where the kernel says it', async () => {
    const ports = await Promise.all(Array.from({ length: 20 }, () => freePort()));
    assert.equal(new Set(ports).size, ports.length, 'no port handed out twice');
    let low: number | undefined;
    try {
      low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    } catch {
      low = undefined;
    }
    if (low !== undefined && low - 20_000 >= 1000) {
      for (const port of ports) assert.ok(port >= 20_000 && port < low, `${port} is below the ephemeral range`);
    }
    const closers = await Promise.all(ports.map(listen));
    for (const close of closers) await close();
  });

  it('does not answer a port something listens on', async () => {
    const taken: (() => Promise<void>)[] = [];
    const seen = new Set<number>();
    try {
      for (let i = 0; i < 30; i++) {
        const port = await freePort();
        assert.ok(!seen.has(port));
        seen.add(port);
        taken.push(await listen(port));
      }
    } finally {
      for (const close of taken) await close();
    }
  });
});
