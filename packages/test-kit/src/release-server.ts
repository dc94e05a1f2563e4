import { createServer, type Server } from 'node:http';
import type { HolderCertificate, ReleaseStatement } from '@netpay/protocol';

/** Signs a release of the holder's previous epoch at a point (a broker test vendor's `release`). */
export interface ReleaseSigner {
  release(to: HolderCertificate, index: number, payword: string, epoch?: number): ReleaseStatement;
}

/**
 * A §6 release URL a test answers for one vendor: a release signed by `getVendor()` at whatever point `pointFor`
 * says for the holder certificate it is shown, or 503 when it says nothing (an unreachable holder). Every
 * certificate it was shown is kept in `calls`.
 */
export async function startReleaseServer(
  getVendor: () => ReleaseSigner,
  pointFor: (holder: HolderCertificate) => { index: number; payword: string } | undefined,
): Promise<{ url: string; server: Server; calls: HolderCertificate[] }> {
  const calls: HolderCertificate[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      const { holder } = JSON.parse(body) as { holder: HolderCertificate };
      calls.push(holder);
      const point = pointFor(holder);
      if (!point) {
        res.writeHead(503).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ release: getVendor().release(holder, point.index, point.payword) }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { url: `http://127.0.0.1:${port}/release`, server, calls };
}
