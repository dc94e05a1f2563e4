import { type Allowance, b64uEncode, Money, ProtocolError, randomBytes, signTouchstone } from '@netpay/protocol';
import { rfc3339 } from '@netpay/service-kit';
import { type ChainState, highestKnownPoint, loadChainState, updateEpoch } from './chain-state.ts';
import { assertConserved } from './conservation.ts';
import type { BrokerDeps } from './deps.ts';
import type { HashWork } from './hash-work.ts';
import { balancePurchaseEntryOf, balanceRefundEntryOf } from './ledger.ts';
import { customerAccountBalance, postEntry } from './ledger-store.ts';
import type { BrokerSchema, BrokerTx } from './schema.ts';
import { activeSigningKey } from './signing-keys.ts';
import { openChainSeed, sealChainSeed } from './store-secrets.ts';

export type ConnectionRow = BrokerSchema['connections'];
type ConnectionChainRow = BrokerSchema['chains'];

/**
 * Chains that only one connection uses (§7 v1.1). The broker makes them (unit 1, its own sealed seed), funds
 * them from the customer's balance in blocks, and hands the connection's vendor allowances on them; their
 * remainder goes back to the balance, never to a card. Being ordinary chains, they keep every per-chain rule:
 * the purchase entry is the chain's one purchase (paid from `customer:<id>` instead of cash), its refund entries
 * (the unallowed tail given back early, then the rest at its end) go to the same account, and value = length × unit.
 */

/** `chains.charge_id` of a chain no card charge paid for. */
export const NO_CHARGE = '';

/**
 * Makes a chain of `blockMinor` units for the connection, paid from the customer's balance (customer +block /
 * coins_outstanding −block), and points the connection at it; returns it locked. The caller holds the
 * customer's lock and has checked that the balance covers the block; it is asserted again after the write.
 */
export async function fundConnectionChain(
  deps: BrokerDeps,
  trx: BrokerTx,
  work: HashWork,
  connection: ConnectionRow,
  blockMinor: number,
): Promise<ChainState> {
  const length = blockMinor;
  // The id and seed of the chain this connection gets next, kept by `work`: when its anchor is too long to hash
  // here, the transaction runs again after the pool made it, and must make the same chain.
  const { chainId, seed } = work.fresh(`connection-chain ${connection.id}`, () => ({
    chainId: b64uEncode(randomBytes(16)),
    seed: b64uEncode(randomBytes(32)),
  }));
  const anchor = work.paywordAt(chainId, seed, length, 0);
  const issuedAt = rfc3339(deps.clock.now());
  const expiresAt = rfc3339(new Date(Date.parse(issuedAt) + deps.config.coinTtlDays * 86_400_000));
  const key = await activeSigningKey(trx);
  const touchstone = signTouchstone(
    {
      chainId,
      anchor,
      length,
      unit: 1,
      currency: deps.config.currency,
      broker: deps.config.publicUrl,
      keyId: key.keyId,
      issuedAt,
      expiresAt,
    },
    key.privateSeed,
  );
  await trx
    .insertInto('chains')
    .values({
      chain_id: chainId,
      customer_id: connection.customer_id,
      anchor,
      seed: sealChainSeed(chainId, seed),
      length,
      unit: 1,
      currency: deps.config.currency,
      issued_at: issuedAt,
      expires_at: expiresAt,
      touchstone: JSON.stringify(touchstone),
      charge_id: NO_CHARGE,
      amount: blockMinor,
      current_epoch: 0,
      refund_index: null,
      refunded_units: 0,
      refunded_amount: 0,
      refunded_at: null,
      status: 'active',
      connection_id: connection.id,
    })
    .execute();
  await postEntry(
    trx,
    balancePurchaseEntryOf(chainId, connection.customer_id, Money.of(blockMinor, deps.config.currency)),
    issuedAt,
  );
  // Paired assertion: the caller checked the balance under the customer's lock; no write may take it below 0.
  if ((await customerAccountBalance(trx, connection.customer_id)) < 0) {
    throw new Error(`invariant: funding chain ${chainId} took customer ${connection.customer_id} below 0`);
  }
  await trx.updateTable('connections').set({ chain_id: chainId }).where('id', '=', connection.id).execute();
  connection.chain_id = chainId;
  const state = await loadChainState(trx, deps.engine, chainId);
  if (!state) throw new Error('a chain just made is missing');
  return state;
}

/**
 * Ends a connection chain at the highest point the broker knows (the vendor's report of what it spent is one):
 * the vendor's epoch may redeem nothing beyond it (its forced bound, and the chain's refund index), and the rest,
 * (length − point) × unit, goes back to the customer's balance in the chain's one refund entry. Used when the
 * connection moves on to a new chain; the vendor asked for it with that very report, so no release is awaited.
 * Returns the point it ended at.
 */
export async function finishConnectionChain(deps: BrokerDeps, trx: BrokerTx, state: ChainState): Promise<number> {
  const { chain } = state;
  if (chain.status !== 'active' || chain.connection_id === null) {
    throw new Error(`chain ${chain.chain_id} is not an active connection chain`);
  }
  const end = highestKnownPoint(state).index;
  const epoch = state.epochs.get(chain.current_epoch);
  if (epoch) {
    await updateEpoch(trx, state, epoch, {
      forced_bound: epoch.forced_bound === null ? end : Math.min(epoch.forced_bound, end),
    });
  }
  const total = (chain.length - end) * chain.unit;
  // What an earlier tail return (returnUnallowedTail) gave back already is not given twice.
  const amount = total - chain.refunded_amount;
  assertConserved(state, amount);
  const at = rfc3339(deps.clock.now());
  const ended = {
    status: 'refunded',
    refund_index: end,
    refunded_units: chain.length - end,
    refunded_amount: total,
    refunded_at: at,
  };
  await trx.updateTable('chains').set(ended).where('chain_id', '=', chain.chain_id).execute();
  Object.assign(chain, ended);
  await postEntry(
    trx,
    balanceRefundEntryOf(chain.chain_id, chain.customer_id, Money.of(amount, deps.config.currency)),
    at,
  );
  return end;
}

/**
 * The length a connection chain can still carry allowances to: its length less the tail it gave back to the
 * balance (`refunded_units` of a chain still active).
 */
export function usableLength(chain: Pick<ConnectionChainRow, 'length' | 'refunded_units' | 'status'>): number {
  return chain.status === 'active' ? chain.length - chain.refunded_units : chain.length;
}

/**
 * Gives the unallowed tail of a connection chain back to the customer's balance, while its site keeps spending
 * the allowance it holds: nobody holds a payword beyond the allowance index `allowance`, and the broker grants
 * none on this chain beyond it from now on (its usable length becomes `allowance`). So another site of the same
 * customer can be funded from money the balance shows but this chain held. The chain's value is unchanged; the
 * tail is part of its refunded amount (the chain's refund entries), and its final end gives back only the rest.
 * Returns the amount given back. The caller holds the customer's lock and this chain's.
 */
export async function returnUnallowedTail(
  deps: BrokerDeps,
  trx: BrokerTx,
  state: ChainState,
  allowance: number,
): Promise<number> {
  const { chain } = state;
  if (chain.status !== 'active' || chain.connection_id === null) return 0;
  const units = usableLength(chain) - allowance;
  if (units <= 0) return 0;
  const amount = units * chain.unit;
  assertConserved(state, amount);
  const patch = { refunded_units: chain.refunded_units + units, refunded_amount: chain.refunded_amount + amount };
  await trx.updateTable('chains').set(patch).where('chain_id', '=', chain.chain_id).execute();
  Object.assign(chain, patch);
  await postEntry(
    trx,
    balanceRefundEntryOf(chain.chain_id, chain.customer_id, Money.of(amount, deps.config.currency)),
    rfc3339(deps.clock.now()),
  );
  return amount;
}

/** The allowance w_a of a connection chain, derived from its sealed seed; valid while the chain is. */
export function allowanceOn(work: HashWork, state: ChainState, index: number): Allowance {
  const { chain } = state;
  if (chain.seed === null) throw new Error(`chain ${chain.chain_id} has no seed`);
  const payword = work.paywordAt(chain.chain_id, openChainSeed(chain.chain_id, chain.seed), chain.length, index);
  return { index, payword, expiresAt: chain.expires_at };
}

/**
 * A connection chain is used by its connection's site alone (§7 v1.1): no other vendor may claim it, so an
 * allowance cannot be spent anywhere else, whoever presents its paywords. Its site's claim (the current holder's)
 * stays an idempotent renewal.
 */
export function refuseForeignClaim(state: ChainState, vendorId: string): void {
  if (state.chain.connection_id === null) return;
  if (state.epochs.get(state.chain.current_epoch)?.vendor_id === vendorId) return;
  throw new ProtocolError('forbidden', "this chain carries a connected site's allowance; no other site can take it");
}

/** Whether a connection chain may carry a further allowance now: active and not expired. */
export function chainUsable(state: ChainState, now: Date): boolean {
  return state.chain.status === 'active' && now.getTime() < Date.parse(state.chain.expires_at);
}
