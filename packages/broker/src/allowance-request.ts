import {
  type AllowanceRequest,
  type AllowanceResponse,
  type HolderCertificate,
  ProtocolError,
  type Touchstone,
} from '@netpay/protocol';
import { rfc3339 } from '@netpay/service-kit';
import { type AllowanceOutcome, nextAllowance } from './allowance-grant.ts';
import { latestGrant, recordNotes } from './allowance-store.ts';
import { netPayBalance } from './balance.ts';
import { highestKnownPoint, loadChainState, pointOnChain, updateEpoch } from './chain-state.ts';
import { allowanceOn } from './connection-chain.ts';
import { connectionById, connectionByRefreshToken } from './connections.ts';
import { lockCustomer } from './customer-settings.ts';
import type { BrokerDeps } from './deps.ts';
import { withHashWork } from './hash-work.ts';
import { automaticTopUp } from './top-up.ts';

const revoked = () =>
  new ProtocolError('connection_revoked', 'the customer revoked this connection, or it is not yours');

/** A refused allowance, committed with the spent point and notes it carried, then answered as a problem. */
class Refused {
  constructor(readonly error: ProtocolError) {}
}
class NeedsTopUp {}

/**
 * §7 v1.1 `POST {api}/allowances`: the next allowance of a connection, for the site that holds its refresh
 * token. In one transaction with the customer's and the chain's locks: the connection must be this site's and
 * still stand (else 403 `connection_revoked`); `spent` must lie on the chain at or below the current allowance,
 * and is kept like a checkpoint (it bounds the site if the chain is later ended without its release), with the
 * site's notes for the customer's history; then the next allowance is decided (allowance-grant.ts). A repeated
 * request gets the same allowance; a request about a chain the connection already left is answered with the
 * current one and its holder certificate. Caps and an empty balance are 402 problems carrying `brokerUrl`, the
 * page where the customer can change them.
 */
export async function requestAllowance(
  deps: BrokerDeps,
  vendorId: string,
  request: AllowanceRequest,
): Promise<AllowanceResponse> {
  const found = await connectionByRefreshToken(deps.db, request.refreshToken);
  if (!found || found.vendor_id !== vendorId) throw revoked();
  const key = `auto-${found.id}-${request.chainId}-${request.spent.index}`;
  try {
    return await attempt(deps, found.id, vendorId, request, true);
  } catch (error) {
    if (error instanceof Refused) throw error.error;
    if (!(error instanceof NeedsTopUp)) throw error;
  }
  await automaticTopUp(deps, found.customer_id, key);
  try {
    return await attempt(deps, found.id, vendorId, request, false);
  } catch (error) {
    if (error instanceof Refused) throw error.error;
    throw error;
  }
}

async function attempt(
  deps: BrokerDeps,
  connectionId: string,
  vendorId: string,
  request: AllowanceRequest,
  topUpPossible: boolean,
): Promise<AllowanceResponse> {
  const outcome = await withHashWork(deps.hasher, (work) =>
    deps.db.transaction().execute(async (trx): Promise<AllowanceResponse | Refused> => {
      const now = deps.clock.now();
      const first = await connectionById(trx, connectionId);
      if (!first) throw revoked();
      const settings = await lockCustomer(trx, deps.engine, first.customer_id);
      // Read again under the customer's lock: a revoke that committed meanwhile is seen.
      const connection = await connectionById(trx, connectionId);
      if (!connection || connection.revoked_at !== null || connection.chain_id === null) throw revoked();

      if (request.chainId !== connection.chain_id) {
        const other = await trx
          .selectFrom('chains')
          .select('connection_id')
          .where('chain_id', '=', request.chainId)
          .executeTakeFirst();
        if (other?.connection_id !== connection.id) {
          throw new ProtocolError('conflict', 'this chain does not belong to the connection');
        }
        // The connection moved on (this is a repeat, or a request that lost the race): the current allowance.
        const current = await loadChainState(trx, deps.engine, connection.chain_id);
        const grant = current ? await latestGrant(trx, connection.chain_id) : undefined;
        const epoch = current?.epochs.get(current.chain.current_epoch);
        if (!current || !grant || epoch?.vendor_id !== vendorId) throw revoked();
        return {
          chainId: current.chain.chain_id,
          touchstone: JSON.parse(current.chain.touchstone) as Touchstone,
          holder: JSON.parse(epoch.holder) as HolderCertificate,
          allowance: allowanceOn(work, current, grant.allowance_index),
          balance: await netPayBalance(trx, connection.customer_id),
          limits: { autoPayMaxMinor: Number(settings.auto_pay_max_minor) },
        };
      }

      const state = await loadChainState(trx, deps.engine, connection.chain_id);
      if (!state) throw new Error('a connection names a missing chain');
      const epoch = state.epochs.get(request.epoch);
      if (!epoch || epoch.vendor_id !== vendorId || request.epoch !== state.chain.current_epoch) {
        throw new ProtocolError('not_holder', `the caller does not hold epoch ${request.epoch} of this chain`);
      }
      const grant = await latestGrant(trx, state.chain.chain_id);
      const allowed = grant?.allowance_index ?? 0;
      if (request.spent.index > allowed) {
        throw new ProtocolError(
          'invalid_payword',
          `spent index ${request.spent.index} is beyond the allowance ${allowed}`,
        );
      }
      if (!pointOnChain(work, state, request.spent)) {
        throw new ProtocolError('invalid_payword', 'the spent payword does not verify against the chain');
      }
      if (state.chain.status === 'active' && request.spent.index > (epoch.checkpoint_index ?? -1)) {
        // Like a checkpoint, without renewing the lease: the site's own word on how far it spent.
        await updateEpoch(trx, state, epoch, {
          checkpoint_index: request.spent.index,
          checkpoint_payword: request.spent.payword,
        });
      }
      await recordNotes(trx, request.notes, {
        chainId: state.chain.chain_id,
        connectionId: connection.id,
        customerId: connection.customer_id,
        vendorId,
        spentIndex: request.spent.index,
        now: rfc3339(now),
      });
      const result: AllowanceOutcome = await nextAllowance(deps, trx, {
        connection,
        settings,
        state,
        spent: highestKnownPoint(state),
        topUpPossible,
        work,
      });
      if (result.kind === 'top_up') throw new NeedsTopUp();
      if (result.kind === 'refused') {
        return new Refused(
          new ProtocolError(result.code, result.detail, {
            brokerUrl: `${deps.config.publicUrl}${result.code === 'limit_reached' ? '/sites' : '/coins'}`,
          }),
        );
      }
      return {
        chainId: result.state.chain.chain_id,
        touchstone: JSON.parse(result.state.chain.touchstone) as Touchstone,
        ...(result.claim ? { holder: result.claim.holder } : {}),
        allowance: result.allowance,
        balance: result.balance,
        limits: result.limits,
      };
    }),
  );
  if (outcome instanceof Refused) throw outcome;
  return outcome;
}
