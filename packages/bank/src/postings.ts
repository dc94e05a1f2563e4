/**
 * The bank's tiny double entry. Each money movement is an entry of postings that sum to zero, so the
 * merchant's available balance is a sum over one account rather than a formula over three tables.
 */

export interface Posting {
  account: string;
  /** Signed minor units: positive credits the account. */
  amount: number;
}

/** Where card money comes from and goes back to. */
export const CARD_NETWORK_ACCOUNT = 'card-network';

/** The account holding a merchant's available balance. */
export function merchantAccount(merchantId: string): string {
  return `merchant:${merchantId}`;
}

/** The account a payout lands in. */
export function payeeAccount(destination: string): string {
  return `payee:${destination}`;
}

/** A captured charge moves money from the card network to the merchant. */
export function chargePostings(merchantId: string, amount: number): Posting[] {
  return balanced([
    { account: CARD_NETWORK_ACCOUNT, amount: -amount },
    { account: merchantAccount(merchantId), amount },
  ]);
}

/** A refund moves money back from the merchant to the card network. */
export function refundPostings(merchantId: string, amount: number): Posting[] {
  return balanced([
    { account: merchantAccount(merchantId), amount: -amount },
    { account: CARD_NETWORK_ACCOUNT, amount },
  ]);
}

/** A payout moves money from the merchant to the payee's account. */
export function payoutPostings(merchantId: string, destination: string, amount: number): Posting[] {
  return balanced([
    { account: merchantAccount(merchantId), amount: -amount },
    { account: payeeAccount(destination), amount },
  ]);
}

// Asserted where written (and the statement checks its sum again where read).
function balanced(postings: Posting[]): Posting[] {
  const sum = postings.reduce((s, p) => s + p.amount, 0);
  if (sum !== 0 || postings.some((p) => !Number.isSafeInteger(p.amount) || p.amount === 0)) {
    throw new Error(`unbalanced entry: ${JSON.stringify(postings)}`);
  }
  return postings;
}
