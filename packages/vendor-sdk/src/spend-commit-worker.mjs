// The SQLite group commit off the event loop: this worker owns its own better-sqlite3 connection to the spend
// store's WAL file and runs each batch of payment writes as one synchronous transaction (and its fsync) here, so
// the vendor's event loop keeps serving while the disk syncs. Plain JavaScript because workers do not get the tsx
// loader. Messages in: { id, batch: PaymentWrite[] } or { close: true }; out: { id, results } or { id, error }.
import { parentPort, workerData } from 'node:worker_threads';
import SQLite from 'better-sqlite3';

const { path, synchronous } = workerData;
const sqlite = new SQLite(path);
sqlite.pragma('journal_mode = WAL');
sqlite.pragma(`synchronous = ${synchronous}`);
sqlite.pragma('busy_timeout = 10000');
sqlite.pragma('foreign_keys = ON');

const cas = sqlite.prepare(
  `UPDATE netpay_epochs SET last_index = ?, last_payword = ?, last_resource = ?
   WHERE chain_id = ? AND epoch = ? AND last_index = ? AND release IS NULL`,
);
const payment = sqlite.prepare(
  `INSERT INTO netpay_payments (chain_id, epoch, idx, payword, resource, amount_minor, at_ms)
   VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
);
const entitlement = sqlite.prepare(
  'INSERT INTO netpay_entitlements (chain_id, resource) VALUES (?, ?) ON CONFLICT DO NOTHING',
);
const run = sqlite.transaction((batch) =>
  batch.map((w) => {
    const updated = cas.run(w.index, w.payword, w.resource, w.chainId, w.epoch, w.expectedLastIndex);
    if (updated.changes !== 1) return 'conflict';
    payment.run(w.chainId, w.epoch, w.index, w.payword, w.resource, w.amountMinor, w.atMs);
    entitlement.run(w.chainId, w.resource);
    return 'ok';
  }),
);

parentPort.on('message', (message) => {
  if (message.close) {
    sqlite.close();
    parentPort.close();
    return;
  }
  try {
    parentPort.postMessage({ id: message.id, results: run.immediate(message.batch) });
  } catch (error) {
    parentPort.postMessage({ id: message.id, error: error instanceof Error ? error.message : String(error) });
  }
});
