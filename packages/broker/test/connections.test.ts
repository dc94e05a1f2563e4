import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  AllowanceResponseSchema,
  b64uDecode,
  b64uEncode,
  checkWire,
  ConnectionGrantResponseSchema,
  formatAmount,
  paywordAt,
  verifyPaywordB64,
} from '@netpay/protocol';
import { ManualClock } from '@netpay/service-kit';
import { testEngines } from '@netpay/service-kit/testing';
import { startReleaseServer } from '@netpay/test-kit';
import { TOKENS_PER_CONNECTION } from '../src/connections.ts';
import { type BrokerUnderTest, brokerSuite, call, GOOD_CARD, type Reply, type TestVendor } from './harness.ts';
import { csrfOf, decodeEntities, inputValue, WebClient } from './web-client.ts';

const PASSWORD = 'correct horse battery';
const ALLOWANCE_MAX = 50;
const LEASE_SECONDS = 60;
let seq = 0;

const releaseServer = startReleaseServer;

/**
 * What a connected site holds for one browser (§7 v1.1): the chain, its epoch, the allowance w_a and the refresh
 * token, never a seed. It derives w_k for k ≤ a by hashing down from w_a, as the vendor SDK does.
 */
class SiteWallet {
  chainId: string;
  epoch: number;
  allowance: { index: number; payword: string; expiresAt: string };
  readonly refreshToken: string;
  balance: number;
  /** Every chain this wallet was given, with its last allowance (a dishonest site keeps them all). */
  readonly held = new Map<string, { index: number; payword: string; epoch: number }>();

  constructor(grant: Reply) {
    this.chainId = grant.body.chainId;
    this.epoch = grant.body.holder.epoch;
    this.allowance = grant.body.allowance;
    this.refreshToken = grant.body.refreshToken;
    this.balance = grant.body.balance;
    this.remember();
  }

  /** w_k of the current chain, from the allowance. */
  w(k: number, chainId = this.chainId): string {
    const held = chainId === this.chainId ? this.allowance : this.held.get(chainId);
    if (!held || k > held.index) throw new Error(`no payword ${k} on ${chainId}`);
    return b64uEncode(paywordAt(b64uDecode(chainId, 16), b64uDecode(held.payword, 32), held.index, k));
  }

  async refresh(broker: BrokerUnderTest, vendor: TestVendor, spent: number, notes?: unknown[]): Promise<Reply> {
    const res = await call(broker.api, 'POST', '/allowances', {
      token: vendor.apiKey,
      body: {
        refreshToken: this.refreshToken,
        chainId: this.chainId,
        epoch: this.epoch,
        spent: { index: spent, payword: this.w(spent) },
        ...(notes ? { notes } : {}),
      },
    });
    if (res.status === 200) {
      assert.ok(checkWire(AllowanceResponseSchema, res.body), res.text);
      this.chainId = res.body.chainId;
      if (res.body.holder) this.epoch = res.body.holder.epoch;
      this.allowance = res.body.allowance;
      this.balance = res.body.balance;
      this.remember();
    }
    return res;
  }

  private remember(): void {
    this.held.set(this.chainId, { index: this.allowance.index, payword: this.allowance.payword, epoch: this.epoch });
  }
}

for (const engine of testEngines()) {
  describe(`one NetPay balance, connections and allowances on ${engine}`, () => {
    const clock = new ManualClock(new Date());
    const callback = (v: TestVendor) => `http://127.0.0.1:9/${v.id}/netpay/connected`;
    const connectPath = (v: TestVendor, state: string) =>
      `/connect?${new URLSearchParams({ vendor: v.id, return: callback(v), state })}`;

    const suite = brokerSuite(engine, {
      broker: {
        clock,
        config: { leaseTtlSeconds: LEASE_SECONDS, allowanceMaxMinor: ALLOWANCE_MAX, connectionBlockMinor: 200 },
      },
    });

    const assertAudit = async () => {
      const result = await suite.broker.audit();
      assert.ok(result.ok, result.discrepancies.join('\n'));
    };
    const vendor = (name: string, releaseUrl?: string) => suite.broker.addVendor(`${name}-${++seq}`, releaseUrl);
    const grant = (code: string, v: TestVendor) =>
      call(suite.broker.api, 'POST', `/wallet-grants/${encodeURIComponent(code)}`, { token: v.apiKey });

    async function reader(): Promise<{ client: WebClient; email: string; token: () => Promise<string> }> {
      const client = new WebClient(suite.broker.url);
      const email = `reader${++seq}-${Date.now()}@example.test`;
      const form = await client.get('/register');
      const res = await client.post('/register', { csrf: csrfOf(form.text), email, password: PASSWORD });
      assert.equal(res.status, 303, res.text);
      const token = async () =>
        (await call(suite.broker.api, 'POST', '/sessions', { body: { email, password: PASSWORD } })).body
          .token as string;
      return { client, email, token };
    }

    /** The first connect: one consent page stating the limits, add money on it, one button; the code back. */
    async function firstConnect(
      client: WebClient,
      v: TestVendor,
      options: { amount?: string; saveCard?: boolean } = {},
    ): Promise<string> {
      const consent = await client.get(connectPath(v, 'first'));
      assert.equal(consent.status, 200, consent.text);
      assert.match(consent.text, new RegExp(`<h1>Connect Vendor ${v.id} to your NetPay balance</h1>`));
      assert.match(decodeEntities(consent.text), /Articles up to NZ\$0\.10 are paid without asking/);
      assert.match(decodeEntities(consent.text), /at most NZ\$0\.50 of your balance at a time/);
      assert.doesNotMatch(consent.text, /name="coin"/, 'no coin to pick');
      const res = await client.post('/connect', {
        csrf: csrfOf(consent.text),
        vendor: inputValue(consent.text, 'vendor') ?? '',
        return: inputValue(consent.text, 'return') ?? '',
        state: inputValue(consent.text, 'state') ?? '',
        idem: inputValue(consent.text, 'idem') ?? '',
        pay_with: 'card',
        amount: options.amount ?? '5.00',
        card_number: GOOD_CARD.number,
        card_expiry: GOOD_CARD.expiry,
        card_cvc: GOOD_CARD.cvc,
        ...(options.saveCard === false ? {} : { save_card: 'on' }),
        action: 'connect',
      });
      assert.equal(res.status, 303, res.text);
      const location = new URL(res.location ?? '');
      assert.equal(location.searchParams.get('state'), 'first');
      return location.searchParams.get('code') ?? '';
    }

    /** A further site: no page at all, an immediate redirect back with the code. */
    async function nextConnect(client: WebClient, v: TestVendor): Promise<string> {
      const res = await client.get(connectPath(v, 'again'));
      assert.equal(
        res.status,
        303,
        `a further site connects with no page, got ${res.status}: ${res.text.slice(0, 300)}`,
      );
      const location = new URL(res.location ?? '');
      assert.equal(`${location.origin}${location.pathname}`, callback(v));
      return location.searchParams.get('code') ?? '';
    }

    async function connected(client: WebClient, v: TestVendor, first: boolean): Promise<SiteWallet> {
      const code = first ? await firstConnect(client, v) : await nextConnect(client, v);
      const res = await grant(code, v);
      assert.equal(res.status, 200, res.text);
      assert.ok(checkWire(ConnectionGrantResponseSchema, res.body), res.text);
      return new SiteWallet(res);
    }

    const sitesPage = async (client: WebClient) => decodeEntities((await client.get('/sites')).text);
    const walletPage = async (client: WebClient) => decodeEntities((await client.get('/coins')).text);
    const balanceFigure = (html: string) => /id="netpay-balance">([^<]+)</.exec(html)?.[1];
    const connectionIdOf = (html: string, name: string) =>
      new RegExp(`action="/sites/(con_[A-Za-z0-9_-]+)/revoke"[^]*?aria-label="Revoke ${name}"`).exec(html)?.[1] ?? '';

    test('grant, allowance and refresh within the limits; a second site connects with no page; figures agree everywhere', async () => {
      const { client, token } = await reader();
      const planet = await vendor('planet');
      const bugle = await vendor('bugle');
      const code = await firstConnect(client, planet);
      const res = await grant(code, planet);
      assert.equal(res.status, 200, res.text);
      assert.ok(checkWire(ConnectionGrantResponseSchema, res.body), res.text);
      assert.ok(!('seed' in res.body), 'a grant never carries a seed');
      const { chainId, touchstone, holder, allowance } = res.body;
      assert.equal(holder.vendorId, planet.id);
      assert.equal(touchstone.unit, 1);
      assert.equal(allowance.index, ALLOWANCE_MAX);
      assert.ok(
        verifyPaywordB64({ chainId, known: { index: 0, payword: touchstone.anchor }, presented: allowance }),
        'w_a lies on the chain',
      );
      assert.equal(res.body.balance, 450, 'NZ$5.00 added, NZ$0.50 allowed to the site');
      assert.deepEqual(res.body.limits, { autoPayMaxMinor: 10 });
      assert.equal(res.body.previous, null);
      assert.equal((await grant(code, planet)).body.code, 'grant_invalid', 'a code works once');

      const site = new SiteWallet(res);
      const spent = await site.refresh(suite.broker, planet, 5, [{ index: 5, amount: 5, description: 'Moon landing' }]);
      assert.equal(spent.status, 200, spent.text);
      assert.equal(spent.body.allowance.index, 55, 'a′ = spent + max');
      assert.equal(spent.body.balance, 445);
      assert.equal(spent.body.holder, undefined, 'same chain: no new certificate');
      const again = await site.refresh(suite.broker, planet, 5, [{ index: 5, amount: 5, description: 'Moon landing' }]);
      assert.deepEqual(again.body, spent.body, 'a repeated request gets the same answer');
      const stale = await site.refresh(suite.broker, planet, 3);
      assert.equal(stale.body.allowance.index, 55, 'an older point changes nothing');

      const forged = await call(suite.broker.api, 'POST', '/allowances', {
        token: planet.apiKey,
        body: {
          refreshToken: site.refreshToken,
          chainId: site.chainId,
          epoch: site.epoch,
          spent: { index: 20, payword: b64uEncode(new Uint8Array(32)) },
        },
      });
      assert.equal(forged.body.code, 'invalid_payword');
      const beyond = await call(suite.broker.api, 'POST', '/allowances', {
        token: planet.apiKey,
        body: { refreshToken: site.refreshToken, chainId, epoch: 1, spent: { index: 56, payword: site.w(55) } },
      });
      assert.equal(beyond.body.code, 'invalid_payword');
      const otherSite = await call(suite.broker.api, 'POST', '/allowances', {
        token: bugle.apiKey,
        body: { refreshToken: site.refreshToken, chainId, epoch: 1, spent: { index: 5, payword: site.w(5) } },
      });
      assert.equal(otherSite.status, 403, 'a refresh token works only for its own site');
      assert.equal(otherSite.body.code, 'connection_revoked');

      // The Bugle: no page, and the balance carries on.
      const second = await connected(client, bugle, false);
      assert.equal(second.balance, 395);
      assert.notEqual(second.chainId, site.chainId, 'each connection has chains of its own');

      const api = await call(suite.broker.api, 'GET', '/balance', { token: await token() });
      assert.equal(api.status, 200, api.text);
      assert.equal(api.body.balance, 395);
      assert.deepEqual(
        api.body.sites.map((s: { name: string; allowanceLeft: number }) => [s.name, s.allowanceLeft]).sort(),
        [
          [`Vendor ${bugle.id}`, 50],
          [`Vendor ${planet.id}`, 50],
        ],
      );
      assert.deepEqual(api.body.card, { last4: '4242' });

      const wallet = await walletPage(client);
      assert.equal(balanceFigure(wallet), 'NZ$3.95');
      assert.match(wallet, new RegExp(`Allowance left at Vendor ${planet.id}: <strong>NZ\\$0\\.50</strong>`));
      const sites = await sitesPage(client);
      assert.equal(balanceFigure(sites), 'NZ$3.95');
      assert.match(sites, new RegExp(`<th scope="row" data-label="Site">Vendor ${planet.id}</th>`), 'sites by name');
      assert.match(sites, new RegExp(`<th scope="row" data-label="Site">Vendor ${bugle.id}</th>`));
      assert.doesNotMatch(sites, new RegExp(`>${planet.id}<`), 'never the id');
      const history = decodeEntities((await client.get('/history')).text);
      assert.match(history, new RegExp(`Read “Moon landing” at Vendor ${planet.id}`));
      const balances = [...history.matchAll(/data-label="Balance" class="num">([^<]+)</g)].map((m) => m[1]);
      assert.equal(balances[0], 'NZ$3.95', 'the running balance ends at the NetPay balance');
      await assertAudit();
    });

    test('caps: a site’s monthly limit and the daily limit across sites give limit_reached; raising one lets the same request through', async () => {
      const { client } = await reader();
      const planet = await vendor('capped-planet');
      const bugle = await vendor('capped-bugle');
      const site = await connected(client, planet, true);
      let sites = await sitesPage(client);
      const planetId = connectionIdOf(sites, `Vendor ${planet.id}`);
      const raw = await client.get('/sites');
      const setCap = await client.post(`/sites/${planetId}/limit`, { csrf: csrfOf(raw.text), site_cap: '0.60' });
      assert.equal(setCap.status, 303);

      const partial = await site.refresh(suite.broker, planet, 50);
      assert.equal(partial.body.allowance.index, 60, 'only what the monthly limit leaves');
      const capped = await site.refresh(suite.broker, planet, 60);
      assert.equal(capped.status, 402, capped.text);
      assert.equal(capped.body.code, 'limit_reached');
      assert.equal(capped.body.brokerUrl, `${suite.broker.url}/sites`);
      assert.match(capped.body.detail, /monthly limit for this site/);

      // The daily limit across sites: NZ$0.80 a day, NZ$0.60 of it already allowed to the Planet.
      sites = decodeEntities((await client.get('/sites')).text);
      const daily = await client.post('/sites/settings', {
        csrf: csrfOf(sites),
        auto_pay: '0.10',
        daily_cap: '0.80',
      });
      assert.equal(daily.status, 303);
      const other = await connected(client, bugle, false);
      assert.equal(other.allowance.index, 20, 'what the daily limit leaves');
      const stop = await other.refresh(suite.broker, bugle, 20);
      assert.equal(stop.body.code, 'limit_reached');
      assert.match(stop.body.detail, /daily limit across sites/);

      const raise = await client.post('/sites/settings', {
        csrf: csrfOf((await client.get('/sites')).text),
        auto_pay: '0.10',
        daily_cap: '2.00',
      });
      assert.equal(raise.status, 303);
      const through = await other.refresh(suite.broker, bugle, 20);
      assert.equal(through.status, 200, through.text);
      assert.equal(through.body.allowance.index, 70);

      clock.advance(32 * 86_400_000); // a new month and a new day: both limits start again
      const nextMonth = await site.refresh(suite.broker, planet, 60);
      assert.equal(nextMonth.status, 200, nextMonth.text);
      assert.equal(nextMonth.body.allowance.index, 110);
      await assertAudit();
    });

    test('money one site’s chain holds beyond its allowance funds another site: the balance shown is the balance usable', async () => {
      const { client } = await reader();
      const planet = await vendor('shared-planet');
      const bugle = await vendor('shared-bugle');
      const code = await firstConnect(client, planet, { amount: '2.00' });
      const first = new SiteWallet(await grant(code, planet));
      assert.equal(first.balance, 150, 'the Planet’s chain holds all NZ$2.00, NZ$0.50 of it allowed');
      const second = await connected(client, bugle, false);
      assert.equal(second.balance, 100, 'the Bugle is funded from what the Planet’s chain held beyond its allowance');
      const more = await first.refresh(suite.broker, planet, 45);
      assert.equal(more.status, 200, more.text);
      assert.notEqual(more.body.holder, undefined, 'the Planet moves to a new chain');
      assert.equal(more.body.balance, 55, 'NZ$2.00 − NZ$0.45 read − two allowances of NZ$0.50');
      assert.equal(balanceFigure(await walletPage(client)), 'NZ$0.55');
      const history = decodeEntities((await client.get('/history')).text);
      assert.equal(/data-label="Balance" class="num">([^<]+)</.exec(history)?.[1], 'NZ$0.55');
      await assertAudit();
    });

    test('an empty balance is balance_exhausted, pointing at the add-money page', async () => {
      const { client } = await reader();
      const planet = await vendor('thin-planet');
      const code = await firstConnect(client, planet, { amount: '1.00', saveCard: false });
      const site = new SiteWallet(await grant(code, planet));
      assert.equal(site.balance, 50);
      assert.equal((await site.refresh(suite.broker, planet, 50)).body.allowance.index, 100);
      assert.equal(site.balance, 0);
      const empty = await site.refresh(suite.broker, planet, 100);
      assert.equal(empty.status, 402, empty.text);
      assert.equal(empty.body.code, 'balance_exhausted');
      assert.equal(empty.body.brokerUrl, `${suite.broker.url}/coins`);
      assert.equal(balanceFigure(await walletPage(client)), 'NZ$0.00');
      await assertAudit();
    });

    test('automatic top-up: the saved card is charged once under the monthly ceiling, and refused above it', async () => {
      const { client, token } = await reader();
      const planet = await vendor('auto-planet');
      const code = await firstConnect(client, planet, { amount: '1.00' });
      const wallet = await client.get('/coins');
      const set = await client.post('/auto-top-up', {
        csrf: csrfOf(wallet.text),
        auto_amount: '1.00',
        auto_ceiling: '1.50',
        action: 'on',
      });
      assert.equal(set.status, 303, set.text);
      const site = new SiteWallet(await grant(code, planet));
      const firstChain = site.chainId;
      await site.refresh(suite.broker, planet, 50);
      const chargesBefore = (await suite.bank.statement()).body.lines.length;

      const topped = await site.refresh(suite.broker, planet, 100);
      assert.equal(topped.status, 200, topped.text);
      assert.notEqual(topped.body.chainId, firstChain, 'a new chain, funded by the top-up');
      assert.equal(topped.body.holder.vendorId, planet.id, 'with the site’s certificate for it');
      assert.equal(topped.body.holder.epoch, 1);
      assert.equal(topped.body.allowance.index, 50);
      assert.equal(topped.body.balance, 50);
      assert.equal((await suite.bank.statement()).body.lines.length, chargesBefore + 1, 'one charge');
      const repeat = await call(suite.broker.api, 'POST', '/allowances', {
        token: planet.apiKey,
        body: {
          refreshToken: site.refreshToken,
          chainId: firstChain,
          epoch: 1,
          spent: { index: 100, payword: site.w(100, firstChain) },
        },
      });
      assert.equal(repeat.status, 200, repeat.text);
      assert.equal(repeat.body.chainId, topped.body.chainId, 'a repeat gets the current chain');
      assert.equal((await suite.bank.statement()).body.lines.length, chargesBefore + 1, 'and no second charge');

      await site.refresh(suite.broker, planet, 50);
      const over = await site.refresh(suite.broker, planet, 100);
      assert.equal(over.status, 402, over.text);
      assert.equal(over.body.code, 'balance_exhausted', 'NZ$1.00 more would pass the NZ$1.50 ceiling');
      assert.equal((await suite.bank.statement()).body.lines.length, chargesBefore + 1);
      const api = await call(suite.broker.api, 'GET', '/balance', { token: await token() });
      assert.deepEqual(api.body.autoTopUp, { amount: 100, monthlyCeiling: 150 });
      const history = decodeEntities((await client.get('/history')).text);
      assert.match(history, /Automatic top-up \(card ending 4242\)/);
      await assertAudit();
    });

    test('revoke (CSRF-protected): the next allowance is connection_revoked and the unspent allowance is back, as the page said', async () => {
      const { client } = await reader();
      let planet: TestVendor | undefined;
      let lastSpent = { index: 0, payword: '' };
      const release = await releaseServer(
        () => planet as TestVendor,
        () => lastSpent,
      );
      try {
        planet = await vendor('revoked-planet', release.url);
        const site = await connected(client, planet, true);
        await site.refresh(suite.broker, planet, 10, [{ index: 10, amount: 10, description: 'Ten cents' }]);
        lastSpent = { index: 10, payword: site.w(10) };
        const before = await sitesPage(client);
        const name = `Vendor ${planet.id}`;
        assert.match(before, /data-label="Allowance left" class="num">NZ\$0\.50</);
        const id = connectionIdOf(before, name);

        const forged = await client.post(`/sites/${id}/revoke`, { csrf: 'forged' });
        assert.equal(forged.status, 403);
        assert.equal((await site.refresh(suite.broker, planet, 10)).status, 200, 'a forged form revokes nothing');

        const raw = await client.get('/sites');
        const revoke = await client.post(`/sites/${id}/revoke`, { csrf: csrfOf(raw.text) });
        assert.equal(revoke.status, 303);
        assert.equal(release.calls.length, 1, 'the broker asked the site for its release');
        const after = decodeEntities((await client.get(revoke.location ?? '')).text);
        assert.match(after, new RegExp(`${name} is disconnected\\. NZ\\$0\\.50 of its allowance is back`));
        assert.equal(balanceFigure(after), 'NZ$4.90', 'only what the site read is gone');
        assert.doesNotMatch(after, new RegExp(`data-label="Site">${name}<`));

        const refused = await site.refresh(suite.broker, planet, 10);
        assert.equal(refused.status, 403);
        assert.equal(refused.body.code, 'connection_revoked');
        // Connecting the revoked site again shows the page once more (even after the reader's click), one button.
        const page = await client.get(connectPath(planet, 'again'));
        assert.equal(page.status, 200, 'a revoked site asks again');
        const res = await client.post('/connect', {
          csrf: csrfOf(page.text),
          vendor: inputValue(page.text, 'vendor') ?? '',
          return: inputValue(page.text, 'return') ?? '',
          state: inputValue(page.text, 'state') ?? '',
          action: 'connect',
        });
        assert.equal(res.status, 303, res.text);
        const reconnect = new URL(res.location ?? '').searchParams.get('code');
        assert.ok(reconnect, 'connecting again makes a new connection');
        await assertAudit();
      } finally {
        release.server.close();
      }
    });

    test('revoke with an unreachable site: it can take nothing more, and the rest comes back once its lease ends', async () => {
      const { client } = await reader();
      const planet = await vendor('gone-planet'); // release URL on port 9: nobody answers
      const site = await connected(client, planet, true);
      await site.refresh(suite.broker, planet, 10);
      const id = connectionIdOf(await sitesPage(client), `Vendor ${planet.id}`);
      const raw = await client.get('/sites');
      await client.post(`/sites/${id}/revoke`, { csrf: csrfOf(raw.text) });
      const pending = await sitesPage(client);
      assert.match(pending, /comes back to your balance when the site releases it/);
      assert.match(pending, /NZ\$0\.50 comes back/);
      assert.equal(balanceFigure(pending), 'NZ$4.40', 'the allowance is not in the balance yet');
      assert.equal((await site.refresh(suite.broker, planet, 10)).body.code, 'connection_revoked');

      clock.advance((LEASE_SECONDS + 1) * 1000);
      const done = await sitesPage(client);
      assert.equal(balanceFigure(done), 'NZ$4.90', 'after the lease: back at the last point the site reported');
      assert.doesNotMatch(done, /comes back to your balance/);
      await assertAudit();
    });

    test('a DISHONEST site after the reader revoked it: it takes at most its outstanding allowance', async () => {
      const { client } = await reader();
      let evil: TestVendor | undefined;
      let site: SiteWallet | undefined;
      // It answers the broker's release by claiming it spent all it was allowed.
      const release = await releaseServer(
        () => evil as TestVendor,
        (holder) => {
          const held = site?.held.get(holder.chainId);
          return held ? { index: held.index, payword: site?.w(held.index, holder.chainId) ?? '' } : undefined;
        },
      );
      try {
        evil = await vendor('evil', release.url);
        const bugle = await vendor('honest-bugle');
        site = await connected(client, evil, true);
        const balanceBefore = 500;
        const id = connectionIdOf(await sitesPage(client), `Vendor ${evil.id}`);
        await client.post(`/sites/${id}/revoke`, { csrf: csrfOf((await client.get('/sites')).text) });

        assert.equal((await site.refresh(suite.broker, evil, 0)).body.code, 'connection_revoked');
        const taken = await redeemAll(evil, site);
        // Spending its paywords anywhere else: another site's claim is refused.
        const elsewhere = await call(suite.broker.api, 'POST', `/chains/${site.chainId}/claim`, {
          token: bugle.apiKey,
          body: { proof: { index: site.allowance.index, payword: site.allowance.payword } },
        });
        assert.equal(elsewhere.status, 409, elsewhere.text);
        const exposure = taken;
        const balanceAfter = Number(balanceFigure(await walletPage(client))?.replace(/[^0-9]/g, ''));
        assert.equal(balanceAfter, balanceBefore - exposure);
        report('after revoke', exposure, balanceBefore);
        assert.equal(exposure, ALLOWANCE_MAX, 'exactly its outstanding allowance, never more');
        await assertAudit();
      } finally {
        release.server.close();
      }
    });

    test('a DISHONEST site after the reader’s connection moved on to a new chain and to another site', async () => {
      const { client } = await reader();
      const evil = await vendor('evil-moved'); // it never answers a release
      const bugle = await vendor('moved-bugle');
      const site = await connected(client, evil, true);
      const limits = await client.post('/sites/settings', {
        csrf: csrfOf((await client.get('/sites')).text),
        auto_pay: '0.10',
        daily_cap: '10.00',
      });
      assert.equal(limits.status, 303, 'a reader who reads a lot raises the daily limit');
      // The reader reads NZ$1.80 there, reported honestly; at 180 the chain cannot carry a full allowance and the
      // connection moves to a new chain; the old one ends at 180.
      for (const spent of [45, 90, 135]) assert.equal((await site.refresh(suite.broker, evil, spent)).status, 200);
      const oldChain = site.chainId;
      const moved = await site.refresh(suite.broker, evil, 180);
      assert.equal(moved.status, 200, moved.text);
      assert.notEqual(site.chainId, oldChain);
      const read = 180;
      // The reader reads at the Bugle now.
      const other = await connected(client, bugle, false);
      await other.refresh(suite.broker, bugle, 20);

      // The site keeps w_185 of the old chain and w_50 of the new one, and turns dishonest.
      const oldHeld = site.held.get(oldChain);
      assert.equal(oldHeld?.index, 185);
      const beyond = await call(suite.broker.api, 'POST', '/redemptions', {
        token: evil.apiKey,
        key: `evil-old-${seq}`,
        body: {
          items: [
            {
              chainId: oldChain,
              epoch: 1,
              from: { index: 0, payword: site.w(0, oldChain) },
              to: { index: 185, payword: site.w(185, oldChain) },
            },
          ],
        },
      });
      assert.equal(beyond.body.items[0].status, 'rejected', 'nothing past the point it reported');
      const honestPart = await call(suite.broker.api, 'POST', '/redemptions', {
        token: evil.apiKey,
        key: `evil-old-ok-${seq}`,
        body: {
          items: [
            {
              chainId: oldChain,
              epoch: 1,
              from: { index: 0, payword: site.w(0, oldChain) },
              to: { index: 180, payword: site.w(180, oldChain) },
            },
          ],
        },
      });
      assert.equal(honestPart.body.items[0].status, 'accepted', honestPart.text);
      for (const chainId of [oldChain, site.chainId]) {
        const claim = await call(suite.broker.api, 'POST', `/chains/${chainId}/claim`, {
          token: bugle.apiKey,
          body: { proof: { index: 1, payword: site.w(1, chainId) } },
        });
        assert.ok(claim.status === 403 || claim.status === 409, `the Bugle cannot take ${chainId}: ${claim.text}`);
      }
      const newTaken = await redeemAll(evil, site);
      const exposure = newTaken;
      const balance = Number(balanceFigure(await walletPage(client))?.replace(/[^0-9]/g, ''));
      assert.equal(
        balance,
        500 - read - exposure - 70,
        'the reader loses what it read, the Bugle’s allowance and the exposure',
      );
      report('after the connection moved on', exposure, 500 - read);
      assert.equal(exposure, ALLOWANCE_MAX);

      // Revoked now: the site's own release is never given, and after its lease nothing more comes out.
      const id = connectionIdOf(await sitesPage(client), `Vendor ${evil.id}`);
      await client.post(`/sites/${id}/revoke`, { csrf: csrfOf((await client.get('/sites')).text) });
      clock.advance((LEASE_SECONDS + 1) * 1000);
      await sitesPage(client);
      assert.equal(await redeemAll(evil, site), 0, 'nothing more after the revoke');
      await assertAudit();
    });

    test('the refund message of a coin for apps states the amount the wallet page showed', async () => {
      const { client, token } = await reader();
      const apiToken = await token();
      const shop = await vendor('coin-shop');
      const bought = await suite.broker.buyCoin(apiToken, { amount: 100 });
      assert.equal(bought.status, 201, bought.text);
      const { chainId, seed } = bought.body;
      const w = (k: number) => b64uEncode(paywordAt(b64uDecode(chainId, 16), b64uDecode(seed, 32), 100, k));
      const claim = await call(suite.broker.api, 'POST', `/chains/${chainId}/claim`, {
        token: shop.apiKey,
        body: { proof: { index: 38, payword: w(38) } },
      });
      assert.equal(claim.status, 200, claim.text);
      clock.advance((LEASE_SECONDS + 1) * 1000); // the shop never answers: the refund takes a forced start
      const wallet = await walletPage(client);
      assert.match(wallet, /Coins \(for apps\)/);
      const remaining = /data-label="Remaining" class="num">([^<]+)</.exec(wallet)?.[1];
      assert.equal(remaining, 'NZ$0.62');
      const raw = await client.get('/coins');
      const res = await client.post(`/coins/${chainId}/refund`, { csrf: csrfOf(raw.text) });
      assert.equal(res.status, 303, res.text);
      assert.match(res.location ?? '', /^\/coins\?refunded=/);
      const after = decodeEntities((await client.get(res.location ?? '')).text);
      assert.match(after, new RegExp(`${remaining?.replace('$', '\\$')} refunded to your card`));
      assert.equal(balanceFigure(after), 'NZ$0.00', 'a coin for apps is not part of the balance');
      assert.match(decodeEntities((await client.get('/history')).text), /NZ\$0\.62 refunded to your card/);
      await assertAudit();
    });

    /** Redeems everything the site holds beyond what it redeemed so far; the gross accepted. */
    test('each grant to a site gets a refresh token of its own (two devices); past ten the oldest retires', async () => {
      const { client } = await reader();
      const planet = await vendor('devices');
      const first = await connected(client, planet, true);
      const later: SiteWallet[] = [];
      for (let i = 0; i < TOKENS_PER_CONNECTION; i++) later.push(await connected(client, planet, false));
      const tokens = new Set([first, ...later].map((w) => w.refreshToken));
      assert.equal(tokens.size, TOKENS_PER_CONNECTION + 1, 'a new token per grant');
      const chains = new Set([first, ...later].map((w) => w.chainId));
      assert.equal(chains.size, 1, 'one connection, one chain');
      // The second grant's token still works after nine more grants; the first, eleven grants old, is retired.
      const second = later[0] as SiteWallet;
      assert.equal((await second.refresh(suite.broker, planet, 1)).status, 200);
      assert.equal((await (later.at(-1) as SiteWallet).refresh(suite.broker, planet, 1)).status, 200);
      const retired = await first.refresh(suite.broker, planet, 1);
      assert.equal(retired.status, 403);
      assert.equal(retired.body.code, 'connection_revoked');
      const kept = await suite.broker.database.db
        .selectFrom('connection_tokens')
        .innerJoin('connections', 'connections.id', 'connection_tokens.connection_id')
        .select('connection_tokens.token_hash')
        .where('connections.vendor_id', '=', planet.id)
        .execute();
      assert.equal(kept.length, TOKENS_PER_CONNECTION, 'at most ten tokens kept a connection');
      await assertAudit();
    });

    async function redeemAll(v: TestVendor, site: SiteWallet): Promise<number> {
      let total = 0;
      for (const [chainId, held] of site.held) {
        const res = await call(suite.broker.api, 'POST', '/redemptions', {
          token: v.apiKey,
          key: `all-${chainId}-${++seq}`,
          body: {
            items: [
              {
                chainId,
                epoch: held.epoch,
                from: { index: 0, payword: site.w(0, chainId) },
                to: { index: held.index, payword: site.w(held.index, chainId) },
              },
            ],
          },
        });
        assert.equal(res.status, 200, res.text);
        for (const item of res.body.items) if (item.status === 'accepted') total += item.amount;
      }
      return total;
    }
  });
}

function report(when: string, exposure: number, balance: number): void {
  const pct = Math.round((exposure / balance) * 1000) / 10;
  console.log(
    `exposure ${when}: ${formatAmount(exposure, 'NZD')} of ${formatAmount(balance, 'NZD')} balance (${pct}%)`,
  );
}
