import { ProtocolError } from '@netpay/protocol';
import { rfc3339 } from '@netpay/service-kit';
import { recordReturn } from './allowance-store.ts';
import type { ConnectionRow } from './connection-chain.ts';
import { lockCustomer } from './customer-settings.ts';
import type { BrokerDeps } from './deps.ts';
import { leaseValid } from './holder-lease.ts';
import { refundCoin } from './refund.ts';

export type RevokeOutcome =
  /** The site released the chain (or its lease ran out): `returnedMinor` of its allowance is back in the balance. */
  | { kind: 'returned'; returnedMinor: number }
  /** The site did not release it yet: it can take nothing more, and the rest comes back once its lease ends. */
  | { kind: 'pending'; byAt: string };

/**
 * Revoke (§7 v1.1): the connection stops at once (`revoked_at`: no further allowance, its refresh token is
 * refused), then its chain is ended like a refund whose money goes back to the balance (refund.ts): the broker
 * claims it, asks the site for its release, or takes a forced start once the site's lease has run out. So a
 * site that answers gives back its unspent allowance at once, and one that does not keeps at most what it was
 * allowed and had not reported, until its lease ends.
 */
export async function revokeConnection(
  deps: BrokerDeps,
  customerId: string,
  connectionId: string,
): Promise<RevokeOutcome> {
  const connection = await deps.db.transaction().execute(async (trx) => {
    await lockCustomer(trx, deps.engine, customerId);
    const row = await trx
      .selectFrom('connections')
      .selectAll()
      .where('id', '=', connectionId)
      .where('customer_id', '=', customerId)
      .executeTakeFirst();
    if (!row) throw new ProtocolError('not_found', 'no such connected site');
    if (row.revoked_at === null) {
      const at = rfc3339(deps.clock.now());
      await trx.updateTable('connections').set({ revoked_at: at }).where('id', '=', row.id).execute();
      row.revoked_at = at;
    }
    return row;
  });
  return endRevokedChain(deps, connection);
}

/**
 * Finishes what revokes left pending: a chain whose site did not release it is ended once that site's lease has
 * run out. Cheap when nothing is pending; the pages and the balance API call it for the customer they show.
 */
export async function completeRevocations(deps: BrokerDeps, customerId: string): Promise<void> {
  const pending = await deps.db
    .selectFrom('connections')
    .innerJoin('chains', 'chains.chain_id', 'connections.chain_id')
    .selectAll('connections')
    .select(['chains.status as chain_status'])
    .where('connections.customer_id', '=', customerId)
    .where('connections.revoked_at', 'is not', null)
    .where('chains.status', 'in', ['active', 'refund_pending', 'refunding'])
    .execute();
  const now = deps.clock.now();
  for (const { chain_status, ...connection } of pending) {
    // A site that did not release at the revoke is not asked again on every page view (it may hang for the
    // release timeout): the chain waits for that site's lease to end, then takes a forced start.
    if (chain_status === 'refund_pending' && (await siteLeaseValid(deps, connection, now))) continue;
    try {
      await endRevokedChain(deps, connection);
    } catch (error) {
      // The bank or the database failed: the next view tries again.
      deps.logger.warn({ err: error, connectionId: connection.id }, 'could not end a revoked connection’s chain');
    }
  }
}

async function endRevokedChain(deps: BrokerDeps, connection: ConnectionRow): Promise<RevokeOutcome> {
  const chainId = connection.chain_id;
  if (chainId === null) return { kind: 'returned', returnedMinor: 0 };
  const chain = await deps.db
    .selectFrom('chains')
    .select(['status', 'unit', 'refund_index'])
    .where('chain_id', '=', chainId)
    .executeTakeFirst();
  if (!chain) throw new Error('a connection names a missing chain');
  let index: number;
  if (chain.status === 'refunded') index = chain.refund_index ?? 0;
  else {
    try {
      index = (await refundCoin(deps, connection.customer_id, chainId)).releasedIndex;
    } catch (error) {
      if (error instanceof ProtocolError && error.code === 'previous_holder_unavailable') {
        const byAt = typeof error.extra?.leaseEndsAt === 'string' ? error.extra.leaseEndsAt : '';
        return { kind: 'pending', byAt };
      }
      if (error instanceof ProtocolError && error.code === 'not_refundable') {
        const again = await deps.db
          .selectFrom('chains')
          .select('refund_index')
          .where('chain_id', '=', chainId)
          .executeTakeFirst();
        index = again?.refund_index ?? 0;
      } else throw error;
    }
  }
  const returnedMinor = await recordReturn(
    deps.db,
    {
      connectionId: connection.id,
      customerId: connection.customer_id,
      chainId,
      spentIndex: index,
      at: rfc3339(deps.clock.now()),
    },
    chain.unit,
  );
  return { kind: 'returned', returnedMinor };
}

async function siteLeaseValid(deps: BrokerDeps, connection: ConnectionRow, now: Date): Promise<boolean> {
  if (connection.chain_id === null) return false;
  const epochs = await deps.db
    .selectFrom('epochs')
    .select(['vendor_id', 'lease_expires_at'])
    .where('chain_id', '=', connection.chain_id)
    .where('vendor_id', '=', connection.vendor_id)
    .execute();
  return epochs.some((e) => leaseValid(e, now));
}
