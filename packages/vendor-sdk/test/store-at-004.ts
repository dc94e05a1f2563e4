/**
 * A spend store as migration 004 left it, for the tests of migration 005 (the append-only journal): one chain, an
 * epoch paid to index 4, three payments in the old `netpay_payments` table (r1 at 1 and 4, r2 at 2) and two
 * entitlements without the point that bought them.
 */
import type { PaywordChain } from '@netpay/protocol';
import { sql } from '@netpay/service-kit';
import type { Kysely } from 'kysely';

export async function fillStoreAt004(db: Kysely<unknown>, chain: PaywordChain): Promise<void> {
  const chainId = chain.chainIdB64;
  await sql`INSERT INTO netpay_chains (chain_id, touchstone, unit, length, currency, expires_at_ms)
    VALUES (${chainId}, '{}', 2, 10, 'NZD', 1900000000000)`.execute(db);
  await sql`INSERT INTO netpay_epochs (chain_id, epoch, holder, lease_expires_at_ms, start_index, start_payword,
      last_index, last_payword, last_resource)
    VALUES (${chainId}, 1, '{}', 1900000000000, 0, ${chain.b64(0)}, 4, ${chain.b64(4)}, 'r1')`.execute(db);
  for (const [idx, resource] of [
    [1, 'r1'],
    [2, 'r2'],
    [4, 'r1'],
  ] as const) {
    await sql`INSERT INTO netpay_payments (chain_id, epoch, idx, payword, resource, amount_minor, at_ms)
      VALUES (${chainId}, 1, ${idx}, ${chain.b64(idx)}, ${resource}, 2, ${idx})`.execute(db);
  }
  await sql`INSERT INTO netpay_entitlements (chain_id, resource) VALUES (${chainId}, 'r1'), (${chainId}, 'r2')`.execute(
    db,
  );
}
