import {
  checkWire,
  type HolderCertificate,
  Money,
  ProtocolError,
  type RefundResponse,
  ReleaseResponseSchema,
} from '@netpay/protocol';
import { rfc3339 } from '@netpay/service-kit';
import { BankUnavailable } from './bank-port.ts';
import { type ChainState, highestKnownIndex, loadChainState } from './chain-state.ts';
import { claimInTransaction } from './claim.ts';
import { assertConserved, chainValue, keptGross } from './conservation.ts';
import type { BrokerDeps } from './deps.ts';
import { withHashWork } from './hash-work.ts';
import { leaseValid } from './holder-lease.ts';
import { balanceRefundEntryOf, refundEntryOf } from './ledger.ts';
import { postEntry } from './ledger-store.ts';
import type { BrokerTx } from './schema.ts';
import { checkRelease, learnRelease } from './take-back.ts';
import { BROKER_VENDOR_ID } from './vendor-registry.ts';

type Phase1 =
  | { kind: 'ready'; index: number }
  | { kind: 'needs_release'; epoch: number; holder: HolderCertificate; releaseUrl: string; leaseEndsAt: string };

/**
 * §7 refund (v1.1): the broker claims the chain as the vendor `broker` and from then on no vendor may claim it
 * (status `refund_pending`). It obtains the holder's release, or, once that holder's lease has run out (it cannot
 * renew a superseded epoch), takes a forced start: so a refund completes within one lease whatever the holder
 * does. The refund index is the highest point the broker knows after that (release, checkpoints, proofs,
 * redeemed ends), and every later redemption is capped there; the refund pays only (length − index) × unit,
 * which no vendor has been or can still be credited for. The chain is marked `refunding` with its index before
 * the bank is called, so a retry after a bank failure refunds the same amount under the same idempotency key.
 */
export async function refundCoin(deps: BrokerDeps, customerId: string, chainId: string): Promise<RefundResponse> {
  const phase1 = await deps.db.transaction().execute(async (trx): Promise<Phase1> => {
    const state = await loadChainState(trx, deps.engine, chainId);
    if (!state || state.chain.customer_id !== customerId) {
      throw new ProtocolError('unknown_chain', 'no such chain among your coins', undefined, 404);
    }
    if (state.chain.status === 'refunded') throw new ProtocolError('not_refundable', 'this coin was already refunded');
    if (state.chain.status === 'refunding') return { kind: 'ready', index: state.chain.refund_index ?? 0 };
    const { epoch, response } = await claimInTransaction(deps, trx, state, BROKER_VENDOR_ID, {
      allowExpired: true,
      internal: true,
    });
    if (epoch.start_index !== null) return { kind: 'ready', index: await fixRefundIndex(trx, state) };
    if (!response.previous) throw new Error('an epoch without a start must have a predecessor');
    await trx.updateTable('chains').set({ status: 'refund_pending' }).where('chain_id', '=', chainId).execute();
    const previous = state.epochs.get(epoch.epoch - 1);
    return {
      kind: 'needs_release',
      epoch: epoch.epoch,
      holder: response.holder,
      releaseUrl: response.previous.releaseUrl,
      leaseEndsAt: previous?.lease_expires_at ?? rfc3339(deps.clock.now()),
    };
  });

  const index = phase1.kind === 'ready' ? phase1.index : await obtainRelease(deps, chainId, phase1);
  return finishRefund(deps, chainId, index);
}

/** Fixes the refund index at the highest point the broker knows, inside the chain's lock. */
async function fixRefundIndex(trx: BrokerTx, state: ChainState): Promise<number> {
  const index = highestKnownIndex(state);
  const amount = refundAmount(state, index);
  assertConserved(state, amount);
  await trx
    .updateTable('chains')
    .set({ status: 'refunding', refund_index: index })
    .where('chain_id', '=', state.chain.chain_id)
    .execute();
  state.chain.status = 'refunding';
  state.chain.refund_index = index;
  return index;
}

/**
 * What the card gets back: the units past the refund index, and never more than the value no range keeps
 * (ranges never pass the index, so the second term only matters if the books were already wrong).
 */
function refundAmount(state: ChainState, index: number): number {
  const byIndex = Math.max(0, state.chain.length - index) * state.chain.unit;
  return Math.max(0, Math.min(byIndex, chainValue(state.chain) - keptGross(state) - state.chain.refunded_amount));
}

async function obtainRelease(
  deps: BrokerDeps,
  chainId: string,
  phase1: Extract<Phase1, { kind: 'needs_release' }>,
): Promise<number> {
  let answer: unknown;
  try {
    answer = await deps.releaseClient(phase1.releaseUrl, { holder: phase1.holder });
  } catch (error) {
    deps.logger.warn({ err: error, chainId }, 'holder did not release the chain for a refund');
    throw unreachable(deps, phase1.leaseEndsAt);
  }
  if (!checkWire(ReleaseResponseSchema, answer)) throw unreachable(deps, phase1.leaseEndsAt);
  const release = answer.release;
  return withHashWork(deps.hasher, (work) =>
    deps.db.transaction().execute(async (trx) => {
      const state = await loadChainState(trx, deps.engine, chainId);
      if (!state) throw new Error('chain vanished');
      if (state.chain.status === 'refunded')
        throw new ProtocolError('not_refundable', 'this coin was already refunded');
      if (state.chain.status === 'refunding') return state.chain.refund_index ?? 0;
      if (state.chain.current_epoch !== phase1.epoch) throw new Error('a refund_pending chain changed holder');
      const problem = await checkRelease(work, trx, state, release, BROKER_VENDOR_ID, phase1.epoch);
      if (problem) {
        deps.logger.warn({ chainId, problem }, 'the holder answered the refund with an invalid release');
        throw unreachable(deps, phase1.leaseEndsAt);
      }
      const previous = state.epochs.get(phase1.epoch - 1);
      if (previous) await learnRelease(trx, state, previous, release, rfc3339(deps.clock.now()), 'next holder');
      return fixRefundIndex(trx, state);
    }),
  );
}

/** The holder did not release: the refund completes once its lease has run out (a forced start then). */
function unreachable(deps: BrokerDeps, leaseEndsAt: string): ProtocolError {
  const now = deps.clock.now();
  const retryAfter = leaseValid({ lease_expires_at: leaseEndsAt }, now)
    ? Math.max(1, Math.ceil((Date.parse(leaseEndsAt) - now.getTime()) / 1000))
    : 1;
  return new ProtocolError(
    'previous_holder_unavailable',
    `the vendor holding this coin did not release it; no vendor can take it any more, and the refund completes when its lease ends at ${leaseEndsAt}`,
    { retryAfter, leaseEndsAt },
  );
}

async function finishRefund(deps: BrokerDeps, chainId: string, index: number): Promise<RefundResponse> {
  const state = await deps.db.transaction().execute(async (trx) => loadChainState(trx, deps.engine, chainId));
  if (!state) throw new Error('chain vanished');
  if (state.chain.status === 'refunded') {
    return { chainId, refunded: state.chain.refunded_amount, releasedIndex: state.chain.refund_index ?? index };
  }
  // Ranges are capped at the refund index from the moment it is fixed, so this amount cannot change between
  // retries: the bank sees the same amount under the same key.
  const total = Math.max(0, state.chain.length - index) * state.chain.unit;
  // A connection chain was paid from the customer's balance (§7 v1.1): its remainder goes back there, no bank,
  // less the unallowed tail it may have given back already (connection-chain.ts); a coin's refunded_amount is 0.
  const toBalance = state.chain.connection_id !== null;
  const amount = Math.max(0, total - state.chain.refunded_amount);
  if (amount > 0 && !toBalance) {
    try {
      const result = await deps.bank.refund({ chargeId: state.chain.charge_id, amount }, `refund-${chainId}`);
      if (!result.ok) {
        deps.logger.error({ chainId, result }, 'bank refused a refund');
        throw new ProtocolError('bank_unavailable', `the bank refused the refund (${result.code})`);
      }
    } catch (error) {
      if (error instanceof BankUnavailable) {
        throw new ProtocolError('bank_unavailable', 'the bank cannot be reached; retry the refund');
      }
      throw error;
    }
  }
  const at = rfc3339(deps.clock.now());
  await deps.db.transaction().execute(async (trx) => {
    const locked = await loadChainState(trx, deps.engine, chainId);
    if (locked?.chain.status !== 'refunding') return; // a concurrent twin finished it
    assertConserved(locked, amount);
    await postEntry(
      trx,
      toBalance
        ? balanceRefundEntryOf(chainId, locked.chain.customer_id, Money.of(amount, locked.chain.currency))
        : refundEntryOf(chainId, Money.of(amount, locked.chain.currency)),
      at,
    );
    await trx
      .updateTable('chains')
      .set({ status: 'refunded', refunded_units: total / locked.chain.unit, refunded_amount: total, refunded_at: at })
      .where('chain_id', '=', chainId)
      .execute();
  });
  return { chainId, refunded: amount, releasedIndex: index };
}
