import type { CoinSummary, HistoryEvent } from '@netpay/protocol';
import type { BuyField, BuyInput, FieldErrors } from './buy-form.ts';
import { html, type SafeHtml } from '@netpay/service-kit';
import { alertBox, field, hidden, money, noticeBox, page, shortId, type Viewer } from './layout.ts';

export function homePage(): string {
  return page({
    title: 'Welcome',
    body: html`<h1>Pay a few cents per article, anywhere NetPay is taken</h1>
<div class="grid">
<section class="card" aria-labelledby="what">
<h2 id="what">What NetPay is</h2>
<p>Buy e-coins once with your card, then read articles at any NetPay newspaper for a few cents each.
No subscription, no account at each site, and the sites never learn who you are.</p>
<p>A coin you start at one newspaper keeps its balance when you move to another; unspent value can be refunded to your card.</p>
</section>
<section class="card" aria-labelledby="start">
<h2 id="start">Get started</h2>
<p><a href="/register">Create an account</a> or <a href="/login">log in</a> to buy coins and see your wallet.</p>
</section>
</div>`,
  });
}

/** The fields of a "buy coins" card form (used on the wallet and inline on the connect page). */
export function buyFields(input: BuyInput | undefined, errors: FieldErrors<BuyField>, prefix = ''): SafeHtml {
  const id = (name: string) => `${prefix}${name}`;
  return html`${hidden('idem', input?.idem ?? '')}
${field({ id: id('amount'), name: 'amount', label: 'Amount in NZ$', value: input?.amount ?? '', error: errors.amount, hint: 'For example 2.00 (one cent per unit).', inputmode: 'decimal', autocomplete: 'off', maxlength: 12 })}
${field({ id: id('card-number'), name: 'card_number', label: 'Card number', value: input?.cardNumber ?? '', error: errors.cardNumber, autocomplete: 'cc-number', inputmode: 'numeric', maxlength: 23 })}
<div class="row">
<div>${field({ id: id('card-expiry'), name: 'card_expiry', label: 'Expiry (MM/YY)', value: input?.expiry ?? '', error: errors.expiry, autocomplete: 'cc-exp', maxlength: 7 })}</div>
<div>${field({ id: id('card-cvc'), name: 'card_cvc', label: 'Security code (CVC)', type: 'password', error: errors.cvc, autocomplete: 'cc-csc', inputmode: 'numeric', maxlength: 4 })}</div>
</div>`;
}

export interface WalletState {
  viewer: Viewer;
  coins: CoinSummary[];
  buy?: BuyInput;
  buyErrors?: FieldErrors<BuyField>;
  notice?: string;
  /** A refund that failed: which coin and why. */
  refundError?: { chainId: string; message: string };
  currency: string;
}

function statusLabel(coin: CoinSummary): SafeHtml {
  return html`<span class="status-${coin.status}">${coin.status}</span>`;
}

/** A coin can be refunded while it has units the broker has not seen spent and was not refunded yet. */
export function refundable(coin: CoinSummary): boolean {
  return (coin.status === 'active' || coin.status === 'expired') && coin.spentIndex < coin.length;
}

export function walletPage(s: WalletState): string {
  const rows = s.coins.map((c) => {
    const error = s.refundError?.chainId === c.chainId ? s.refundError.message : undefined;
    const errorId = `refund-error-${c.chainId}`;
    return html`<tr>
<td data-label="Coin">${shortId(c.chainId)}</td>
<td data-label="Value" class="num">${money(c.value, s.currency)}</td>
<td data-label="Remaining" class="num">${money(c.remaining, s.currency)}</td>
<td data-label="Held by">${c.holder ?? 'not in use'}</td>
<td data-label="Status">${statusLabel(c)}</td>
<td data-label="Actions">${
      refundable(c)
        ? html`<form method="post" action="/coins/${c.chainId}/refund">${hidden('csrf', s.viewer.csrf)}
<button type="submit" class="small secondary" name="refund" value="${c.chainId}" aria-label="Refund the rest of coin ${c.chainId.slice(0, 8)}"${error ? html` aria-describedby="${errorId}"` : ''}>Refund</button></form>`
        : ''
    }${error ? html`<p class="field-error" id="${errorId}">${error}</p>` : ''}</td>
</tr>`;
  });
  const errors = s.buyErrors ?? {};
  return page({
    title: 'Your wallet',
    viewer: s.viewer,
    body: html`<h1>Your wallet</h1>
${noticeBox(s.notice)}
${s.refundError && !s.coins.some((c) => c.chainId === s.refundError?.chainId) ? alertBox(s.refundError.message) : ''}
<section aria-labelledby="coins-heading">
<h2 id="coins-heading">Your coins</h2>
${
  s.coins.length === 0
    ? html`<p>You have no coins yet. Buy one below.</p>`
    : html`<div class="table-wrap"><table class="stack">
<caption>Remaining is what the broker has learned from the sites so far: recent spending may not show yet.</caption>
<thead><tr><th scope="col">Coin</th><th scope="col" class="num">Value</th><th scope="col" class="num">Remaining</th><th scope="col">Held by</th><th scope="col">Status</th><th scope="col">Actions</th></tr></thead>
<tbody>${rows}</tbody>
</table></div>`
}
</section>
<section class="card" aria-labelledby="buy-heading">
<h2 id="buy-heading">Buy coins</h2>
${alertBox(errors.form)}
<form method="post" action="/coins" novalidate>
${hidden('csrf', s.viewer.csrf)}
${buyFields(s.buy, errors)}
<button type="submit" name="action" value="buy">Buy coins</button>
</form>
<p class="hint">Sandbox: card 4242 4242 4242 4242, any future expiry, any CVC.</p>
</section>`,
  });
}

const KIND_LABEL: Record<HistoryEvent['kind'], string> = {
  purchase: 'Bought',
  spend: 'Spent',
  refund: 'Refunded',
};

export function historyPage(viewer: Viewer, events: HistoryEvent[], currency: string): string {
  const rows = events
    .slice()
    .reverse()
    .map(
      (
        e,
      ) => html`<tr><td data-label="When"><time datetime="${e.at}">${e.at.replace('T', ' ').replace('Z', ' UTC')}</time></td>
<td data-label="What">${KIND_LABEL[e.kind]}</td><td data-label="Site">${e.vendorId ?? ''}</td><td data-label="Coin">${shortId(e.chainId)}</td><td data-label="Amount" class="num">${money(e.amount, currency)}</td></tr>`,
    );
  return page({
    title: 'History',
    viewer,
    body: html`<h1>History</h1>
${
  events.length === 0
    ? html`<p>Nothing yet. <a href="/coins">Buy a coin</a> to start.</p>`
    : html`<div class="table-wrap"><table class="stack">
<caption>Purchases, spending by site as the broker learns it (when sites redeem), and refunds; newest first.</caption>
<thead><tr><th scope="col">When</th><th scope="col">What</th><th scope="col">Site</th><th scope="col">Coin</th><th scope="col" class="num">Amount</th></tr></thead>
<tbody>${rows}</tbody></table></div>`
}`,
  });
}
