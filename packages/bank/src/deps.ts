import type { Clock, DatabaseEngine } from '@netpay/service-kit';
import type { BankDb } from './store.ts';

/** The ports every bank use case takes. */
export interface BankDeps {
  db: BankDb;
  engine: DatabaseEngine;
  clock: Clock;
}
