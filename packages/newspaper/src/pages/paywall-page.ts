import { formatDate, formatMoney, formatPrice } from '../format.ts';
import { type SafeHtml, html } from '@netpay/service-kit';
import type { WalletPaywall } from '@netpay/vendor-sdk';
import type { Article, Site } from '../site.ts';
import { buyCoinsUrl } from './article-page.ts';
import { renderPage, type WalletNote } from './layout.ts';

export interface PaywallOptions {
  /** The problem code behind the 402: `payment_required`, `chain_exhausted`, `limit_reached`, … */
  code: string;
  detail?: string;
  brokerUrl: string;
  /** Where a plain browser goes to connect its NetPay balance (§7): the vendor's `/netpay/connect?return_to=…`. */
  connectUrl?: string;
  /** The reader's server-side wallet, shown in the page's wallet bar. */
  wallet?: WalletNote | null;
  /** Why the reader's connected balance did not pay, and what the reader can do (from the vendor SDK). */
  refusal?: WalletPaywall | null;
}

/** Codes after which a client-side wallet's reader needs another coin: the paywall links to the broker. */
const NEEDS_NEW_COIN = new Set(['chain_exhausted', 'chain_expired', 'unknown_chain']);

const REASONS: Record<string, string> = {
  chain_exhausted: 'Your NetPay coin has run out.',
  chain_expired: 'Your NetPay coin has expired.',
  insufficient_amount: 'Your payment did not cover the price of this article.',
  invalid_payword: 'Your payment could not be verified.',
  already_spent: 'That payment was already used.',
  currency_mismatch: 'Your coin is in another currency.',
  unknown_chain: 'Your NetPay coin can no longer be used (it was refunded, or the broker does not know it).',
};

/** "Read for NZ$0.12": the same-site form that pays this story once. */
function payForm(refusal: WalletPaywall, price: string): SafeHtml | string {
  const form = refusal.payForm;
  if (!form) return '';
  return html`<form method="post" action="${form.action}" class="pay-form">
<input type="hidden" name="csrf" value="${form.csrf}">
<input type="hidden" name="return_to" value="${form.returnTo}">
<input type="hidden" name="price" value="${String(form.priceMinor)}">
<button class="button" id="netpay-read" type="submit">Read for ${price}</button>
</form>`;
}

/** What the page says when the reader's connected balance did not pay, and the one thing to do about it. */
function refusalNotice(site: Site, article: Article, options: PaywallOptions, refusal: WalletPaywall): SafeHtml {
  const price = formatPrice(article.priceMinor, site.currency);
  const link = (text: string) => (refusal.brokerUrl ? html` <a href="${refusal.brokerUrl}">${text}</a>.` : '');
  switch (refusal.reason) {
    case 'cross_site':
      return html`<p class="notice" role="status">You came here from another site. Your NetPay balance pays only when you choose to read on ${site.name}.</p>
${payForm(refusal, price)}`;
    case 'confirm': {
      const limit = options.wallet ? formatMoney(options.wallet.autoPayMaxMinor, site.currency) : undefined;
      return html`<p class="notice" role="status">This story costs ${price}${limit ? html`, more than the ${limit} you let sites take without asking` : ''}. Nothing is paid until you say so.</p>
${payForm(refusal, price)}`;
    }
    case 'limit_reached':
      return html`<p class="notice warn" role="alert">You have reached a spending limit you set at NetPay, so ${site.name} cannot take ${price} now.${link('Change your limits at NetPay')}</p>`;
    case 'balance_exhausted':
      return html`<p class="notice warn" role="alert">Your NetPay balance is used up.${link('Add money at NetPay')}</p>`;
    case 'connection_revoked':
      return html`<p class="notice warn" role="alert">${site.name} is no longer connected to your NetPay balance. Connect again to read on.</p>
${options.connectUrl ? html`<p><a class="button" href="${options.connectUrl}">Connect NetPay and pay ${price}</a></p>` : ''}`;
    default:
      return html`<p class="notice warn" role="alert">Your NetPay balance could not pay for this story just now. Please try again in a moment.</p>`;
  }
}

/**
 * The HTML paywall: what the article costs and how to pay. A reader without NetPay here gets the connect button;
 * a connected reader who came from another site, or whose story costs more than the price they let sites take
 * without asking, gets "Read for NZ$0.12" (a form that pays once); a limit, an empty balance or a revoked
 * connection is said in words, with the NetPay page to act on.
 *
 * @example
 * renderPaywallPage(site, article, { code: 'payment_required', brokerUrl: 'http://127.0.0.1:4000', connectUrl });
 */
export function renderPaywallPage(site: Site, article: Article, options: PaywallOptions): SafeHtml {
  const price = formatPrice(article.priceMinor, site.currency);
  const coins = buyCoinsUrl(options.brokerUrl);
  const refusal = options.refusal ?? null;
  let how: SafeHtml;
  if (refusal) {
    how = refusalNotice(site, article, options, refusal);
  } else {
    const reason = REASONS[options.code];
    how = html`${reason ? html`<p class="notice warn" role="alert">${reason}${NEEDS_NEW_COIN.has(options.code) ? html` <a href="${coins}">Buy more coins from the NetPay broker</a>.` : ''}</p>` : ''}
<p>${site.name} takes NetPay: connect your NetPay balance once, and stories cost a few cents each, on any NetPay site. We never learn who you are.</p>
${options.connectUrl ? html`<p><a class="button" href="${options.connectUrl}">Pay ${price} with NetPay</a></p>` : ''}
<p><a ${options.connectUrl ? '' : html`class="button" `}href="${coins}">Get NetPay</a></p>`;
  }
  const main = html`<article class="article" aria-labelledby="title">
<p class="kicker">${article.section}</p>
<h1 id="title">${article.title}</h1>
<p class="standfirst">${article.summary}</p>
<p class="meta">By ${article.author} · <time datetime="${article.date}">${formatDate(article.date, site.locale)}</time></p>
<section class="paywall" aria-labelledby="paywall-title">
<h2 id="paywall-title">Read this story for ${price}</h2>
${how}
</section>
<p><a href="/">← Back to the front page</a></p>
</article>`;
  return renderPage(site, {
    title: `${article.title} (paywall)`,
    main,
    description: article.summary,
    wallet: options.wallet,
  });
}
