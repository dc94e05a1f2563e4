import { type ConnectionGrantResponse, ProtocolError } from '@netpay/protocol';
import { hashToken } from '@netpay/service-kit';
import { type AllowanceOutcome, nextAllowance } from './allowance-grant.ts';
import { highestKnownPoint, loadChainState } from './chain-state.ts';
import { claimInTransaction } from './claim.ts';
import { consumeConnectCode } from './connect-codes.ts';
import { chainUsable } from './connection-chain.ts';
import { connectWithFreshToken } from './connections.ts';
import { ensureCustomerSettings, lockCustomer } from './customer-settings.ts';
import type { BrokerDeps } from './deps.ts';
import { withHashWork } from './hash-work.ts';
import { automaticTopUp } from './top-up.ts';

/** The transaction found that the balance needs the automatic top-up; it rolled back and is tried once more. */
class NeedsTopUp {
  constructor(readonly customerId: string) {}
}

/**
 * §7 v1.1 `POST {api}/wallet-grants/{code}`: in one transaction, consumes the code, makes (or keeps) the
 * customer's connection to the calling site with a fresh refresh token, claims the connection's chain for the
 * site (a new chain funded from the balance if it has none or it cannot carry a full allowance), and grants the
 * first allowance. The answer carries w_a, never a seed, and nothing that names the customer. When the balance
 * is short and the customer set up an automatic top-up, the transaction rolls back (the code is unused again),
 * the saved card is charged once for this code, and the exchange runs again.
 */
export async function exchangeConnectionGrant(
  deps: BrokerDeps,
  vendorId: string,
  code: string,
): Promise<ConnectionGrantResponse> {
  try {
    return await attempt(deps, vendorId, code, true);
  } catch (error) {
    if (!(error instanceof NeedsTopUp)) throw error;
    await automaticTopUp(deps, error.customerId, `grant-${hashToken(code).slice(0, 32)}`);
    return attempt(deps, vendorId, code, false);
  }
}

async function attempt(
  deps: BrokerDeps,
  vendorId: string,
  code: string,
  topUpPossible: boolean,
): Promise<ConnectionGrantResponse> {
  return withHashWork(deps.hasher, (work) =>
    deps.db.transaction().execute(async (trx) => {
      const now = deps.clock.now();
      const { customerId } = await consumeConnectCode(trx, vendorId, code, now);
      await ensureCustomerSettings(trx, customerId, now);
      const settings = await lockCustomer(trx, deps.engine, customerId);
      const { connection, refreshToken } = await connectWithFreshToken(trx, customerId, vendorId, now);
      const state = connection.chain_id ? await loadChainState(trx, deps.engine, connection.chain_id) : undefined;
      // The site's own chain, claimed again by it (its current epoch: an internal claim needs no proof).
      const claim =
        state && chainUsable(state, now)
          ? (await claimInTransaction(deps, trx, state, vendorId, { internal: true })).response
          : undefined;
      const outcome: AllowanceOutcome = await nextAllowance(deps, trx, {
        connection,
        settings,
        state,
        spent: state ? highestKnownPoint(state) : { index: 0, payword: '' },
        topUpPossible,
        work,
      });
      if (outcome.kind === 'top_up') throw new NeedsTopUp(customerId);
      if (outcome.kind === 'refused') {
        throw new ProtocolError(outcome.code, outcome.detail, {
          brokerUrl: `${deps.config.publicUrl}${outcome.code === 'limit_reached' ? '/sites' : '/coins'}`,
        });
      }
      const claimed = outcome.claim ?? claim;
      if (!claimed) throw new Error('a grant without a claim');
      return {
        chainId: outcome.state.chain.chain_id,
        touchstone: claimed.touchstone,
        holder: claimed.holder,
        previous: claimed.previous,
        start: claimed.start,
        allowance: outcome.allowance,
        refreshToken,
        balance: outcome.balance,
        limits: outcome.limits,
      };
    }),
  );
}
