import type { CoinSummary } from '@netpay/protocol';
import { html, type SafeHtml } from '@netpay/service-kit';
import type { HistoryRow } from '../balance-history.ts';
import type { SiteSummary } from '../balance.ts';
import type { FieldErrors } from './buy-form.ts';
import { alertBox, field, hidden, money, noticeBox, page, shortId, type Viewer } from './layout.ts';
import { type TopUpField, type TopUpInput, topUpFields } from './top-up-form.ts';

export function homePage(): string {
  return page({
    title: 'Welcome',
    body: html`<h1>Pay a few cents per article, anywhere NetPay is taken</h1>
<div class="grid">
<section class="card" aria-labelledby="what">
<h2 id="what">What NetPay is</h2>
<p>Add money once with your card, then read articles at any NetPay newspaper for a few cents each.
No subscription, no account at each site, and the sites never learn who you are.</p>
<p>Connect a site once and it draws small allowances from your one NetPay balance, within the limits you set.
You can disconnect any site at any time; what it has not spent comes back to your balance.</p>
</section>
<section class="card" aria-labelledby="start">
<h2 id="start">Get started</h2>
<p><a href="/register">Create an account</a> or <a href="/login">log in</a> to add money and see your wallet.</p>
</section>
</div>`,
  });
}

export interface WalletState {
  viewer: Viewer;
  currency: string;
  /** The NetPay balance (balance.ts). */
  balance: number;
  /** Live connected sites, for "allowance left at …". */
  sites: SiteSummary[];
  savedCard: { last4: string } | null;
  autoTopUp: { amountMinor: number; ceilingMinor: number; usedThisMonthMinor: number } | null;
  topUp: TopUpInput;
  topUpErrors?: FieldErrors<TopUpField>;
  autoTopUpInput?: { amount: string; ceiling: string };
  autoTopUpErrors?: { amount?: string; ceiling?: string; form?: string };
  /** Coins of client-side wallets (not part of the balance). */
  coins: CoinSummary[];
  notice?: string;
  /** A refund that failed: which coin and why. */
  refundError?: { chainId: string; message: string };
}

function statusLabel(coin: CoinSummary): SafeHtml {
  return html`<span class="status-${coin.status}">${coin.status}</span>`;
}

/** A coin can be refunded while it has units the broker has not seen spent and was not refunded yet. */
export function refundable(coin: CoinSummary): boolean {
  return (coin.status === 'active' || coin.status === 'expired') && coin.spentIndex < coin.length;
}

/** Minor units as a person types them back into a form: 5.00. */
export function dollarsText(minor: number): string {
  return `${Math.floor(minor / 100)}.${String(minor % 100).padStart(2, '0')}`;
}

export function walletPage(s: WalletState): string {
  const sites = s.sites.filter((site) => site.revokedAt === null);
  const allowances = sites.map(
    (site) =>
      html`<li>Allowance left at ${site.name}: <strong>${money(site.allowanceLeftMinor, s.currency)}</strong></li>`,
  );
  const topUpErrors = s.topUpErrors ?? {};
  const autoErrors = s.autoTopUpErrors ?? {};
  const autoInput = s.autoTopUpInput ?? {
    amount: s.autoTopUp ? dollarsText(s.autoTopUp.amountMinor) : '',
    ceiling: s.autoTopUp ? dollarsText(s.autoTopUp.ceilingMinor) : '',
  };
  return page({
    title: 'Your wallet',
    viewer: s.viewer,
    body: html`<h1>Your wallet</h1>
${noticeBox(s.notice)}
${s.refundError && !s.coins.some((c) => c.chainId === s.refundError?.chainId) ? alertBox(s.refundError.message) : ''}
<section class="card" aria-labelledby="balance-heading">
<h2 id="balance-heading">NetPay balance</h2>
<p class="figure" id="netpay-balance">${money(s.balance, s.currency)}</p>
${
  sites.length === 0
    ? html`<p>No site is connected yet. A NetPay site asks you to connect when you open a paid article.</p>`
    : html`<p>Connected sites draw small allowances from it. What a site has been allowed but not spent is not in the
balance until the site spends it or you disconnect it.</p><ul>${allowances}</ul>
<p><a href="/sites">Connected sites and limits</a></p>`
}
</section>
<section class="card" id="add-money" aria-labelledby="add-heading">
<h2 id="add-heading">Add money</h2>
${alertBox(topUpErrors.form)}
<form method="post" action="/top-ups" novalidate>
${hidden('csrf', s.viewer.csrf)}
${topUpFields(s.topUp, topUpErrors, s.savedCard?.last4 ?? null)}
<button type="submit" name="action" value="add">Add money</button>
</form>
<p class="hint">Sandbox: card 4242 4242 4242 4242, any future expiry, any CVC.</p>
</section>
<section class="card" id="auto-top-up" aria-labelledby="auto-heading">
<h2 id="auto-heading">Automatic top-up</h2>
${
  s.savedCard === null
    ? html`<p>Save a card when you add money to let NetPay top up your balance when a site needs more.</p>`
    : html`<p>When a site needs more than your balance holds, NetPay charges your saved card ending ${s.savedCard.last4}
the amount below, at most up to the monthly ceiling.${
        s.autoTopUp
          ? html` This month: ${money(s.autoTopUp.usedThisMonthMinor, s.currency)} of ${money(s.autoTopUp.ceilingMinor, s.currency)}.`
          : html` It is off.`
      }</p>
${alertBox(autoErrors.form)}
<form method="post" action="/auto-top-up" novalidate>
${hidden('csrf', s.viewer.csrf)}
${field({ id: 'auto-amount', name: 'auto_amount', label: 'Top up by (NZ$)', value: autoInput.amount, error: autoErrors.amount, inputmode: 'decimal', maxlength: 12 })}
${field({ id: 'auto-ceiling', name: 'auto_ceiling', label: 'At most per month (NZ$)', value: autoInput.ceiling, error: autoErrors.ceiling, inputmode: 'decimal', maxlength: 12 })}
<div class="actions">
<button type="submit" name="action" value="on">Save automatic top-up</button>
${s.autoTopUp ? html`<button type="submit" name="action" value="off" class="secondary">Turn off</button>` : ''}
</div>
</form>
<form method="post" action="/card/forget">${hidden('csrf', s.viewer.csrf)}
<button type="submit" class="secondary small">Remove the saved card</button></form>`
}
</section>
${coinsSection(s)}`,
  });
}

function coinsSection(s: WalletState): SafeHtml | string {
  if (s.coins.length === 0) return '';
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
  return html`<section aria-labelledby="coins-heading">
<h2 id="coins-heading">Coins (for apps)</h2>
<p>Coins that wallet apps bought with your card. They are not part of your NetPay balance; what a refund pays back
goes to the card.</p>
<div class="table-wrap"><table class="stack">
<caption>Remaining is what the broker has learned from the sites so far: recent spending may not show yet.</caption>
<thead><tr><th scope="col">Coin</th><th scope="col" class="num">Value</th><th scope="col" class="num">Remaining</th><th scope="col">Held by</th><th scope="col">Status</th><th scope="col">Actions</th></tr></thead>
<tbody>${rows}</tbody>
</table></div>
</section>`;
}

function describe(row: HistoryRow, currency: string): SafeHtml | string {
  switch (row.kind) {
    case 'top_up':
      return row.card?.automatic
        ? html`Automatic top-up (card ending ${row.card.last4})`
        : html`Added money (card ending ${row.card?.last4 ?? ''})`;
    case 'allowance':
      return html`Allowance given to ${row.site ?? ''}`;
    case 'returned':
      return html`Unspent allowance back from ${row.site ?? ''}`;
    case 'spend':
      return html`Read “${row.description ?? ''}” at ${row.site ?? ''} (from its allowance)`;
    case 'coin_purchase':
      return html`Bought a coin for apps with your card`;
    case 'coin_spend':
      return html`A coin for apps spent at ${row.site ?? ''}`;
    case 'coin_refund':
      return html`${money(row.amountMinor, currency)} refunded to your card`;
  }
}

function signed(minor: number, currency: string): string {
  return minor > 0 ? `+${money(minor, currency)}` : minor < 0 ? `−${money(-minor, currency)}` : money(0, currency);
}

export function historyPage(viewer: Viewer, rows: HistoryRow[], currency: string): string {
  const lines = rows
    .slice()
    .reverse()
    .map(
      (
        r,
      ) => html`<tr><td data-label="When"><time datetime="${r.at}">${r.at.replace('T', ' ').replace('Z', ' UTC')}</time></td>
<td data-label="What">${describe(r, currency)}</td>
<td data-label="Amount" class="num">${r.effectMinor === 0 ? money(r.amountMinor, currency) : signed(r.effectMinor, currency)}</td>
<td data-label="Balance" class="num">${money(r.balanceMinor, currency)}</td></tr>`,
    );
  return page({
    title: 'History',
    viewer,
    body: html`<h1>History</h1>
${
  rows.length === 0
    ? html`<p>Nothing yet. <a href="/coins#add-money">Add money</a> to start.</p>`
    : html`<div class="table-wrap"><table class="stack">
<caption>Newest first. Balance is your NetPay balance after each line: an allowance given to a site leaves it, what
the site reads is paid from that allowance, and what it did not spend comes back when it stops. Coins for apps are
not part of the balance.</caption>
<thead><tr><th scope="col">When</th><th scope="col">What</th><th scope="col" class="num">Amount</th><th scope="col" class="num">Balance</th></tr></thead>
<tbody>${lines}</tbody></table></div>`
}`,
  });
}
