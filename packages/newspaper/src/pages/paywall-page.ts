import { formatDate, formatPrice } from '../format.ts';
import { type SafeHtml, html } from '@netpay/service-kit';
import type { Article, Site } from '../site.ts';
import { buyCoinsUrl } from './article-page.ts';
import { renderPage, type WalletNote } from './layout.ts';

export interface PaywallOptions {
  /** The problem code behind the 402: `payment_required`, `chain_exhausted`, `already_spent`, … */
  code: string;
  detail?: string;
  brokerUrl: string;
  /** Where a plain browser goes to attach a server-side wallet (§7): the vendor's `/netpay/connect?return_to=…`. */
  connectUrl?: string;
  /** The reader's server-side wallet, shown in the page's wallet bar. */
  wallet?: WalletNote | null;
}

/** Codes after which the reader needs another coin: the paywall links to the broker to buy more. */
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

/**
 * The HTML paywall: what the article costs and how to pay. When the coin ran out (`chain_exhausted`) it says so
 * and links to the broker's coin page.
 *
 * @example
 * renderPaywallPage(site, article, { code: 'chain_exhausted', brokerUrl: 'http://127.0.0.1:4000' });
 */
export function renderPaywallPage(site: Site, article: Article, options: PaywallOptions): SafeHtml {
  const price = formatPrice(article.priceMinor, site.currency);
  const reason = REASONS[options.code];
  const coins = buyCoinsUrl(options.brokerUrl);
  const main = html`<article class="article" aria-labelledby="title">
<p class="kicker">${article.section}</p>
<h1 id="title">${article.title}</h1>
<p class="standfirst">${article.summary}</p>
<p class="meta">By ${article.author} · <time datetime="${article.date}">${formatDate(article.date, site.locale)}</time></p>
<section class="paywall" aria-labelledby="paywall-title">
<h2 id="paywall-title">Read this story for ${price}</h2>
${reason ? html`<p class="notice warn" role="alert">${reason}${NEEDS_NEW_COIN.has(options.code) ? html` <a href="${coins}">Buy more coins from the NetPay broker</a>.` : ''}</p>` : ''}
<p>${site.name} takes NetPay coins: a coin bought once from the broker pays for stories on any NetPay site, a few cents at a time. We never learn who you are.</p>
${options.connectUrl ? html`<p><a class="button" href="${options.connectUrl}">Pay ${price} with NetPay</a></p>` : ''}
<p><a ${options.connectUrl ? '' : html`class="button" `}href="${coins}">Get a NetPay coin</a></p>
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
