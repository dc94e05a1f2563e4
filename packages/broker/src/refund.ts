import {
  checkWire,
  type HolderCertificate,
  ProtocolError,
  type RefundResponse,
  ReleaseResponseSchema,
} from '@netpay/protocol';
import { rfc3339 } from '@netpay/service-kit';
import { BankUnavailable } from './bank-port.ts';
import { loadChainState } from './chain-state.ts';
import { claimInTransaction } from './claim.ts';
import type { BrokerDeps } from './deps.ts';
import { refundEntry } from './ledger.ts';
import { postEntry } from './ledger-store.ts';
import { checkRelease, learnRelease } from './take-back.ts';
import { BROKER_VENDOR_ID } from './vendor-registry.ts';

type Phase1 =
  | { kind: 'ready'; index: number }
  | { kind: 'needs_release'; epoch: number; holder: HolderCertificate; releaseUrl: string };

/**
 * §7 refund: the broker claims the chain as the vendor `broker`, obtains the holder's release (or a forced
 * start when the holder's lease has run out; index 0 if nobody ever claimed it), then refunds
 * (length − index) × unit to the card. The chain is marked `refunding` with its index before the bank is
 * called, so a retry after a bank failure refunds the same amount under the same bank idempotency key.
 */
export async function refundCoin(deps: BrokerDeps, customerId: string, chainId: string): Promise<RefundResponse> {
  const phase1 = await deps.db.transaction().execute(async (trx): Promise<Phase1> => {
    const state = await loadChainState(trx, deps.engine, chainId);
    if (!state || state.chain.customer_id !== customerId) {
      throw new ProtocolError('unknown_chain', 'no such chain among your coins', undefined, 404);
    }
    if (state.chain.status === 'refunded') throw new ProtocolError('not_refundable', 'this coin was already refunded');
    if (state.chain.status === 'refunding') return { kind: 'ready', index: state.chain.refund_index ?? 0 };
    const { epoch, response } = await claimInTransaction(deps, trx, state, BROKER_VENDOR_ID, { allowExpired: true });
    if (epoch.start_index !== null) {
      await trx
        .updateTable('chains')
        .set({ status: 'refunding', refund_index: epoch.start_index })
        .where('chain_id', '=', chainId)
        .execute();
      return { kind: 'ready', index: epoch.start_index };
    }
    if (!response.previous) throw new Error('an epoch without a start must have a predecessor');
    return {
      kind: 'needs_release',
      epoch: epoch.epoch,
      holder: response.holder,
      releaseUrl: response.previous.releaseUrl,
    };
  });

  let index: number;
  if (phase1.kind === 'ready') {
    index = phase1.index;
  } else {
    let answer: unknown;
    try {
      answer = await deps.releaseClient(phase1.releaseUrl, { holder: phase1.holder });
    } catch (error) {
      deps.logger.warn({ err: error, chainId }, 'holder did not release the chain for a refund');
      throw new ProtocolError(
        'previous_holder_unavailable',
        'the vendor holding this coin cannot be reached; retry after its lease runs out',
      );
    }
    if (!checkWire(ReleaseResponseSchema, answer)) {
      throw new ProtocolError('previous_holder_unavailable', 'the vendor holding this coin answered without a release');
    }
    const release = answer.release;
    index = await deps.db.transaction().execute(async (trx) => {
      const state = await loadChainState(trx, deps.engine, chainId);
      if (!state) throw new Error('chain vanished');
      if (state.chain.status === 'refunded')
        throw new ProtocolError('not_refundable', 'this coin was already refunded');
      if (state.chain.status === 'refunding') return state.chain.refund_index ?? 0;
      if (state.chain.current_epoch !== phase1.epoch) {
        throw new ProtocolError('conflict', 'a vendor claimed the coin while it was being refunded; retry');
      }
      const problem = await checkRelease(trx, state, release, BROKER_VENDOR_ID, phase1.epoch);
      if (problem) {
        throw new ProtocolError('previous_holder_unavailable', `the vendor's release is not valid (${problem})`);
      }
      const previous = state.epochs.get(phase1.epoch - 1);
      if (previous) await learnRelease(trx, state, previous, release, deps.config.feeBps, rfc3339(deps.clock.now()));
      await trx
        .updateTable('chains')
        .set({ status: 'refunding', refund_index: release.index })
        .where('chain_id', '=', chainId)
        .execute();
      return release.index;
    });
  }
  return finishRefund(deps, chainId, index);
}

async function finishRefund(deps: BrokerDeps, chainId: string, index: number): Promise<RefundResponse> {
  const chain = await deps.db
    .selectFrom('chains')
    .selectAll()
    .where('chain_id', '=', chainId)
    .executeTakeFirstOrThrow();
  const units = Math.max(0, chain.length - index);
  const amount = units * chain.unit;
  if (amount > 0) {
    try {
      const result = await deps.bank.refund({ chargeId: chain.charge_id, amount }, `refund-${chainId}`);
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
    const state = await loadChainState(trx, deps.engine, chainId);
    if (state?.chain.status !== 'refunding') return; // a concurrent twin finished it
    await postEntry(trx, refundEntry(chainId, amount), at);
    await trx
      .updateTable('chains')
      .set({ status: 'refunded', refunded_units: units, refunded_amount: amount, refunded_at: at })
      .where('chain_id', '=', chainId)
      .execute();
  });
  return { chainId, refunded: amount, releasedIndex: index };
}
