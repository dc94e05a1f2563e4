import type { FastifyInstance } from 'fastify';

/**
 * Listens and stops cleanly on SIGINT/SIGTERM: in-flight requests finish, then `onClose` hooks
 * close the database. A second signal exits at once.
 */
export async function listenUntilSignal(app: FastifyInstance, host: string, port: number): Promise<string> {
  const address = await app.listen({ host, port });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) process.exit(1);
    stopping = true;
    app.log.info({ signal }, 'stopping');
    app.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
  return address;
}
