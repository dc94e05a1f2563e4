import {
  MAX_CHAIN_LENGTH,
  PaywordChain,
  type Touchstone,
  b64uDecode,
  b64uEncode,
  findKey,
  verifyTouchstone,
} from '@netpay/protocol';
import { wholeMinor } from '../amount-argument.ts';
import { normalizeBrokerUrl } from '../coin-selection.ts';
import type { PendingPurchase, StoredCoin } from '../coin-store.ts';
import { type CoinView, viewOf } from '../coin-view.ts';
import { moneyText } from '../money-text.ts';
import type { WalletContext } from '../wallet-state.ts';
import { type WalletResult, fail, failed, ok } from '../wallet-result.ts';

export interface Card {
  number: string;
  expiry: string;
  cvc: string;
}

export interface BuyOptions {
  /** The coin's value in minor units; a multiple of `unitMinor`. */
  amountMinor: number;
  /** The value of one payword (default 1). */
  unitMinor?: number;
  card: Card;
}

/** A purchase that was sent but whose coin was not stored (no seed). */
export interface PendingPurchaseView {
  amountMinor: number;
  unitMinor: number;
  createdAt: string;
}

const IDEMPOTENCY_KEY_BYTES = 16;

/**
 * Buys a coin: makes a chain here, sends only its chainId and anchor with the card, checks the touchstone the broker
 * signs (key from discovery; chainId, anchor, length, unit, currency, broker) and stores the coin with its seed.
 *
 * The request (chain and idempotency key) is saved before it is sent. If the answer is lost, buying again with the
 * same amount and unit resends the same request, so the broker charges at most once; a different purchase is
 * refused with `purchase_pending` until then (or until `discardPendingPurchase`).
 *
 * Failures: `no_broker`, `not_logged_in`, `invalid_argument`, `purchase_pending`, `invalid_touchstone`,
 * `network_error`, or the broker's code (`card_declined`, `insufficient_funds`, …).
 */
export async function buy(ctx: WalletContext, options: BuyOptions): Promise<WalletResult<CoinView>> {
  const amount = wholeMinor('amountMinor', options?.amountMinor, 1);
  if (!amount.ok) return failed(amount);
  const unit = wholeMinor('unitMinor', options.unitMinor ?? 1, 1);
  if (!unit.ok) return failed(unit);
  const amountMinor = amount.value;
  const unitMinor = unit.value;
  const session = await ctx.session();
  if (!session.ok) return failed(session);
  const { broker, token } = session.value;
  const client = ctx.client(broker);
  const found = await client.discovery();
  if (!found.ok) return failed(found);
  const discovery = found.value;
  const money = (minor: number) => moneyText(minor, discovery.currency);
  if (amountMinor % unitMinor !== 0) {
    return fail(
      'invalid_argument',
      `the amount ${money(amountMinor)} is not a whole number of units of ${money(unitMinor)}`,
    );
  }
  const length = amountMinor / unitMinor;
  const maxLength = Math.min(discovery.maxChainLength, MAX_CHAIN_LENGTH);
  if (length > maxLength) {
    return fail(
      'invalid_argument',
      `a coin of ${money(amountMinor)} in units of ${money(unitMinor)} would be ${length} paywords long; this broker ` +
        `makes coins of at most ${maxLength} units (${money(maxLength * unitMinor)} at this unit)`,
    );
  }

  const started = await ctx.update((state): WalletResult<PendingPurchase> => {
    const p = state.pendingPurchase;
    if (p) {
      if (normalizeBrokerUrl(p.broker) === broker && p.amountMinor === amountMinor && p.unitMinor === unitMinor) {
        return ok(p);
      }
      return fail(
        'purchase_pending',
        `a purchase of ${money(p.amountMinor)} (unit ${money(p.unitMinor)}) started ${p.createdAt} did not complete: ` +
          'buy that again first, or discard it',
      );
    }
    state.pendingPurchase = {
      idempotencyKey: b64uEncode(ctx.random(IDEMPOTENCY_KEY_BYTES)),
      broker,
      chainId: b64uEncode(ctx.random(16)),
      seed: b64uEncode(ctx.random(32)),
      amountMinor,
      unitMinor,
      createdAt: ctx.nowText(),
    };
    return ok(state.pendingPurchase);
  });
  if (!started.ok) return failed(started);
  const pending = started.value;

  const chain = new PaywordChain(b64uDecode(pending.chainId, 16), b64uDecode(pending.seed, 32), length);
  const bought = await client.buyCoin(token, pending.idempotencyKey, {
    amount: amountMinor,
    unit: unitMinor,
    chainId: pending.chainId,
    anchor: chain.anchorB64,
    payment: { card: { number: options.card.number, expiry: options.card.expiry, cvc: options.card.cvc } },
  });
  if (!bought.ok) {
    // A definite refusal means nothing was bought: forget the request. Anything else (no answer, 5xx, rate limit,
    // the key reused with other card details) leaves it pending, so a retry cannot pay twice.
    const status = bought.error.status;
    const definite =
      status !== undefined && status >= 400 && status < 500 && status !== 408 && status !== 422 && status !== 429;
    if (definite) {
      await ctx.update((state) => {
        if (state.pendingPurchase?.idempotencyKey === pending.idempotencyKey) delete state.pendingPurchase;
      });
    }
    return failed(bought);
  }
  const response = bought.value;

  const touchstone = response.touchstone;
  const problem = touchstoneProblem(touchstone, ctx.clock.now().getTime(), {
    chainId: pending.chainId,
    anchor: chain.anchorB64,
    length,
    unitMinor,
    currency: discovery.currency,
    broker: discovery.broker,
    keys: discovery.keys,
  });
  if (problem !== undefined || response.chainId !== pending.chainId) {
    // The request stays pending: the seed is the customer's evidence of what was paid for.
    return fail('invalid_touchstone', problem ?? 'the broker answered for another chainId');
  }

  ctx.keepChain(chain, pending.chainId);
  const now = ctx.nowText();
  const coin: StoredCoin = {
    chainId: pending.chainId,
    seed: pending.seed,
    length,
    unitMinor,
    currency: touchstone.currency,
    broker: touchstone.broker,
    touchstone,
    spentIndex: 0,
    status: 'active',
    purchasedAt: now,
  };
  await ctx.update((state) => {
    if (!state.coins.some((c) => c.chainId === coin.chainId)) {
      state.coins.push(coin);
      ctx.entry(state, { kind: 'purchase', at: now, chainId: coin.chainId, amountMinor, currency: coin.currency });
    }
    if (state.pendingPurchase?.idempotencyKey === pending.idempotencyKey) delete state.pendingPurchase;
  });
  return ok(viewOf(coin, ctx.clock.now().getTime()));
}

/** The purchase that was sent but not completed, if any (no seed). */
export async function pendingPurchase(ctx: WalletContext): Promise<WalletResult<PendingPurchaseView | undefined>> {
  return ok(
    await ctx.read((state) => {
      const p = state.pendingPurchase;
      return p && { amountMinor: p.amountMinor, unitMinor: p.unitMinor, createdAt: p.createdAt };
    }),
  );
}

/** Forgets an incomplete purchase. If the broker did charge for it, that coin is lost to this wallet. */
export async function discardPendingPurchase(ctx: WalletContext): Promise<WalletResult<void>> {
  await ctx.update((state) => {
    delete state.pendingPurchase;
  });
  return ok(undefined);
}

/** What is wrong with a touchstone the broker signed for this purchase, or undefined when it is the one asked for. */
function touchstoneProblem(
  t: Touchstone,
  nowMs: number,
  want: {
    chainId: string;
    anchor: string;
    length: number;
    unitMinor: number;
    currency: string;
    broker: string;
    keys: { keyId: string; alg: string; publicKey: string }[];
  },
): string | undefined {
  const key = findKey(want.keys, t.keyId);
  if (!key) return `unknown broker key ${t.keyId}`;
  if (!verifyTouchstone(t, key)) return 'the touchstone signature does not verify';
  if (t.chainId !== want.chainId) return 'the touchstone is for another chain';
  if (t.anchor !== want.anchor) return 'the touchstone anchor is not the chain’s';
  if (t.length !== want.length) return `the touchstone length ${t.length} is not ${want.length}`;
  if (t.unit !== want.unitMinor) {
    return `the touchstone unit ${moneyText(t.unit, t.currency)} is not ${moneyText(want.unitMinor, want.currency)}`;
  }
  if (t.currency !== want.currency) return `the touchstone currency ${t.currency} is not ${want.currency}`;
  if (normalizeBrokerUrl(t.broker) !== normalizeBrokerUrl(want.broker)) return 'the touchstone names another broker';
  if (!(Date.parse(t.expiresAt) > nowMs)) return 'the touchstone has already expired';
  return undefined;
}
