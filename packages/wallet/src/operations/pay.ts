import {
  type WwwAuthenticateParams,
  formatAuthorization,
  isNetPayAuthorization,
  parseReceipt,
  pickNetPayChallenge,
} from '@netpay/protocol';
import { wholeMinor } from '../amount-argument.ts';
import { selectCoin, unitsFor } from '../coin-selection.ts';
import type { Entitlement, PaymentStatus, StoredCoin, StoredCoinStatus } from '../coin-store.ts';
import { findEntitlement, forgetEntitlement, rememberEntitlement } from '../entitlement-store.ts';
import { peekProblem } from '../http-json.ts';
import { moneyText } from '../money-text.ts';
import type { WalletContext } from '../wallet-state.ts';
import { WalletError } from '../wallet-error.ts';
import { type WalletResult, fail, failed, ok } from '../wallet-result.ts';

export interface PayOptions {
  /** Refuse (`price_too_high`) a price above this. Overrides the wallet's default. */
  maxPriceMinor?: number;
  /** Refuse (`budget_exceeded`) a payment that takes the wallet's total spent in this currency above this.
   * Overrides the wallet's default. */
  budgetMinor?: number;
}

/** One payment attempt made by `fetchWithPayment`. */
export interface PaymentAttempt {
  realm: string;
  url: string;
  chainId: string;
  index: number;
  amountMinor: number;
  currency: string;
  status: PaymentStatus;
  /** HTTP status of the vendor's answer. */
  httpStatus?: number;
  /** Problem code of a refused attempt. */
  code?: string;
  /** From the vendor's `NetPay-Receipt`. */
  receipt?: { index: number; balanceMinor: number };
}

/** A re-read of a bought URL: the point that bought it, presented again, and what the vendor made of it. */
export interface EntitlementUse {
  url: string;
  realm: string;
  chainId: string;
  index: number;
  /** What the point cost when it bought the URL (nothing more is paid for it). */
  amountMinor: number;
  currency: string;
  /** `served`: the vendor served the URL free; `refused`: it did not, and the wallet paid as for a first read. */
  status: 'served' | 'refused';
  httpStatus: number;
  /** Problem code of a refusal. */
  code?: string;
  /** From the vendor's `NetPay-Receipt` of a served re-read. */
  receipt?: { index: number; balanceMinor: number };
}

export interface PaidFetchResult {
  response: Response;
  /** The challenge, when an answer was a NetPay 402. */
  challenge?: WwwAuthenticateParams;
  /** Every payment attempt, in order; the last one with status `paid` is the one that was served. */
  payments: PaymentAttempt[];
  /** Set when the URL had been bought before and its point was presented first. */
  entitlement?: EntitlementUse;
}

const MAX_PAY_ATTEMPTS = 16;

/** Refusals after which another coin (or the same coin from a corrected index) may still pay. */
const RETRYABLE = new Set([
  'already_spent',
  'chain_exhausted',
  'chain_expired',
  'invalid_payword',
  'insufficient_amount',
  'currency_mismatch',
  'unknown_chain',
  'too_far_ahead',
  'broker_unavailable',
  'previous_holder_unavailable',
]);

/**
 * `fetch` that pays NetPay challenges, and never pays twice for what it owns.
 *
 * A GET of a URL this wallet bought before first presents the point that bought it (PROTOCOL §4: the vendor serves
 * a retry of the last payment for a resource, and the chain's entitlements, free); only if the vendor answers 402
 * does the wallet pay. Answers other than a NetPay 402 (including 402s of other schemes) are returned as they are. A
 * NetPay 402 is paid with a coin of the same broker and currency and the request repeated with
 * `Authorization: NetPay …`; the vendor's final answer is returned. When every usable coin was refused (a 402 or
 * 503 problem), the last refusal is returned.
 *
 * Failures decided by the wallet send nothing: `price_too_high`, `budget_exceeded`, `no_suitable_coin` (no coin
 * could even be tried), `invalid_challenge`, `invalid_argument`. A request whose payment was sent but not answered
 * is `network_error` (the units count as spent). The request body must be replayable (string, ArrayBuffer, Blob,
 * FormData, URLSearchParams), since it is sent again.
 */
export async function fetchWithPayment(
  ctx: WalletContext,
  input: string | URL,
  init?: RequestInit,
  options: PayOptions = {},
): Promise<WalletResult<PaidFetchResult>> {
  const maxPrice = limit(ctx, 'maxPriceMinor', options.maxPriceMinor);
  if (!maxPrice.ok) return failed(maxPrice);
  const budget = limit(ctx, 'budgetMinor', options.budgetMinor);
  if (!budget.ok) return failed(budget);
  const maxPriceMinor = maxPrice.value;
  const budgetMinor = budget.value;

  const isGet = (init?.method ?? 'GET').toUpperCase() === 'GET';
  const owned = isGet ? await ctx.read((state) => findEntitlement(state, input)) : undefined;
  let entitlement: EntitlementUse | undefined;
  let first: Response;
  if (owned) {
    const reread = await presentEntitlement(ctx, owned, init);
    if (!reread.ok) return failed(reread);
    entitlement = reread.value.use;
    if (entitlement.status === 'served') return ok({ response: reread.value.response, payments: [], entitlement });
    if (reread.value.challenge) {
      first = reread.value.response;
    } else {
      // Not a NetPay 402 (a vendor that lost the chain, a 503, …): ask as for a first read.
      await reread.value.response.body?.cancel().catch(() => {});
      const sent = await send(ctx, input, init);
      if (!sent.ok) return failed(sent);
      first = sent.value;
    }
  } else {
    const sent = await send(ctx, input, init);
    if (!sent.ok) return failed(sent);
    first = sent.value;
  }
  const withUse = (result: PaidFetchResult): PaidFetchResult => (entitlement ? { ...result, entitlement } : result);

  const offer = offerOf(first);
  if (offer.kind === 'other') return ok(withUse({ response: first, payments: [] }));
  await first.body?.cancel().catch(() => {});
  if (offer.kind === 'malformed') {
    return fail('invalid_challenge', `the vendor's challenge is malformed: ${offer.cause.message}`, {
      cause: offer.cause,
    });
  }
  const { challenge } = offer;
  if (challenge.price <= 0) return fail('invalid_challenge', 'the vendor asked for a price that is not positive');
  const money = (minor: number) => moneyText(minor, challenge.currency);
  if (maxPriceMinor !== undefined && challenge.price > maxPriceMinor) {
    return fail(
      'price_too_high',
      `the price ${money(challenge.price)} is above the limit of ${money(maxPriceMinor)} per request`,
      { status: 402 },
    );
  }
  const overBudget = budgetProblem(ctx, challenge, budgetMinor);
  if (overBudget !== undefined) return fail('budget_exceeded', overBudget, { status: 402 });

  const target = first.url || String(input);
  const payments: PaymentAttempt[] = [];
  const exclude = new Set<string>();
  const resynced = new Set<string>();
  /** Per coin, the vendor's last index to pay from once instead of spentIndex (after too_far_ahead). */
  const resumeFrom = new Map<string, number>();
  const resumed = new Set<string>();
  let last: Response | undefined;

  for (let attempt = 0; attempt < MAX_PAY_ATTEMPTS; attempt++) {
    const reserved = await reserve(ctx, challenge, target, exclude, budgetMinor, resumeFrom);
    if (reserved.kind === 'none') break;
    if (reserved.kind === 'over-budget') {
      await last?.body?.cancel().catch(() => {});
      return fail('budget_exceeded', reserved.message, { status: 402 });
    }
    const { coin, index, payword, entryId } = reserved;
    const payment: PaymentAttempt = {
      realm: challenge.realm,
      url: target,
      chainId: coin.chainId,
      index,
      amountMinor: challenge.price,
      currency: challenge.currency,
      status: 'pending',
    };
    payments.push(payment);

    const headers = new Headers(init?.headers);
    headers.set('authorization', formatAuthorization({ chain: coin.chainId, index, payword }));
    const sent = await send(ctx, target, { ...init, headers });
    if (!sent.ok) {
      payment.status = 'unknown';
      await mark(ctx, entryId, 'unknown');
      await last?.body?.cancel().catch(() => {});
      return failed(sent);
    }
    const res = sent.value;
    payment.httpStatus = res.status;

    if (res.status === 402 || res.status === 503) {
      const problem = await peekProblem(res);
      const code = typeof problem?.code === 'string' ? problem.code : undefined;
      payment.status = 'refused';
      if (code !== undefined) payment.code = code;
      await mark(ctx, entryId, 'refused', code);
      if (code === undefined || !RETRYABLE.has(code)) {
        await last?.body?.cancel().catch(() => {});
        return ok(withUse({ response: res, challenge, payments }));
      }
      await last?.body?.cancel().catch(() => {});
      last = res;
      if (code === 'already_spent') {
        const lastIndex = problem?.lastIndex;
        const valid = typeof lastIndex === 'number' && Number.isSafeInteger(lastIndex) && lastIndex >= 0;
        if (
          valid &&
          lastIndex <= coin.length &&
          !resynced.has(coin.chainId) &&
          followable(ctx, challenge, coin.unitMinor, lastIndex - index, { maxPriceMinor, budgetMinor })
        ) {
          // Another holder or copy of this wallet spent further: start above what the vendor knows, once.
          resynced.add(coin.chainId);
          await raiseSpentIndex(ctx, coin.chainId, lastIndex);
          continue;
        }
        exclude.add(coin.chainId);
        continue;
      }
      if (code === 'too_far_ahead') {
        const units = unitsFor(coin, challenge.price) as number;
        if (!resumed.has(coin.chainId) && resumable(problem?.lastIndex, index, units)) {
          // The vendor is behind this wallet (spent elsewhere, or answers that never came back): pay the price
          // from where the vendor is, once per coin. That payword is at or below the one just sent, so nothing
          // is revealed beyond what the wallet already spent.
          resumed.add(coin.chainId);
          resumeFrom.set(coin.chainId, problem?.lastIndex as number);
          continue;
        }
        exclude.add(coin.chainId);
        continue;
      }
      if (code === 'chain_exhausted') await setStatus(ctx, coin.chainId, 'exhausted');
      if (code === 'chain_expired') await setStatus(ctx, coin.chainId, 'expired');
      exclude.add(coin.chainId);
      continue;
    }

    if (!res.ok) {
      // 400 means the vendor rejected the request before charging; anything else leaves the outcome unknown.
      payment.status = res.status >= 400 && res.status < 500 ? 'refused' : 'unknown';
      await mark(ctx, entryId, payment.status);
      await last?.body?.cancel().catch(() => {});
      return ok(withUse({ response: res, challenge, payments }));
    }

    payment.status = 'paid';
    const receipt = receiptOf(res, coin.chainId);
    if (receipt) payment.receipt = receipt;
    await ctx.update((state) => {
      const stored = state.coins.find((c) => c.chainId === coin.chainId);
      if (stored && receipt && receipt.index <= stored.length) {
        stored.spentIndex = Math.max(stored.spentIndex, receipt.index);
      }
      if (stored) stored.lastRealm = challenge.realm;
      const entry = state.history.find((e) => e.id === entryId);
      if (entry?.kind === 'payment') entry.status = 'paid';
      if (isGet) {
        rememberEntitlement(state, {
          url: String(input),
          paidUrl: target,
          realm: challenge.realm,
          chainId: coin.chainId,
          index,
          payword,
          amountMinor: challenge.price,
          currency: challenge.currency,
          boughtAt: ctx.nowText(),
        });
      }
    });
    await last?.body?.cancel().catch(() => {});
    return ok(withUse({ response: res, challenge, payments }));
  }

  if (last) return ok(withUse({ response: last, challenge, payments }));
  return fail(
    'no_suitable_coin',
    `no usable ${challenge.currency} coin of ${challenge.broker} has ${money(challenge.price)} left (buy one first)`,
    { status: 402 },
  );
}

/** The limit of this call, or the wallet's default when the call sets none. */
function limit(
  ctx: WalletContext,
  name: 'maxPriceMinor' | 'budgetMinor',
  value: number | undefined,
): WalletResult<number | undefined> {
  if (value === undefined) return ok(ctx.limits[name]);
  return wholeMinor(name, value);
}

function budgetProblem(
  ctx: WalletContext,
  challenge: WwwAuthenticateParams,
  budgetMinor: number | undefined,
): string | undefined {
  const spent = ctx.spentMinor.get(challenge.currency) ?? 0;
  if (budgetMinor === undefined || spent + challenge.price <= budgetMinor) return undefined;
  const money = (minor: number) => moneyText(minor, challenge.currency);
  return (
    `paying ${money(challenge.price)} would take what this wallet paid to ${money(spent + challenge.price)}, ` +
    `above its budget of ${money(budgetMinor)}`
  );
}

/**
 * Sends the point that bought `owned.url` again. A served answer is the re-read (nothing was paid); a 402 means the
 * vendor does not (or no longer does) honour it, so the point is forgotten and the 402 is the challenge to pay.
 */
async function presentEntitlement(
  ctx: WalletContext,
  owned: Entitlement,
  init: RequestInit | undefined,
): Promise<WalletResult<{ response: Response; use: EntitlementUse; challenge: boolean }>> {
  const headers = new Headers(init?.headers);
  headers.set(
    'authorization',
    formatAuthorization({ chain: owned.chainId, index: owned.index, payword: owned.payword }),
  );
  const sent = await send(ctx, owned.paidUrl, { ...init, headers });
  if (!sent.ok) return failed(sent);
  const response = sent.value;
  const use: EntitlementUse = {
    url: owned.url,
    realm: owned.realm,
    chainId: owned.chainId,
    index: owned.index,
    amountMinor: owned.amountMinor,
    currency: owned.currency,
    status: response.ok ? 'served' : 'refused',
    httpStatus: response.status,
  };
  if (response.ok) {
    const receipt = receiptOf(response, owned.chainId);
    if (receipt) {
      use.receipt = receipt;
      // The vendor's last index on the chain may be above this wallet's (another copy spent further): learn it.
      await raiseSpentIndex(ctx, owned.chainId, receipt.index);
    }
    return ok({ response, use, challenge: false });
  }
  const problem = await peekProblem(response);
  if (typeof problem?.code === 'string') use.code = problem.code;
  if (response.status === 402) await ctx.update((state) => forgetEntitlement(state, owned.url, owned));
  return ok({ response, use, challenge: offerOf(response).kind !== 'other' });
}

/** What an answer asks this wallet to pay: a NetPay challenge, a malformed one, or nothing of NetPay's. */
type Offer =
  | { kind: 'netpay'; challenge: WwwAuthenticateParams }
  | { kind: 'malformed'; cause: Error }
  | { kind: 'other' };

/**
 * Reads a 402's `WWW-Authenticate`, which may offer several schemes (`Bearer realm="x", NetPay realm="…"`): the
 * NetPay challenge among them is the one to pay. A value too broken to read is the vendor's malformed challenge
 * only if it names NetPay as a scheme somewhere; otherwise it is another scheme's 402, returned as it is.
 */
function offerOf(response: Response): Offer {
  const header = response.headers.get('www-authenticate');
  if (response.status !== 402 || header === null) return { kind: 'other' };
  try {
    const challenge = pickNetPayChallenge(header);
    return challenge === undefined ? { kind: 'other' } : { kind: 'netpay', challenge };
  } catch (cause) {
    const namesNetPay = header.split(',').some((part) => isNetPayAuthorization(part));
    return namesNetPay ? { kind: 'malformed', cause: cause as Error } : { kind: 'other' };
  }
}

function receiptOf(res: Response, chainId: string): { index: number; balanceMinor: number } | undefined {
  const header = res.headers.get('netpay-receipt');
  if (header === null) return undefined;
  try {
    const receipt = parseReceipt(header);
    return receipt.chain === chainId ? { index: receipt.index, balanceMinor: receipt.balance } : undefined;
  } catch {
    // A malformed receipt does not undo a served answer.
    return undefined;
  }
}

async function send(ctx: WalletContext, input: string | URL, init?: RequestInit): Promise<WalletResult<Response>> {
  try {
    return ok(await ctx.fetch(input, init));
  } catch (cause) {
    if (cause instanceof WalletError) return { ok: false, error: cause };
    return fail('network_error', `cannot fetch ${String(input)}: ${String((cause as Error)?.message)}`, { cause });
  }
}

type Reservation =
  | { kind: 'coin'; coin: StoredCoin; index: number; payword: string; entryId: number }
  | { kind: 'none' }
  | { kind: 'over-budget'; message: string };

/**
 * Picks a coin, advances its spentIndex to k = spentIndex + price/unit, counts the price against the budget and logs
 * the payment as pending, all saved before the payword is returned to be sent.
 */
function reserve(
  ctx: WalletContext,
  challenge: WwwAuthenticateParams,
  url: string,
  exclude: Set<string>,
  budgetMinor: number | undefined,
  resumeFrom: Map<string, number>,
): Promise<Reservation> {
  return ctx.update((state): Reservation => {
    const now = ctx.clock.now();
    const coin = selectCoin(
      state.coins,
      { realm: challenge.realm, priceMinor: challenge.price, currency: challenge.currency, broker: challenge.broker },
      now.getTime(),
      exclude,
    );
    if (!coin) return { kind: 'none' };
    const overBudget = budgetProblem(ctx, challenge, budgetMinor);
    if (overBudget !== undefined) return { kind: 'over-budget', message: overBudget };
    const units = unitsFor(coin, challenge.price) as number;
    const from = resumeFrom.get(coin.chainId);
    resumeFrom.delete(coin.chainId);
    const index = (from ?? coin.spentIndex) + units;
    const payword = ctx.chain(coin).b64(index);
    coin.spentIndex = Math.max(coin.spentIndex, index);
    ctx.spentMinor.set(challenge.currency, (ctx.spentMinor.get(challenge.currency) ?? 0) + challenge.price);
    const entryId = ctx.entry(state, {
      kind: 'payment',
      at: ctx.nowText(),
      realm: challenge.realm,
      url,
      amountMinor: challenge.price,
      currency: challenge.currency,
      chainId: coin.chainId,
      index,
      status: 'pending',
    });
    return { kind: 'coin', coin: { ...coin }, index, payword, entryId };
  });
}

async function mark(ctx: WalletContext, entryId: number, status: PaymentStatus, code?: string): Promise<void> {
  await ctx.update((state) => {
    const entry = state.history.find((e) => e.id === entryId);
    if (entry?.kind !== 'payment') return;
    entry.status = status;
    if (code !== undefined) entry.code = code;
  });
}

async function raiseSpentIndex(ctx: WalletContext, chainId: string, index: number): Promise<void> {
  await ctx.update((state) => {
    const coin = state.coins.find((c) => c.chainId === chainId);
    if (coin && index <= coin.length) coin.spentIndex = Math.max(coin.spentIndex, index);
  });
}

async function setStatus(ctx: WalletContext, chainId: string, status: StoredCoinStatus): Promise<void> {
  await ctx.update((state) => {
    const coin = state.coins.find((c) => c.chainId === chainId);
    if (coin && coin.status === 'active') coin.status = status;
  });
}

/**
 * Whether an already_spent answer's `lastIndex` may be paid from. A vendor's claim that the chain is spent `skipped`
 * units beyond the index this wallet just sent is not a proof (any other copy of the wallet spending further looks
 * the same as a lie), and paying from it hands this vendor a payword it can redeem for those units too: a vendor that
 * lied with `lastIndex` = the coin's length took the whole coin for one price. So the skipped units count as paid:
 * they and the price must fit the per-request limit and the budget; with neither set, at most one price is skipped
 * (two requests of this wallet racing on the coin), never more.
 */
function followable(
  ctx: WalletContext,
  challenge: WwwAuthenticateParams,
  unitMinor: number,
  skipped: number,
  limits: { maxPriceMinor: number | undefined; budgetMinor: number | undefined },
): boolean {
  if (skipped <= 0) return true;
  const { maxPriceMinor, budgetMinor } = limits;
  if (maxPriceMinor === undefined && budgetMinor === undefined) return skipped * unitMinor <= challenge.price;
  // Checked as the price of a payment of the skipped units and the price together.
  const taken = { ...challenge, price: skipped * unitMinor + challenge.price };
  if (maxPriceMinor !== undefined && taken.price > maxPriceMinor) return false;
  return budgetProblem(ctx, taken, budgetMinor) === undefined;
}

/**
 * Whether a too_far_ahead answer can be followed: its `lastIndex` is an index, and paying the price from it
 * (lastIndex + units) stays at or below the index just refused, so the wallet never pays more than the price
 * beyond what it had already spent. A vendor that claims to be further is not believed.
 */
function resumable(lastIndex: unknown, refusedIndex: number, units: number): lastIndex is number {
  return (
    typeof lastIndex === 'number' &&
    Number.isSafeInteger(lastIndex) &&
    lastIndex >= 0 &&
    lastIndex + units <= refusedIndex
  );
}
