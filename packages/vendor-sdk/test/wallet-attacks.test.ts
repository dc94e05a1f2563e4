// Attacks on a reader's server-side wallet that an adversarial review found (§7 v1.1: the wallet pays only for what
// the reader asked for on this site, once):
// - an image of a paid URL on the site's own page (a comment may hold one) or the browser's prerender of a URL spent
//   the wallet: same-origin, but not the reader opening the page (navigation.ts);
// - one new article opened in several tabs at once was charged once per tab when the chain had bought more than its
//   in-memory entitlements hold: the store was asked, and the wait let every tab through (wallet-payment.ts);
// - a site could attach itself to a passing customer's balance with no click: sending the browser through connect by
//   itself (a redirect on load), for a customer who had connected some other site, or this one and revoked it, got
//   a code without any page at the broker. Now only the reader's own click (Sec-Fetch-User) skips the page.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { hashToken } from '@netpay/service-kit';
import { testEngines } from '@netpay/service-kit/testing';
import { WALLET_SESSION_COOKIE } from '../src/index.ts';
import { Reader } from './connected-reader.ts';
import { startWorld, type TestVendor, type World } from './harness.ts';

/** The highest index any epoch of the chain has paid at the vendor. */
async function lastIndexAt(vendor: TestVendor, chainId: string): Promise<number> {
  const loaded = await vendor.store.loadChain(chainId);
  return Math.max(0, ...(loaded?.epochs ?? []).map((e) => e.last?.index ?? 0));
}

/** A connected reader (article 1 bought) and its wallet's chain. */
async function connectedReader(world: World, vendor: TestVendor) {
  const reader = await Reader.open(world, 300);
  await reader.connect(vendor, '1');
  const wallet = await vendor.store.getServerWallet(hashToken(reader.session));
  assert.ok(wallet);
  return { reader, chainId: wallet.chainId };
}

for (const engine of testEngines()) {
  describe(`attacks on a server-side wallet (${engine})`, () => {
    let world: World;
    let vendor: TestVendor;
    before(async () => {
      world = await startWorld({ engine, broker: { allowanceMaxMinor: 100, connectionBlockMinor: 200 } });
      vendor = await world.addVendor(`wallet-attacks-${engine}`); // every article 1 cent
    });
    after(async () => world?.close());

    it('an image of a paid URL, or a prerender, spends nothing; the reader opening it pays', async () => {
      const { reader, chainId } = await connectedReader(world, vendor);
      const start = await lastIndexAt(vendor, chainId);
      const cookie = reader.browser.cookieHeader();
      const attempts: Record<string, Record<string, string>> = {
        // <img src="/articles/50"> on the site's own page.
        image: { 'sec-fetch-site': 'same-origin', 'sec-fetch-mode': 'no-cors', 'sec-fetch-dest': 'image' },
        // A script tag's fetch of it, and a style sheet's.
        script: { 'sec-fetch-site': 'same-origin', 'sec-fetch-mode': 'no-cors', 'sec-fetch-dest': 'script' },
        style: { 'sec-fetch-site': 'same-origin', 'sec-fetch-mode': 'no-cors', 'sec-fetch-dest': 'style' },
        // Chrome prerendering a URL the address bar suggests.
        prerender: {
          'sec-fetch-site': 'none',
          'sec-fetch-mode': 'navigate',
          'sec-fetch-dest': 'document',
          'sec-purpose': 'prefetch;prerender',
        },
        // An older browser's link prefetch.
        prefetch: { referer: `${vendor.url}/`, purpose: 'prefetch' },
        // An older browser (no Fetch Metadata) loading an <img> of it from the site's own page: Referer, no text/html.
        'old-browser image': { referer: `${vendor.url}/comments`, accept: 'image/avif,image/webp,*/*' },
      };
      for (const [what, headers] of Object.entries(attempts)) {
        const res = await fetch(`${vendor.url}/articles/50`, { headers: { cookie, ...headers } });
        await res.arrayBuffer();
        assert.equal(res.status, 402, `${what}: answered ${res.status}`);
        assert.equal(await lastIndexAt(vendor, chainId), start, `${what} spent the wallet`);
      }
      // The same URL opened by the reader (a navigation to a document, or the page's own fetch) pays, once.
      const opened = await fetch(`${vendor.url}/articles/50`, {
        headers: {
          cookie,
          'sec-fetch-site': 'same-origin',
          'sec-fetch-mode': 'navigate',
          'sec-fetch-dest': 'document',
        },
      });
      assert.equal(opened.status, 200, await opened.text());
      assert.equal(await lastIndexAt(vendor, chainId), start + 1);
      const fetched = await fetch(`${vendor.url}/articles/51`, {
        headers: { cookie, 'sec-fetch-site': 'same-origin', 'sec-fetch-mode': 'cors', 'sec-fetch-dest': 'empty' },
      });
      assert.equal(fetched.status, 200, await fetched.text());
      assert.equal(await lastIndexAt(vendor, chainId), start + 2);
    });

    it('one new article opened in four tabs at once is paid once, also past the entitlements held in memory', async () => {
      const { reader, chainId } = await connectedReader(world, vendor);
      /** Opens the article in four tabs at once; answers the units the chain moved. */
      const tabs = async (id: string) => {
        const start = await lastIndexAt(vendor, chainId);
        const reads = await Promise.all([0, 1, 2, 3].map(() => reader.read(vendor, id)));
        assert.deepEqual(
          reads.map((r) => r.status),
          [200, 200, 200, 200],
        );
        return (await lastIndexAt(vendor, chainId)) - start;
      };
      assert.equal(await tabs('2'), 1, 'while every entitlement is in memory');
      // Past the 16 entitlements a chain keeps in memory, a miss is asked of the store.
      for (let i = 3; i <= 20; i++) assert.equal((await reader.read(vendor, String(i))).charged, true, `article ${i}`);
      for (let round = 0; round < 8; round++) {
        assert.equal(await tabs(String(100 + round)), 1, `article ${100 + round} paid more than once`);
      }
    });

    it('a site that sends the browser through connect by itself gets the consent page, never a wallet', async () => {
      const other = await world.addVendor(`wallet-attacks-other-${engine}`);
      const reader = await Reader.open(world, 300);
      await reader.connect(other, '1'); // connected once: further sites need no page after a click
      const session = () => reader.browser.jar.get(WALLET_SESSION_COOKIE);
      /** A redirect on load to the vendor's connect, no click anywhere; answers where the browser ended. */
      const unclicked = async () => {
        const hops = await reader.browser.follow(`${vendor.url}/netpay/connect?return_to=%2Farticles%2F9`, 8, {
          site: 'cross-site',
        });
        return hops.at(-1) as { url: string; status: number };
      };
      const stopped = await unclicked();
      assert.ok(stopped.url.startsWith(`${world.brokerUrl}/connect?`), `ended at ${stopped.url}`);
      assert.equal(stopped.status, 200, 'the one-click page');
      const id = session();
      assert.equal(id === undefined ? undefined : await vendor.store.getServerWallet(hashToken(id)), undefined);

      // Connected by a click, then revoked: the site cannot reconnect itself either.
      await reader.connect(vendor, '2');
      await reader.revoke(vendor);
      const again = await unclicked();
      assert.ok(again.url.startsWith(`${world.brokerUrl}/connect?`), `ended at ${again.url}`);
      // The site still holds the revoked wallet (it learns of the revoke at its next allowance request), and no new one.
      const read = await reader.read(vendor, '3');
      assert.equal(read.status, 402);
      assert.equal(read.reason, 'connection_revoked');
      // Nor when the reader clicks an ordinary link of the revoked site that the site points at connect.
      const clicked = await reader.browser.follow(`${vendor.url}/netpay/connect?return_to=%2Farticles%2F4`, 8, {
        from: `${vendor.url}/`,
        user: true,
      });
      const last = clicked.at(-1) as { url: string; status: number };
      assert.ok(last.url.startsWith(`${world.brokerUrl}/connect?`), `ended at ${last.url}`);
      assert.equal((await reader.read(vendor, '5')).charged, undefined, 'nothing paid from a wallet');
    });
  });
}
