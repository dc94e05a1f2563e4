import { formatMoney, formatTime } from '../format.ts';
import { type SafeHtml, html, raw } from '@netpay/service-kit';
import type { Site, Theme } from '../site.ts';

/**
 * The reader's server-side NetPay wallet (§7 connect) as this site knows it now, shown on every page when the
 * session is connected. Each figure says what it is: what this site may still take before it asks NetPay, and the
 * reader's NetPay balance as NetPay last told this site (with the time, unless NetPay said so for this very page).
 */
export interface WalletNote {
  allowanceLeftMinor: number;
  balanceMinor: number;
  balanceAtMs: number;
  balanceFresh: boolean;
  /** Prices up to this are paid without asking. */
  autoPayMaxMinor: number;
  /** The broker's page to add money, linked when nothing is left. */
  addMoneyUrl?: string;
}

export interface PageOptions {
  /** The document title before the site name. */
  title: string;
  main: SafeHtml;
  description?: string;
  /** Marks the current page in the navigation. */
  current?: 'front' | 'account';
  /** The reader's wallet figures, when the browser session is connected. */
  wallet?: WalletNote | null | undefined;
}

// A tabloid masthead: heavy type reversed out of the accent colour, with a dark navigation bar under it.
const TABLOID_CSS = `
.masthead{background:var(--accent);color:var(--accent-text);border-bottom:6px solid var(--text)}
.masthead .name{font-weight:900;letter-spacing:-.01em}
.masthead .tagline{color:var(--accent-text);font-weight:700}
.nav{background:var(--text);color:var(--bg)}
.nav a{color:var(--bg)}`;

/**
 * The site's stylesheet. Theme values were checked by `parseSite` to hold only characters that colours and
 * font lists need, so they cannot close the style element.
 */
export function siteCss(theme: Theme): string {
  return `:root{--bg:${theme.background};--surface:${theme.surface};--text:${theme.text};--muted:${theme.muted};--accent:${theme.accent};--accent-text:${theme.accentText};--rule:${theme.rule};--link:${theme.link};--body-font:${theme.bodyFont};--heading-font:${theme.headingFont};--ui-font:${theme.uiFont}}
*,*::before,*::after{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--text);font-family:var(--body-font);font-size:1.0625rem;line-height:1.6}
a{color:var(--link)}
a:focus-visible,button:focus-visible{outline:3px solid var(--accent);outline-offset:2px}
.visually-hidden{position:absolute!important;width:1px;height:1px;padding:0;margin:-1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap;border:0}
.skip{position:absolute;left:-9999px;top:0;background:var(--accent);color:var(--accent-text);padding:.5rem 1rem;z-index:10}
.skip:focus{left:0}
.wrap{max-width:68rem;margin:0 auto;padding:0 1rem}
.masthead{border-bottom:4px double var(--rule);padding:1.25rem 0 .75rem;text-align:${theme.mastheadAlign}}
.masthead .name{font-family:var(--heading-font);font-size:clamp(2rem,8vw,4rem);line-height:1.05;margin:0;text-transform:${theme.mastheadCase};letter-spacing:.01em}
.masthead .name a{color:inherit;text-decoration:none}
.masthead .tagline{font-family:var(--ui-font);color:var(--muted);margin:.25rem 0 0;font-size:.95rem}
.nav{font-family:var(--ui-font);background:var(--accent);color:var(--accent-text)}
.nav ul{list-style:none;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:0 1.25rem}
.nav a{color:var(--accent-text);display:inline-block;padding:.6rem 0;font-size:.95rem;text-decoration:none;font-weight:600}
.nav a[aria-current="page"]{text-decoration:underline;text-underline-offset:.3em}
main{padding:1.5rem 0 3rem}
h1,h2,h3{font-family:var(--heading-font);line-height:1.2}
.kicker,.meta,.price,.notice,table,.button,footer{font-family:var(--ui-font)}
.kicker{text-transform:uppercase;letter-spacing:.08em;font-size:.78rem;color:var(--accent);font-weight:700;margin:0}
.meta{color:var(--muted);font-size:.9rem;margin:.25rem 0}
.stories{list-style:none;margin:0;padding:0;display:grid;gap:1.25rem;grid-template-columns:1fr}
@media (min-width:40rem){.stories{grid-template-columns:repeat(2,1fr)}}
@media (min-width:64rem){.stories{grid-template-columns:repeat(3,1fr)}.stories>li:first-child{grid-column:span 2}}
.story{background:var(--surface);border-top:3px solid var(--rule);padding:1rem;height:100%;display:flex;flex-direction:column}
.story h2{margin:.25rem 0 .5rem;font-size:1.35rem}
.story h2 a{color:var(--text);text-decoration:none}
.story h2 a:hover{text-decoration:underline}
.story p.summary{margin:0 0 .75rem;flex:1}
.price{display:inline-block;font-weight:700;font-size:.85rem;padding:.1rem .5rem;border:2px solid var(--accent);color:var(--accent);border-radius:999px;align-self:flex-start}
.price.free{border-color:var(--muted);color:var(--muted)}
.price.bought{border-color:var(--text);background:var(--text);color:var(--bg)}
.wallet .as-of{color:var(--muted)}
.article{max-width:42rem;margin:0 auto}
.article h1{font-size:clamp(1.75rem,5vw,2.6rem);margin:.25rem 0 .5rem}
.article .standfirst{font-size:1.2rem;color:var(--muted);margin:0 0 1rem}
.notice{border-left:6px solid var(--accent);background:var(--surface);padding:.75rem 1rem;margin:1rem 0;font-size:.95rem}
.notice.warn{border-left-color:#b45309}
.wallet{font-family:var(--ui-font);background:var(--surface);border-bottom:1px solid var(--rule);font-size:.95rem}
.wallet p{margin:0;padding:.45rem 0}
.button{display:inline-block;background:var(--accent);color:var(--accent-text);border:0;border-radius:.3rem;padding:.6rem 1.1rem;font-size:1rem;font-weight:700;text-decoration:none;cursor:pointer}
.paywall{max-width:36rem;margin:1rem auto;background:var(--surface);border:2px solid var(--accent);padding:1.25rem}
table{border-collapse:collapse;width:100%;max-width:32rem;background:var(--surface)}
th,td{text-align:left;padding:.5rem .75rem;border-bottom:1px solid var(--rule)}
td.num{text-align:right;font-variant-numeric:tabular-nums}
footer{border-top:1px solid var(--rule);color:var(--muted);font-size:.85rem;padding:1rem 0 2rem}
@media (prefers-reduced-motion:reduce){*{transition:none!important}}${theme.masthead === 'tabloid' ? TABLOID_CSS : ''}`;
}

/**
 * "Allowance left at The Daily Planet: NZ$0.45 · NetPay balance: NZ$4.50 (as of 10:31:05)" under the navigation;
 * a link to add money when both are used up.
 */
export function walletBar(site: Site, wallet: WalletNote): SafeHtml {
  const at = new Date(wallet.balanceAtMs).toISOString();
  const asOf = wallet.balanceFresh
    ? ''
    : html` <span class="as-of">(as of <time datetime="${at}">${formatTime(wallet.balanceAtMs, site.locale)}</time>)</span>`;
  const empty =
    wallet.balanceMinor === 0 && wallet.allowanceLeftMinor === 0 && wallet.addMoneyUrl
      ? html` <a href="${wallet.addMoneyUrl}">Add money at NetPay</a>.`
      : '';
  return html`<div class="wallet" id="netpay-wallet">
<div class="wrap"><p role="status"><span class="figure">Allowance left at ${site.name}: <strong data-netpay-allowance-left="${wallet.allowanceLeftMinor}">${formatMoney(wallet.allowanceLeftMinor, site.currency)}</strong></span> · <span class="figure">NetPay balance: <strong data-netpay-balance="${wallet.balanceMinor}" data-netpay-balance-at="${at}">${formatMoney(wallet.balanceMinor, site.currency)}</strong>${asOf}</span>${empty}</p></div>
</div>
`;
}

/**
 * A whole HTML document in the site's look, with landmarks (banner, navigation, main, contentinfo), a skip
 * link and a viewport meta so it reads well on a phone.
 *
 * @example
 * reply.type('text/html').send(renderPage(site, { title: 'Account', main: html`<h1>Account</h1>` }).toString());
 */
export function renderPage(site: Site, options: PageOptions): SafeHtml {
  const current = (page: PageOptions['current']) => (options.current === page ? raw(' aria-current="page"') : '');
  return html`<!doctype html>
<html lang="${site.locale}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${options.title} · ${site.name}</title>
<meta name="description" content="${options.description ?? site.tagline}">
<style>${raw(siteCss(site.theme))}</style>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="masthead">
<div class="wrap">
<p class="name"><a href="/">${site.name}</a></p>
<p class="tagline">${site.tagline}</p>
</div>
</header>
<nav class="nav" aria-label="Site">
<div class="wrap">
<ul>
<li><a href="/"${current('front')}>Front page</a></li>
<li><a href="/account"${current('account')}>Vendor account</a></li>
<li><a href="/api/articles">JSON API</a></li>
</ul>
</div>
</nav>
${options.wallet ? walletBar(site, options.wallet) : ''}<main id="main" tabindex="-1">
<div class="wrap">
${options.main}
</div>
</main>
<footer>
<div class="wrap">
<p>${site.name} is a demonstration newspaper for NetPay micro-payments. Every story, person and place in it is fictional.</p>
</div>
</footer>
</body>
</html>
`;
}
