import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** The lowest port handed out; ports below the kernel's ephemeral range from here up are tried. */
const LOWEST = 20_000;

/**
 * Where this process looks next, from a random start and then one port up per call: test processes running beside
 * each other walk different stretches, so one rarely tries a port another has just handed out and not yet bound
 * (random ports per call would meet far more often).
 */
let cursor = Math.floor(Math.random() * 1_000_000);

/**
 * The kernel's ephemeral range (ports it gives to `listen(0)` and to outgoing connections), or undefined when it
 * cannot be read (not Linux).
 */
function ephemeralRange(): [number, number] | undefined {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    return low && high ? [low, high] : undefined;
  } catch {
    return undefined;
  }
}

/** Listens on `port` of 127.0.0.1 and closes again: answers the port bound, or undefined when it was taken. */
function tryPort(port: number): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EADDRINUSE' || error.code === 'EACCES') resolve(undefined);
      else reject(error);
    });
    server.listen(port, '127.0.0.1', () => {
      const address = server.address();
      const bound = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(bound));
    });
  });
}

/**
 * A free port on 127.0.0.1, released at once: for a service that must know its own URL before it listens (the
 * broker's public URL, a vendor's release URL) or a child process told where to listen; the tests and the bench.
 *
 * It is chosen below the kernel's ephemeral range, never the same twice in a process (until it has walked the
 * whole stretch). A port from that range (what `listen(0)` gives) is handed to the
 * next outgoing connection of any process once released, and a test that started a vendor on it failed with
 * EADDRINUSE because a PostgreSQL client of a test running beside it had taken it meanwhile; below the range only
 * another explicit bind can take it.
 */
export async function freePort(): Promise<number> {
  const range = ephemeralRange();
  if (range && range[0] - LOWEST >= 1000) {
    const span = range[0] - LOWEST;
    for (let attempt = 0; attempt < 50; attempt++) {
      const bound = await tryPort(LOWEST + (cursor++ % span));
      if (bound !== undefined) return bound;
    }
  }
  const port = await tryPort(0);
  if (port === undefined) throw new Error('no free port on 127.0.0.1');
  return port;
}
