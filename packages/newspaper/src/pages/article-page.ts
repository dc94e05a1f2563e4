import { formatDate, formatMoney, formatPrice } from '../format.ts';
import { type SafeHtml, html } from '@netpay/service-kit';
import type { Article, Site } from '../site.ts';
import { renderPage, type WalletNote } from './layout.ts';

/** What the reader paid for this page view, from the vendor SDK's `request.netpay`. */
export interface PaymentNote {
  /** Minor units charged by this request (0 for a retry or an article already bought). */
  chargedMinor: number;
  /** Minor units left on the coin after this request (a client-side wallet's coin). */
  balanceMinor: number;
  /** Paid from the reader's NetPay balance through this site (the wallet bar shows the figures), not a coin. */
  fromBalance?: boolean;
}

export interface ArticlePageOptions {
  /** Set when the view was paid for; absent for a free article. */
  payment?: PaymentNote;
  /** The broker's base URL, for the "buy more coins" link. */
  brokerUrl: string;
  /** The reader's server-side wallet, shown in the page's wallet bar. */
  wallet?: WalletNote | null;
}

/** The broker's page where a reader buys coins. */
export function buyCoinsUrl(brokerUrl: string): string {
  return `${brokerUrl.replace(/\/+$/, '')}/coins`;
}

function paymentNotice(site: Site, payment: PaymentNote, brokerUrl: string): SafeHtml {
  if (payment.fromBalance) {
    const said =
      payment.chargedMinor > 0
        ? html`You paid ${formatMoney(payment.chargedMinor, site.currency)} for this article from your NetPay balance.`
        : html`You bought this article before: reading it again is free.`;
    return html`<p class="notice" role="status">${said}</p>`;
  }
  const balance = formatMoney(payment.balanceMinor, site.currency);
  const paid =
    payment.chargedMinor > 0
      ? html`You paid ${formatMoney(payment.chargedMinor, site.currency)} for this article.`
      : html`You have already paid for this article with this coin.`;
  const empty =
    payment.balanceMinor === 0
      ? html` Your coin is now used up: <a href="${buyCoinsUrl(brokerUrl)}">buy another coin from the NetPay broker</a>.`
      : '';
  return html`<p class="notice" role="status">${paid} <strong>${balance}</strong> left on your coin.${empty}</p>`;
}

/**
 * An article in full. When it was paid for, a status note shows what was charged and what is left on the coin.
 *
 * @example
 * renderArticlePage(site, article, { brokerUrl, payment: { chargedMinor: 5, balanceMinor: 95 } });
 */
export function renderArticlePage(site: Site, article: Article, options: ArticlePageOptions): SafeHtml {
  const main = html`<article class="article" aria-labelledby="title">
<p class="kicker">${article.section}</p>
<h1 id="title">${article.title}</h1>
<p class="standfirst">${article.summary}</p>
<p class="meta">By ${article.author} · <time datetime="${article.date}">${formatDate(article.date, site.locale)}</time> · ${formatPrice(article.priceMinor, site.currency)}</p>
${options.payment ? paymentNotice(site, options.payment, options.brokerUrl) : ''}
${article.body.map((p) => html`<p>${p}</p>\n`)}
<p><a href="/">← Back to the front page</a></p>
</article>`;
  return renderPage(site, { title: article.title, main, description: article.summary, wallet: options.wallet });
}
