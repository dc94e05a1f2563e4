import type { CoinSummary } from '@netpay/protocol';
import { type PendingConnect, pendingFields } from './auth-pages.ts';
import type { BuyField, BuyInput, FieldErrors } from './buy-form.ts';
import { html } from '@netpay/service-kit';
import { alertBox, hidden, money, page, type Viewer } from './layout.ts';
import { buyFields } from './wallet-pages.ts';

export interface ConsentState {
  viewer: Viewer;
  pending: PendingConnect;
  /** Broker-made, active coins with units left. */
  coins: CoinSummary[];
  /** The chosen chainId or 'new'. */
  selected?: string;
  buy?: BuyInput;
  buyErrors?: FieldErrors<BuyField>;
  choiceError?: string;
  currency: string;
}

/** §7 consent: "<vendor> asks to use one of your NetPay coins", pick a coin or buy one, then Connect or Cancel. */
export function consentPage(s: ConsentState): string {
  const selected = s.selected ?? s.coins[0]?.chainId ?? 'new';
  const errors = s.buyErrors ?? {};
  const choiceErrorId = 'coin-choice-error';
  const options = s.coins.map((c, i) => {
    const id = `coin-${i}`;
    return html`<div class="choice"><input type="radio" id="${id}" name="coin" value="${c.chainId}"${selected === c.chainId ? html` checked` : ''}>
<label for="${id}">${money(c.remaining, s.currency)} left of ${money(c.value, s.currency)}${c.holder ? html`, last used at ${c.holder}` : ''} <code>${c.chainId.slice(0, 8)}…</code></label></div>`;
  });
  return page({
    title: `Connect ${s.pending.vendorName}`,
    viewer: s.viewer,
    body: html`<h1>${s.pending.vendorName} asks to use one of your NetPay coins</h1>
<p>If you connect, <strong>${s.pending.vendorName}</strong> can spend the coin you pick, a few cents per article,
until it is used up. It will not learn your name or email. You can refund what is left from your wallet at any time.</p>
${alertBox(errors.form)}
<form method="post" action="/connect" class="consent" novalidate>
${hidden('csrf', s.viewer.csrf)}${pendingFields(s.pending)}
<fieldset${s.choiceError ? html` aria-describedby="${choiceErrorId}"` : ''}>
<legend>Which coin may ${s.pending.vendorName} use?</legend>
${s.choiceError ? html`<p class="field-error" id="${choiceErrorId}">${s.choiceError}</p>` : ''}
${s.coins.length === 0 ? html`<p>You have no coins that can be connected yet: buy one here.</p>` : options}
<div class="choice"><input type="radio" id="coin-new" name="coin" value="new"${selected === 'new' ? html` checked` : ''}>
<label for="coin-new">Buy a new coin</label></div>
<div class="card buy-new">
<h2>Buy a new coin</h2>
${buyFields(s.buy, errors, 'new-')}
</div>
</fieldset>
<div class="actions">
<button type="submit" name="action" value="connect">Connect</button>
<button type="submit" name="action" value="cancel" class="secondary">Cancel</button>
</div>
</form>`,
  });
}
