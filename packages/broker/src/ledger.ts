import type { Money } from '@netpay/protocol';

/**
 * The broker's double-entry ledger, pure: entries are built and checked here and written by
 * `ledger-store.ts`. Signs: a posting is positive for a debit. `cash` is an asset (debit-normal);
 * `coins_outstanding`, `fees`, `vendor:<id>` and `customer:<id>` are credit-normal (what the broker owes or
 * earned), so their balances are ≤ 0 in good health, except a vendor's after a take-back.
 *
 * Amounts come in as `Money` (the `…Of` builders): never negative, never fractional, one currency per entry.
 * Postings stay signed integers of minor units, because a posting's sign is its side, not an amount.
 */

export const CASH = 'cash';
export const COINS_OUTSTANDING = 'coins_outstanding';
export const FEES = 'fees';

/** The payable account of a vendor. */
export function vendorAccount(vendorId: string): string {
  return `vendor:${vendorId}`;
}

/**
 * A customer's NetPay balance (§7 v1.1): what the broker owes the customer and no chain holds yet. A liability
 * with floor 0: money comes in by top-ups and returned connection chains and goes out into connection chains.
 */
export function customerAccount(customerId: string): string {
  return `customer:${customerId}`;
}

export type AccountKind = 'asset' | 'liability' | 'revenue';

/** The fixed accounts and their floors (on the account's normal balance; null = no floor). */
export const FIXED_ACCOUNTS: ReadonlyArray<{ id: string; kind: AccountKind; floor: number | null }> = [
  { id: CASH, kind: 'asset', floor: 0 },
  { id: COINS_OUTSTANDING, kind: 'liability', floor: 0 },
  { id: FEES, kind: 'revenue', floor: 0 },
];

export type EntryKind = 'purchase' | 'redemption' | 'take_back' | 'refund' | 'payout' | 'top_up';

export interface Posting {
  accountId: string;
  amount: number;
}

export interface LedgerEntry {
  kind: EntryKind;
  reference: string;
  postings: Posting[];
}

/** Throws unless the postings are safe integers on distinct accounts that sum to zero. */
export function assertBalanced(entry: LedgerEntry): void {
  let sum = 0;
  const seen = new Set<string>();
  for (const p of entry.postings) {
    if (!Number.isSafeInteger(p.amount)) throw new Error(`ledger: non-integer posting ${p.amount} on ${p.accountId}`);
    if (seen.has(p.accountId)) throw new Error(`ledger: two postings on ${p.accountId}`);
    seen.add(p.accountId);
    sum += p.amount;
  }
  if (sum !== 0) throw new Error(`ledger: ${entry.kind} ${entry.reference} does not balance (sum ${sum})`);
}

function entry(kind: EntryKind, reference: string, postings: Posting[]): LedgerEntry {
  const e = { kind, reference, postings: postings.filter((p) => p.amount !== 0) };
  assertBalanced(e);
  return e;
}

/** A customer bought a coin by card: the bank holds the cash, the broker owes the coin's value. */
export function purchaseEntryOf(chainId: string, amount: Money): LedgerEntry {
  return entry('purchase', chainId, [
    { accountId: CASH, amount: amount.minor },
    { accountId: COINS_OUTSTANDING, amount: -amount.minor },
  ]);
}

/**
 * A vendor redeemed `gross` of a chain: the coin liability moves to the vendor, less the fee. The vendor is credited `gross − fee`, which throws unless the fee is in the
 * same currency and at most the gross.
 */
export function redemptionEntryOf(reference: string, vendorId: string, gross: Money, fee: Money): LedgerEntry {
  const net = gross.minus(fee);
  return entry('redemption', reference, [
    { accountId: COINS_OUTSTANDING, amount: gross.minor },
    { accountId: FEES, amount: -fee.minor },
    { accountId: vendorAccount(vendorId), amount: -net.minor },
  ]);
}

/** The reverse of (part of) a redemption, so the same fee ≤ gross rule holds. */
export function takeBackEntryOf(reference: string, vendorId: string, gross: Money, fee: Money): LedgerEntry {
  const net = gross.minus(fee);
  return entry('take_back', reference, [
    { accountId: COINS_OUTSTANDING, amount: -gross.minor },
    { accountId: FEES, amount: fee.minor },
    { accountId: vendorAccount(vendorId), amount: net.minor },
  ]);
}

/** The unspent remainder of a chain went back to the card. */
export function refundEntryOf(chainId: string, amount: Money): LedgerEntry {
  return entry('refund', chainId, [
    { accountId: COINS_OUTSTANDING, amount: amount.minor },
    { accountId: CASH, amount: -amount.minor },
  ]);
}

/** The bank paid a vendor what the broker owed it. */
export function payoutEntryOf(payoutId: string, vendorId: string, amount: Money): LedgerEntry {
  return entry('payout', payoutId, [
    { accountId: vendorAccount(vendorId), amount: amount.minor },
    { accountId: CASH, amount: -amount.minor },
  ]);
}

/** Money added to a customer's balance by card: the bank holds the cash, the broker owes the customer. */
export function topUpEntryOf(topUpId: string, customerId: string, amount: Money): LedgerEntry {
  return entry('top_up', topUpId, [
    { accountId: CASH, amount: amount.minor },
    { accountId: customerAccount(customerId), amount: -amount.minor },
  ]);
}

/**
 * A connection chain funded from the customer's balance: the same `purchase` of a chain, paid from the
 * customer's account instead of a card, so the chain's own audit is unchanged.
 */
export function balancePurchaseEntryOf(chainId: string, customerId: string, amount: Money): LedgerEntry {
  return entry('purchase', chainId, [
    { accountId: customerAccount(customerId), amount: amount.minor },
    { accountId: COINS_OUTSTANDING, amount: -amount.minor },
  ]);
}

/** The unspent remainder of a connection chain went back to the customer's balance instead of a card. */
export function balanceRefundEntryOf(chainId: string, customerId: string, amount: Money): LedgerEntry {
  return entry('refund', chainId, [
    { accountId: COINS_OUTSTANDING, amount: amount.minor },
    { accountId: customerAccount(customerId), amount: -amount.minor },
  ]);
}

/** The balance as the account's owner reads it: assets debit-positive, the rest credit-positive. */
export function normalBalance(kind: string, balance: number): number {
  return kind === 'asset' ? balance : -balance;
}
