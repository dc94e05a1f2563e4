import { formatDate, formatPrice } from '../format.ts';
import { type SafeHtml, html } from '@netpay/service-kit';
import type { Article, Site } from '../site.ts';
import { renderPage, type WalletNote } from './layout.ts';

/** The price badge of an article, with a label that reads well to a screen reader. */
export function priceBadge(site: Site, article: Article): SafeHtml {
  const price = formatPrice(article.priceMinor, site.currency);
  return article.priceMinor === 0
    ? html`<span class="price free">Free</span>`
    : html`<span class="price"><span class="visually-hidden">Price: </span>${price}</span>`;
}

function story(site: Site, article: Article): SafeHtml {
  const href = `/articles/${encodeURIComponent(article.id)}`;
  return html`<li>
<article class="story" aria-labelledby="h-${article.id}">
<p class="kicker">${article.section}</p>
<h2 id="h-${article.id}"><a href="${href}">${article.title}</a></h2>
<p class="meta">By ${article.author} · <time datetime="${article.date}">${formatDate(article.date, site.locale)}</time></p>
<p class="summary">${article.summary}</p>
${priceBadge(site, article)}
</article>
</li>`;
}

/**
 * The front page: every article, newest first, with its section, byline, summary and price.
 *
 * @example
 * renderFrontPage(SITES['daily-planet']).toString();
 */
export function renderFrontPage(site: Site, wallet?: WalletNote | null): SafeHtml {
  const articles = [...site.articles].sort((a, b) => b.date.localeCompare(a.date));
  const main = html`<h1 class="visually-hidden">Today's stories</h1>
<p class="meta">Free stories are free. The rest cost a few cents each, paid with a NetPay coin: no subscription, no account with us.</p>
<ul class="stories">
${articles.map((a) => story(site, a))}
</ul>`;
  return renderPage(site, { title: 'Front page', main, current: 'front', wallet });
}
