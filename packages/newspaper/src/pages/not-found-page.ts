import { type SafeHtml, html } from '@netpay/service-kit';
import type { Site } from '../site.ts';
import { renderPage, type WalletNote } from './layout.ts';

/** A 404 page for browsers. */
export function renderNotFoundPage(site: Site, path: string, wallet?: WalletNote | null): SafeHtml {
  const main = html`<h1>Story not found</h1>
<p>There is nothing at <code>${path}</code>. It may have been moved, or never existed.</p>
<p><a href="/">Go to the front page</a></p>`;
  return renderPage(site, { title: 'Not found', main, wallet });
}
