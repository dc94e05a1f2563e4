import { formatDate, formatPrice } from '../format.ts';
import { type SafeHtml, html } from '@netpay/service-kit';
import type { Article, Site } from '../site.ts';
import { renderPage, type WalletNote } from './layout.ts';

/** The price badge of an article, with a label that reads well to a screen reader; "Bought" once the reader has it. */
export function priceBadge(site: Site, article: Article, bought = false): SafeHtml {
  const price = formatPrice(article.priceMinor, site.currency);
  if (article.priceMinor === 0) return html`<span class="price free">Free</span>`;
  if (bought) {
    return html`<span class="price bought" data-bought="true">Bought<span class="visually-hidden">: yours to read again for free</span></span>`;
  }
  return html`<span class="price"><span class="visually-hidden">Price: </span>${price}</span>`;
}

function story(site: Site, article: Article, bought: boolean): SafeHtml {
  const href = `/articles/${encodeURIComponent(article.id)}`;
  return html`<li>
<article class="story" aria-labelledby="h-${article.id}">
<p class="kicker">${article.section}</p>
<h2 id="h-${article.id}"><a href="${href}">${article.title}</a></h2>
<p class="meta">By ${article.author} · <time datetime="${article.date}">${formatDate(article.date, site.locale)}</time></p>
<p class="summary">${article.summary}</p>
${priceBadge(site, article, bought)}
</article>
</li>`;
}

/**
 * The front page: every article, newest first, with its section, byline, summary and price; articles the reader
 * already bought are marked "Bought".
 *
 * @example
 * renderFrontPage(SITES['daily-planet'], null, new Set(['robot-mower-escape'])).toString();
 */
export function renderFrontPage(
  site: Site,
  wallet?: WalletNote | null,
  boughtIds: ReadonlySet<string> = new Set(),
): SafeHtml {
  const articles = [...site.articles].sort((a, b) => b.date.localeCompare(a.date));
  const main = html`<h1 class="visually-hidden">Today's stories</h1>
<p class="meta">Free stories are free. The rest cost a few cents each, paid from your NetPay balance: no subscription, no account with us.</p>
<ul class="stories">
${articles.map((a) => story(site, a, boughtIds.has(a.id)))}
</ul>`;
  return renderPage(site, { title: 'Front page', main, current: 'front', wallet });
}
