import type { Allowance, ClaimResponse, ConnectionLimits } from '@netpay/protocol';
import { rfc3339 } from '@netpay/service-kit';
import { capUsage, latestGrant, recordGrant, recordReturn } from './allowance-store.ts';
import { capLeft, decideAllowance } from './allowances.ts';
import { netPayBalance } from './balance.ts';
import { type ChainState, highestKnownIndex, loadChainState, type Point } from './chain-state.ts';
import { claimInTransaction } from './claim.ts';
import {
  allowanceOn,
  type ConnectionRow,
  chainUsable,
  finishConnectionChain,
  fundConnectionChain,
  returnUnallowedTail,
  usableLength,
} from './connection-chain.ts';
import type { CustomerSettings } from './customer-settings.ts';
import type { BrokerDeps } from './deps.ts';
import type { HashWork } from './hash-work.ts';
import { customerAccountBalance } from './ledger-store.ts';
import type { BrokerTx } from './schema.ts';

/** Where a connection stands when it asks for its next allowance; the customer's and the chain's locks are held. */
export interface AllowanceContext {
  connection: ConnectionRow;
  settings: CustomerSettings;
  /** The connection's current chain, locked; undefined before its first chain. */
  state: ChainState | undefined;
  /** The verified point spent on it (the highest the broker knows). */
  spent: Point;
  /** Whether the automatic top-up may still be tried for this request (once per request). */
  topUpPossible: boolean;
  /** Derives the paywords the answer hands out (a new chain's anchor, w_a) inline or in the pool when long. */
  work: HashWork;
}

export type AllowanceOutcome =
  | {
      kind: 'granted';
      state: ChainState;
      allowance: Allowance;
      /** The claim of a new chain for the vendor, when the connection moved to one. */
      claim?: ClaimResponse;
      balance: number;
      limits: ConnectionLimits;
    }
  | { kind: 'top_up' }
  | { kind: 'refused'; code: 'limit_reached' | 'balance_exhausted'; detail: string };

/**
 * The next allowance of a connection (§7 v1.1), inside the caller's transaction: decides with `decideAllowance`
 * and writes what it decided: a grant on the current chain, or the move to a new chain funded from the balance
 * (the old one ended at `spent`, its rest back in the balance) and claimed for the vendor. The answer's balance
 * is the customer's NetPay balance after it.
 */
export async function nextAllowance(deps: BrokerDeps, trx: BrokerTx, ctx: AllowanceContext): Promise<AllowanceOutcome> {
  const { connection, settings, state, spent } = ctx;
  const now = deps.clock.now();
  const at = rfc3339(now);
  const open = state !== undefined && state.chain.status === 'active';
  const latest = open ? await latestGrant(trx, state.chain.chain_id) : undefined;
  const allowance = Math.max(latest?.allowance_index ?? spent.index, spent.index);
  const usage = await capUsage(trx, connection.id, connection.customer_id, now);
  const cap = capLeft(
    { siteCapMinor: Number(connection.site_cap_minor), dailyCapMinor: Number(settings.daily_cap_minor) },
    usage,
  );
  const length = open ? usableLength(state.chain) : 0;
  const usable = open && chainUsable(state, now);
  let accountMinor = await customerAccountBalance(trx, connection.customer_id);
  const full = open ? Math.floor(deps.config.allowanceMaxMinor / state.chain.unit) : 0;
  if (accountMinor < deps.config.connectionBlockMinor && (!usable || length - spent.index < full)) {
    // This connection may need a new chain: the balance also counts what the customer's other sites' chains
    // hold beyond their allowances, so that part comes back to the account first.
    accountMinor += await returnOtherTails(deps, trx, connection.customer_id, state?.chain.chain_id);
  }
  const decision = decideAllowance({
    chain: open ? { length, unit: state.chain.unit, usable } : null,
    spent: open ? spent.index : 0,
    allowance: open ? allowance : 0,
    allowanceMaxMinor: deps.config.allowanceMaxMinor,
    capLeftMinor: cap.leftMinor,
    capKind: cap.kind,
    accountMinor,
    blockMinor: deps.config.connectionBlockMinor,
    topUpPossible: ctx.topUpPossible,
  });
  const limits: ConnectionLimits = { autoPayMaxMinor: Number(settings.auto_pay_max_minor) };
  const grantRow = (chain: ChainState, index: number, from: number, spentIndex: number) =>
    recordGrant(trx, {
      connection_id: connection.id,
      customer_id: connection.customer_id,
      chain_id: chain.chain.chain_id,
      spent_index: spentIndex,
      allowance_index: index,
      amount: (index - from) * chain.chain.unit,
      expires_at: chain.chain.expires_at,
      created_at: at,
    });

  switch (decision.kind) {
    case 'extend': {
      if (!open) throw new Error('extend without a chain');
      await grantRow(state, decision.index, allowance, spent.index);
      return granted(state, decision.index);
    }
    case 'keep': {
      if (!open) throw new Error('keep without a chain');
      return granted(state, allowance);
    }
    case 'switch': {
      if (open) {
        const end = await finishConnectionChain(deps, trx, state);
        await recordReturn(
          trx,
          {
            connectionId: connection.id,
            customerId: connection.customer_id,
            chainId: state.chain.chain_id,
            spentIndex: end,
            at,
          },
          state.chain.unit,
        );
      }
      const fresh = await fundConnectionChain(deps, trx, ctx.work, connection, decision.blockMinor);
      const { response } = await claimInTransaction(deps, trx, fresh, connection.vendor_id, { internal: true });
      await grantRow(fresh, decision.index, 0, 0);
      return { ...(await granted(fresh, decision.index)), claim: response };
    }
    case 'top_up':
      return { kind: 'top_up' };
    case 'limit_reached':
      return {
        kind: 'refused',
        code: 'limit_reached',
        detail:
          decision.cap === 'site'
            ? "the customer's monthly limit for this site is reached"
            : "the customer's daily limit across sites is reached",
      };
    case 'balance_exhausted':
      return { kind: 'refused', code: 'balance_exhausted', detail: "the customer's NetPay balance is used up" };
  }

  async function granted(chain: ChainState, index: number): Promise<Extract<AllowanceOutcome, { kind: 'granted' }>> {
    return {
      kind: 'granted',
      state: chain,
      allowance: allowanceOn(ctx.work, chain, index),
      balance: await netPayBalance(trx, connection.customer_id),
      limits,
    };
  }
}

/**
 * Gives the unallowed tails of the customer's other open connection chains back to the account (each locked,
 * in chainId order, after the customer's lock); the total given back.
 */
async function returnOtherTails(
  deps: BrokerDeps,
  trx: BrokerTx,
  customerId: string,
  exceptChainId: string | undefined,
): Promise<number> {
  const others = await trx
    .selectFrom('chains')
    .select('chain_id')
    .where('customer_id', '=', customerId)
    .where('connection_id', 'is not', null)
    .where('status', '=', 'active')
    .where('chain_id', '!=', exceptChainId ?? '')
    .orderBy('chain_id')
    .execute();
  let total = 0;
  for (const { chain_id } of others) {
    const other = await loadChainState(trx, deps.engine, chain_id);
    const grant = other ? await latestGrant(trx, chain_id) : undefined;
    if (!other || !grant) continue;
    total += await returnUnallowedTail(deps, trx, other, Math.max(grant.allowance_index, highestKnownIndex(other)));
  }
  return total;
}
