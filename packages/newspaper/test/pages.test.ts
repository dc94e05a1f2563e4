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
  it('ships two distinct sites with about eight articles each, free and priced 1..12 cents', () => {
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
        assert.ok(a.priceMinor >= 0 && a.priceMinor <= 12);
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

  it('every page shows the connected figures, labelled, with the time when not given for this page', () => {
    const site = SITES['daily-planet'];
    const article = site.articles.find((a) => a.priceMinor === 5)!;
    const at = Date.parse('2026-11-23T10:31:05Z');
    const wallet = {
      allowanceLeftMinor: 45,
      balanceMinor: 450,
      balanceAtMs: at,
      balanceFresh: false,
      autoPayMaxMinor: 10,
      addMoneyUrl: `${BROKER}/coins`,
    };
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
    for (const page of pages) {
      assert.match(
        page,
        /Allowance left at The Daily Planet: <strong data-netpay-allowance-left="45">NZ\$0\.45<\/strong>/,
      );
      assert.match(page, /NetPay balance: <strong data-netpay-balance="450"[^>]*>NZ\$4\.50<\/strong>/);
      assert.match(page, /\(as of <time datetime="2026-11-23T10:31:05.000Z">\d\d:\d\d:\d\d<\/time>\)/);
    }
    const fresh = renderFrontPage(site, { ...wallet, balanceFresh: true }).toString();
    assert.ok(!fresh.includes('as of'), 'a balance given for this very page has no time');
    assert.ok(!renderFrontPage(site).toString().includes('id="netpay-wallet"'));
    const empty = renderFrontPage(site, { ...wallet, balanceMinor: 0, allowanceLeftMinor: 0 }).toString();
    assert.ok(empty.includes(`<a href="${BROKER}/coins">Add money at NetPay</a>`));
    const connect = renderPaywallPage(site, article, {
      code: 'payment_required',
      brokerUrl: BROKER,
      connectUrl: '/netpay/connect?return_to=%2Farticles%2Fx',
    }).toString();
    assert.ok(connect.includes('href="/netpay/connect?return_to=%2Farticles%2Fx">Pay NZ$0.05 with NetPay</a>'));
  });

  it('front page marks the articles the reader bought', () => {
    const site = SITES['the-bugle'];
    const [a, b] = site.articles.filter((x) => x.priceMinor > 0) as [
      (typeof site.articles)[0],
      (typeof site.articles)[0],
    ];
    const page = renderFrontPage(site, null, new Set([a.id])).toString();
    const storyOf = (id: string) =>
      page.slice(page.indexOf(`id="h-${id}"`), page.indexOf('</article>', page.indexOf(`id="h-${id}"`)));
    assert.match(storyOf(a.id), /class="price bought" data-bought="true">Bought/);
    assert.ok(!storyOf(b.id).includes('Bought'));
  });

  it('paywall of a connected reader: the pay form, or the limit, the empty balance and a revoked site in words', () => {
    const site = SITES['the-bugle'];
    const article = site.articles.find((a) => a.priceMinor === 12)!;
    const wallet = {
      allowanceLeftMinor: 40,
      balanceMinor: 300,
      balanceAtMs: 0,
      balanceFresh: true,
      autoPayMaxMinor: 10,
    };
    const payForm = { action: '/netpay/pay', csrf: 'tok"en', returnTo: `/articles/${article.id}`, priceMinor: 12 };
    const confirm = renderPaywallPage(site, article, {
      code: 'payment_required',
      brokerUrl: BROKER,
      wallet,
      refusal: { reason: 'confirm', payForm },
    }).toString();
    assert.match(confirm, /This story costs NZ\$0\.12, more than the NZ\$0\.10 you let sites take without asking/);
    assert.ok(confirm.includes('<form method="post" action="/netpay/pay"'));
    assert.ok(confirm.includes('name="csrf" value="tok&quot;en"'));
    assert.ok(confirm.includes(`name="return_to" value="/articles/${article.id}"`));
    assert.ok(confirm.includes('name="price" value="12"'));
    assert.match(confirm, /<button class="button" id="netpay-read" type="submit">Read for NZ\$0\.12<\/button>/);
    const crossSite = renderPaywallPage(site, article, {
      code: 'payment_required',
      brokerUrl: BROKER,
      wallet,
      refusal: { reason: 'cross_site', payForm },
    }).toString();
    assert.match(crossSite, /You came here from another site/);
    assert.ok(crossSite.includes('id="netpay-read"'));
    const limit = renderPaywallPage(site, article, {
      code: 'limit_reached',
      brokerUrl: BROKER,
      wallet,
      refusal: { reason: 'limit_reached', brokerUrl: `${BROKER}/sites` },
    }).toString();
    assert.match(limit, /You have reached a spending limit you set at NetPay/);
    assert.ok(limit.includes(`<a href="${BROKER}/sites">Change your limits at NetPay</a>`));
    assert.ok(!limit.includes('netpay-read'));
    const empty = renderPaywallPage(site, article, {
      code: 'balance_exhausted',
      brokerUrl: BROKER,
      wallet,
      refusal: { reason: 'balance_exhausted', brokerUrl: `${BROKER}/coins` },
    }).toString();
    assert.ok(empty.includes(`Your NetPay balance is used up. <a href="${BROKER}/coins">Add money at NetPay</a>`));
    const revoked = renderPaywallPage(site, article, {
      code: 'payment_required',
      brokerUrl: BROKER,
      connectUrl: '/netpay/connect?return_to=%2Fa',
      refusal: { reason: 'connection_revoked' },
    }).toString();
    assert.match(revoked, /The Bugle is no longer connected to your NetPay balance/);
    assert.ok(revoked.includes('href="/netpay/connect?return_to=%2Fa">Connect NetPay and pay NZ$0.12</a>'));
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
