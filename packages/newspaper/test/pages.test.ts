import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatDate, formatMoney, formatPrice } from '../src/format.ts';
import { escapeHtml, html } from '@netpay/service-kit';
import { renderAccountPage } from '../src/pages/account-page.ts';
import { renderArticlePage } from '../src/pages/article-page.ts';
import { renderFrontPage } from '../src/pages/front-page.ts';
import { renderPaywallPage } from '../src/pages/paywall-page.ts';
import { type Site, SITES, loadSite, parseSite } from '../src/site.ts';

const BROKER = 'http://127.0.0.1:4000';

function evilSite(): Site {
  const base = structuredClone(SITES['daily-planet']);
  base.name = 'The <script>alert(1)</script> Planet';
  const first = base.articles[0]!;
  first.title = '<img src=x onerror=alert(1)> & "quotes"';
  first.body = ['<b>bold?</b>', "it's"];
  return base;
}

describe('html', () => {
  it('escapes interpolated text and keeps nested templates', () => {
    assert.equal(escapeHtml(`<a href="x">'&'</a>`), '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
    const inner = html`<i>${'<x>'}</i>`;
    assert.equal(html`<p>${inner}${[1, '<', null, undefined, false]}</p>`.toString(), '<p><i>&lt;x&gt;</i>1&lt;</p>');
  });
});

describe('format', () => {
  it('formats prices and money', () => {
    assert.equal(formatPrice(0, 'NZD'), 'Free');
    assert.equal(formatPrice(5, 'NZD'), 'NZ$0.05');
    assert.equal(formatPrice(10, 'NZD'), 'NZ$0.10');
    assert.equal(formatMoney(12345, 'NZD'), 'NZ$123.45');
    assert.equal(formatMoney(7, 'XYZ'), 'XYZ 0.07');
    assert.equal(formatDate('2026-11-23', 'en-NZ'), 'Monday 23 November 2026');
  });
});

describe('sites', () => {
  it('ships two distinct sites with about eight articles each, free and priced 1..10 cents', () => {
    const planet = SITES['daily-planet'];
    const bugle = SITES['the-bugle'];
    assert.equal(planet.vendorId, 'daily-planet');
    assert.equal(planet.port, 4001);
    assert.equal(bugle.vendorId, 'the-bugle');
    assert.equal(bugle.port, 4002);
    assert.notEqual(planet.theme.headingFont, bugle.theme.headingFont);
    for (const site of [planet, bugle]) {
      assert.ok(site.articles.length >= 8);
      assert.ok(site.articles.some((a) => a.priceMinor === 0));
      assert.ok(site.articles.some((a) => a.priceMinor > 0));
      for (const a of site.articles) {
        assert.ok(a.priceMinor >= 0 && a.priceMinor <= 10);
        assert.ok(a.body.length >= 3 && a.body.length <= 6, `${a.id} has ${a.body.length} paragraphs`);
      }
    }
  });

  it('loads by name and rejects bad configs', () => {
    assert.equal(loadSite('the-bugle').name, 'The Bugle');
    assert.throws(() => loadSite('no-such-site'), /unknown site/);
    const bad = structuredClone(SITES['the-bugle']) as unknown as Record<string, unknown>;
    bad.vendorId = 'Not A Slug';
    assert.throws(() => parseSite(bad), /vendorId/);
    const css = structuredClone(SITES['the-bugle']);
    css.theme.accent = 'red}</style><script>';
    assert.throws(() => parseSite(css), /theme.accent/);
    const price = structuredClone(SITES['the-bugle']);
    price.articles[0]!.priceMinor = 1.5;
    assert.throws(() => parseSite(price), /priceMinor/);
  });
});

describe('pages', () => {
  it('front page lists every article with its price, and is an accessible, responsive document', () => {
    const site = SITES['daily-planet'];
    const page = renderFrontPage(site).toString();
    assert.match(page, /^<!doctype html>/);
    assert.match(page, /<html lang="en-NZ">/);
    assert.match(page, /<meta name="viewport" content="width=device-width, initial-scale=1">/);
    assert.match(page, /<main id="main"/);
    assert.match(page, /<nav class="nav" aria-label="Site">/);
    assert.match(page, /<footer>/);
    for (const a of site.articles) {
      assert.ok(page.includes(`href="/articles/${a.id}"`), a.id);
    }
    assert.match(page, /<span class="price free">Free<\/span>/);
    assert.match(page, /NZ\$0\.05/);
    assert.match(page, /NZ\$0\.10/);
    assert.match(page, /@media \(min-width:40rem\)/);
  });

  it('escapes titles, bodies and the site name', () => {
    const site = evilSite();
    const article = site.articles[0]!;
    const pages = [
      renderFrontPage(site).toString(),
      renderArticlePage(site, article, { brokerUrl: BROKER }).toString(),
      renderPaywallPage(site, article, { code: 'payment_required', brokerUrl: BROKER }).toString(),
    ];
    for (const page of pages) {
      assert.ok(!page.includes('<script>alert(1)'));
      assert.ok(!page.includes('<img src=x'));
      assert.ok(page.includes('&lt;script&gt;alert(1)&lt;/script&gt;'));
    }
    assert.ok(pages[1]!.includes('<p>&lt;b&gt;bold?&lt;/b&gt;</p>'));
    assert.ok(pages[1]!.includes('&lt;img src=x onerror=alert(1)&gt; &amp; &quot;quotes&quot;'));
  });

  it('article page shows the body, and after a purchase the charge and remaining balance', () => {
    const site = SITES['the-bugle'];
    const article = site.articles.find((a) => a.priceMinor === 6)!;
    const free = renderArticlePage(site, article, { brokerUrl: BROKER }).toString();
    assert.ok(free.includes(escapeHtml(article.body[1]!)));
    assert.ok(!free.includes('role="status"'));
    const paid = renderArticlePage(site, article, {
      brokerUrl: BROKER,
      payment: { chargedMinor: 6, balanceMinor: 94 },
    }).toString();
    assert.match(paid, /You paid NZ\$0\.06 for this article\. <strong>NZ\$0\.94<\/strong> left on your coin\./);
    assert.ok(!paid.includes('/coins'));
    const last = renderArticlePage(site, article, {
      brokerUrl: BROKER,
      payment: { chargedMinor: 6, balanceMinor: 0 },
    }).toString();
    assert.ok(last.includes(`href="${BROKER}/coins"`));
  });

  it('paywall says the price, and links to the broker to buy more when the coin ran out', () => {
    const site = SITES['daily-planet'];
    const article = site.articles.find((a) => a.priceMinor === 5)!;
    const page = renderPaywallPage(site, article, { code: 'payment_required', brokerUrl: BROKER }).toString();
    assert.match(page, /Read this story for NZ\$0\.05/);
    assert.ok(!page.includes(article.body[1]!));
    const exhausted = renderPaywallPage(site, article, { code: 'chain_exhausted', brokerUrl: BROKER }).toString();
    assert.match(exhausted, /Your NetPay coin has run out\./);
    assert.ok(exhausted.includes(`<a href="${BROKER}/coins">Buy more coins from the NetPay broker</a>`));
  });

  it('every page shows the server-side wallet balance when the session has one', () => {
    const site = SITES['daily-planet'];
    const article = site.articles.find((a) => a.priceMinor === 5)!;
    const wallet = { balanceMinor: 195, buyMoreUrl: `${BROKER}/coins` };
    const pages = [
      renderFrontPage(site, wallet).toString(),
      renderArticlePage(site, article, { brokerUrl: BROKER, wallet }).toString(),
      renderPaywallPage(site, article, { code: 'payment_required', brokerUrl: BROKER, wallet }).toString(),
      renderAccountPage(
        site,
        { currency: 'NZD', earnedMinor: 0, pendingMinor: 0, redeemedMinor: 0 },
        wallet,
      ).toString(),
    ];
    for (const page of pages) assert.match(page, /Your NetPay balance: <strong[^>]*>NZ\$1\.95<\/strong>/);
    assert.ok(!renderFrontPage(site).toString().includes('Your NetPay balance'));
    const empty = renderFrontPage(site, { ...wallet, balanceMinor: 0 }).toString();
    assert.ok(empty.includes(`<a href="${BROKER}/coins">buy more from the NetPay broker</a>`));
    const connect = renderPaywallPage(site, article, {
      code: 'payment_required',
      brokerUrl: BROKER,
      connectUrl: '/netpay/connect?return_to=%2Farticles%2Fx',
    }).toString();
    assert.ok(connect.includes('href="/netpay/connect?return_to=%2Farticles%2Fx">Pay NZ$0.05 with NetPay</a>'));
  });

  it('account page shows earned, pending, redeemed and paid out', () => {
    const page = renderAccountPage(SITES['the-bugle'], {
      currency: 'NZD',
      earnedMinor: 1234,
      pendingMinor: 34,
      redeemedMinor: 1176,
      paidOutMinor: 1000,
      balanceMinor: 176,
    }).toString();
    for (const text of ['Earned', 'NZ$12.34', 'Pending', 'NZ$0.34', 'Redeemed', 'NZ$11.76', 'Paid out', 'NZ$10.00']) {
      assert.ok(page.includes(text), text);
    }
    assert.match(page, /<th scope="col">/);
  });
});
