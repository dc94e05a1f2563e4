import { createServer } from 'node:net';

/**
 * A free port on 127.0.0.1, released at once: for a service that must know its own URL before it listens (the
 * broker's public URL, a vendor's release URL) or a child process told where to listen.
 */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
