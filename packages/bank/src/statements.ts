import type { BankDeps } from './deps.ts';
import { payoutsOf, type StatementLine, statementLines, merchantBalance } from './store.ts';

export interface MerchantStatement {
  merchant: string;
  currency: string;
  lines: StatementLine[];
  available: number;
}

/**
 * A merchant's money movements and available balance, read in one snapshot. The balance comes from the
 * postings and the lines from the charge, refund and payout tables: they must agree, and a disagreement is
 * a broken ledger, reported as an internal error rather than shown as a wrong number.
 */
export async function merchantStatement(
  deps: BankDeps,
  merchantId: string,
  currency: string,
): Promise<MerchantStatement> {
  return deps.db
    .transaction()
    .setIsolationLevel('repeatable read')
    .execute(async (trx) => {
      const lines = await statementLines(trx, merchantId, currency);
      const available = await merchantBalance(trx, merchantId, currency);
      const linesTotal = lines.reduce((sum, line) => sum + line.amount, 0);
      if (linesTotal !== available) {
        throw new Error(`ledger mismatch for ${merchantId} ${currency}: lines ${linesTotal}, postings ${available}`);
      }
      return { merchant: merchantId, currency, lines, available };
    });
}

export interface DestinationStatement {
  destination: string;
  currency: string;
  payouts: { id: string; amount: number; createdAt: string }[];
  total: number;
}

/**
 * What a destination account received from this merchant, so a vendor can reconcile its payouts. Scoped to
 * the calling merchant: one merchant never sees another's payouts.
 */
export async function destinationStatement(
  deps: BankDeps,
  merchantId: string,
  destination: string,
  currency: string,
): Promise<DestinationStatement> {
  const payouts = await payoutsOf(deps.db, merchantId, currency, destination);
  return {
    destination,
    currency,
    payouts: payouts.map((p) => ({ id: p.id, amount: p.amount, createdAt: p.created_at })),
    total: payouts.reduce((sum, p) => sum + p.amount, 0),
  };
}
