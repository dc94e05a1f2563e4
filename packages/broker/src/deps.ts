import type { Clock, DatabaseEngine } from '@netpay/service-kit';
import type { Logger } from 'pino';
import type { Bank } from './bank-port.ts';
import type { BrokerConfig } from './config.ts';
import type { Hasher } from './hash-pool.ts';
import type { ReleaseClient } from './release-client.ts';
import type { BrokerDb } from './schema.ts';

/**
 * The ports every use case of the broker is given: store, bank, clock, config, the vendor release call, and the
 * hasher that keeps long hash loops off the event loop.
 */
export interface BrokerDeps {
  db: BrokerDb;
  engine: DatabaseEngine;
  bank: Bank;
  clock: Clock;
  config: BrokerConfig;
  logger: Logger;
  releaseClient: ReleaseClient;
  hasher: Hasher;
}
