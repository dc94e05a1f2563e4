import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { formatAuthorization, type PaywordChain, parseReceipt } from '@netpay/protocol';
import { createLogger } from '@netpay/service-kit';
import { type BenchNetwork, startBenchNetwork } from '../src/bench.ts';
import { SITES } from '../src/site.ts';

// A real bank, broker and vendor on loopback: a client-made coin pays for articles over HTTP.
const site = SITES['the-bugle'];
const five = site.articles.find((a) => a.priceMinor === 5)!;
const three = site.articles.find((a) => a.priceMinor === 3)!;
const HTML = 'text/html,application/xhtml+xml;q=0.9,*/*;q=0.8';

function pay(chain: PaywordChain, index: number): string {
  return formatAuthorization({ chain: chain.chainIdB64, index, payword: chain.b64(index) });
}

describe('paying for articles over HTTP', () => {
  let dir: string;
  let net: BenchNetwork;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'netpay-newspaper-e2e-'));
    net = await startBenchNetwork({ dir, site, logger: createLogger('test', 'silent') });
  });

  after(async () => {
    await net?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('pays an article through the API and gets a receipt with the balance', async () => {
    const chain = await net.buyChain(20);
    const res = await fetch(`${net.vendorUrl}/api/articles/${five.id}`, {
      headers: { accept: 'application/json', authorization: pay(chain, 5) },
    });
    assert.equal(res.status, 200, await res.clone().text());
    const receipt = parseReceipt(res.headers.get('netpay-receipt') ?? undefined);
    assert.deepEqual(receipt, { chain: chain.chainIdB64, index: 5, balance: 15 });
    const body = (await res.json()) as { id: string; body: string[] };
    assert.equal(body.id, five.id);
    assert.deepEqual(body.body, five.body);

    // The page for the next article shows what was charged and what is left on the coin.
    const page = await fetch(`${net.vendorUrl}/articles/${three.id}`, {
      headers: { accept: HTML, authorization: pay(chain, 8) },
    });
    assert.equal(page.status, 200);
    assert.equal(parseReceipt(page.headers.get('netpay-receipt') ?? undefined).balance, 12);
    const html = await page.text();
    assert.match(html, /You paid NZ\$0\.03 for this article\. <strong>NZ\$0\.12<\/strong> left on your coin\./);
    assert.ok(html.includes(three.body[0]!.slice(0, 30).replace(/'/g, '&#39;').replace(/"/g, '&quot;')));

    // The same article bought with this coin stays readable for it, free of charge.
    const again = await fetch(`${net.vendorUrl}/articles/${five.id}`, {
      headers: { accept: HTML, authorization: pay(chain, 5) },
    });
    assert.equal(again.status, 200);
    assert.match(await again.text(), /already paid for this article with this coin/);

    // Page and API sell the same resource: repeating the last payment through the API is a free retry…
    const twice = await fetch(`${net.vendorUrl}/api/articles/${three.id}`, {
      headers: { accept: 'application/json', authorization: pay(chain, 8) },
    });
    await twice.arrayBuffer();
    assert.equal(twice.status, 200, 'a retry of the last payment for the same resource is served again');
    // …but the same index offered for another article is already spent.
    const replay = await fetch(`${net.vendorUrl}/api/articles/${site.articles.find((a) => a.priceMinor === 6)!.id}`, {
      headers: { accept: 'application/json', authorization: pay(chain, 8) },
    });
    assert.equal(replay.status, 402);
    assert.equal(((await replay.json()) as { code: string }).code, 'already_spent');
  });

  it('when the coin runs out, the paywall links to the broker to buy more', async () => {
    const chain = await net.buyChain(7);
    const first = await fetch(`${net.vendorUrl}/articles/${five.id}`, {
      headers: { accept: HTML, authorization: pay(chain, 5) },
    });
    assert.equal(first.status, 200);
    assert.match(await first.text(), /<strong>NZ\$0\.02<\/strong> left on your coin/);

    const json = await fetch(`${net.vendorUrl}/api/articles/${three.id}`, {
      headers: { accept: 'application/json', authorization: pay(chain, 7) },
    });
    assert.equal(json.status, 402);
    assert.equal(((await json.json()) as { code: string }).code, 'chain_exhausted');

    const page = await fetch(`${net.vendorUrl}/articles/${three.id}`, {
      headers: { accept: HTML, authorization: pay(chain, 7) },
    });
    assert.equal(page.status, 402);
    assert.ok(page.headers.get('www-authenticate')?.startsWith('NetPay '));
    const html = await page.text();
    assert.match(html, /Your NetPay coin has run out\./);
    assert.ok(html.includes(`<a href="${net.brokerUrl}/coins">Buy more coins from the NetPay broker</a>`));
  });

  it('redeems what it took and shows it on the account page', async () => {
    const report = await net.vendor.redeemNow();
    assert.equal(report.error, undefined);
    assert.ok(report.accepted >= 2);
    const res = await fetch(`${net.vendorUrl}/account`, { headers: { accept: HTML } });
    assert.equal(res.status, 200);
    const html = await res.text();
    // 5 + 3 on the first coin, 5 on the second: 13 cents earned, all redeemed.
    assert.match(html, /Earned<\/th><td class="num">NZ\$0\.13<\/td>/);
    assert.match(html, /Pending<\/th><td class="num">NZ\$0\.00<\/td>/);
    assert.match(html, /Redeemed<\/th><td class="num">NZ\$0\.13<\/td>/);
    assert.ok(!html.includes('could not be reached'));
  });
});
