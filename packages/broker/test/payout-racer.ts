/**
 * One payout run in its own process, for payouts.test.ts: another "cron host" with its own connection to the
 * broker's store. It opens the store, says `ready`, waits for a line on stdin so that every racer starts at
 * once, runs, and prints its report as JSON.
 *
 * Usage: node --import tsx payout-racer.ts <database URL> <bank URL> <bank API key> <settlement window seconds>
 */
import { once } from 'node:events';
import { openDatabase, sql, systemClock } from '@netpay/service-kit';
import { HttpBank } from '../src/http-bank.ts';
import { runPayouts } from '../src/payouts.ts';
import type { BrokerSchema } from '../src/schema.ts';

const [url, bankUrl, bankKey, windowSeconds] = process.argv.slice(2);
if (!url || !bankUrl || !bankKey || windowSeconds === undefined) throw new Error('usage: <db> <bank> <key> <window>');
const database = openDatabase<BrokerSchema>(url);
try {
  await sql`select 1`.execute(database.db); // connect before the start line, not after
  process.stdout.write('ready\n');
  await once(process.stdin, 'data');
  const report = await runPayouts({
    db: database.db,
    engine: database.engine,
    bank: new HttpBank({ url: bankUrl, apiKey: bankKey }),
    clock: systemClock,
    config: { currency: 'NZD', settlementWindowSeconds: Number(windowSeconds) },
  });
  process.stdout.write(`${JSON.stringify(report)}\n`);
} finally {
  await database.close();
}
