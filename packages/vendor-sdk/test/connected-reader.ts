/**
 * A NetPay customer with a browser, for the server-side wallet tests: an account made through the broker's API
 * (its token reads the broker's figures), logged in on the broker's web pages in the browser, with money added
 * by card. It reads at test vendors the way a person does: typed URLs, clicks on the site's own pages, the connect
 * button, the "Read for" form, and it changes its limits or revokes a site on the broker's connected sites page.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { WALLET_SESSION_COOKIE } from '../src/index.ts';
import { Browser, inputValue, type Page, type RequestOptions } from './browser-client.ts';
import { GOOD_CARD, type TestVendor, type World } from './harness.ts';

/** Where a vendor is: its id at the broker and its base URL. */
export type VendorAt = Pick<TestVendor, 'id' | 'url'>;

const PASSWORD = 'correct horse battery staple';

/** The broker's figures for the customer (`GET {api}/balance`). */
export interface BrokerFigures {
  balance: number;
  sites: Array<{ vendorId: string; name: string; spentThisMonth: number; allowanceLeft: number; revoked: boolean }>;
  limits: { autoPayMaxMinor: number; dailyCapMinor: number };
}

/** A page of a vendor's article as the reader got it. */
export interface Read {
  status: number;
  page: Page;
  charged: boolean | undefined;
  /** The problem code of a refusal (JSON or the paywall's code). */
  code: string | undefined;
  /** Why the connected balance did not pay (the paywall's reason), if it says. */
  reason: string | undefined;
}

async function api(world: World, path: string, init: { method?: string; token?: string; body?: unknown } = {}) {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (init.token) headers.authorization = `Bearer ${init.token}`;
  if (init.body !== undefined) {
    headers['content-type'] = 'application/json';
    headers['idempotency-key'] = randomUUID();
  }
  const res = await fetch(`${world.brokerUrl}/api/v1${path}`, {
    method: init.method ?? 'GET',
    headers,
    ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as unknown) : undefined };
}

export class Reader {
  readonly browser = new Browser();
  private constructor(
    readonly world: World,
    readonly email: string,
    readonly token: string,
  ) {}

  /** A new customer, logged in at the broker in the browser, with `addMinor` added by card (0: none). */
  static async open(world: World, addMinor: number): Promise<Reader> {
    const email = `reader-${randomUUID()}@netpay.test`;
    assert.equal((await api(world, '/customers', { method: 'POST', body: { email, password: PASSWORD } })).status, 201);
    const session = await api(world, '/sessions', { method: 'POST', body: { email, password: PASSWORD } });
    const reader = new Reader(world, email, (session.body as { token: string }).token);
    await reader.#logIn();
    if (addMinor > 0) await reader.addMoney(addMinor);
    return reader;
  }

  /** The same customer on another device: a browser of its own (no cookies shared), logged in at the broker. */
  async anotherDevice(): Promise<Reader> {
    const device = new Reader(this.world, this.email, this.token);
    await device.#logIn();
    return device;
  }

  async #logIn(): Promise<void> {
    const login = await this.browser.get(`${this.world.brokerUrl}/login`);
    const done = await this.browser.post(`${this.world.brokerUrl}/login`, {
      csrf: inputValue(login.text, 'csrf') ?? '',
      email: this.email,
      password: PASSWORD,
    });
    assert.equal(done.status, 303, done.text.slice(0, 300));
  }

  async addMoney(amountMinor: number): Promise<void> {
    const res = await api(this.world, '/balance/top-ups', {
      method: 'POST',
      token: this.token,
      body: { amount: amountMinor, payment: { card: GOOD_CARD, saveCard: true } },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
  }

  /** What the broker says now: the NetPay balance and each connected site's figures. */
  async figures(): Promise<BrokerFigures> {
    const res = await api(this.world, '/balance', { token: this.token });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body as BrokerFigures;
  }

  async site(vendor: VendorAt) {
    const site = (await this.figures()).sites.find((s) => s.vendorId === vendor.id);
    assert.ok(site, `${vendor.id} is a connected site`);
    return site;
  }

  /** The browser's wallet session id at the vendors (one cookie jar for 127.0.0.1). */
  get session(): string {
    const id = this.browser.jar.get(WALLET_SESSION_COOKIE);
    assert.ok(id, 'the browser has a wallet session');
    return id;
  }

  /** Opens an article (by default as a click on the vendor's own front page). */
  async read(vendor: VendorAt, id: string, options: RequestOptions = {}): Promise<Read> {
    if (options.site === undefined && options.from === undefined) options = { ...options, from: `${vendor.url}/` };
    return this.#read(await this.browser.get(`${vendor.url}/articles/${id}`, options));
  }

  #read(page: Page): Read {
    let charged: boolean | undefined;
    let code: string | undefined;
    try {
      const json = JSON.parse(page.text) as { paid?: { charged: boolean }; code?: string };
      charged = json.paid?.charged;
      code = json.code;
    } catch {
      code = /data-netpay-code="([a-z_]+)"/.exec(page.text)?.[1];
    }
    const reason = /data-netpay-reason="([a-z_]+)"/.exec(page.text)?.[1];
    return { status: page.status, page, charged, code, reason };
  }

  /**
   * The paywall's "Pay with NetPay" button: vendor connect → broker (a consent page the first time, to be
   * accepted; none after that) → callback → back on the article, paid. Returns the article page and whether the
   * broker showed a consent page.
   */
  async connect(vendor: VendorAt, id: string): Promise<{ read: Read; consent: boolean }> {
    const returnTo = `/articles/${id}`;
    const hops = await this.browser.follow(
      `${vendor.url}/netpay/connect?return_to=${encodeURIComponent(returnTo)}`,
      8,
      { from: `${vendor.url}${returnTo}`, user: true },
    );
    let last = hops.at(-1) as Page;
    let consent = false;
    if (last.url.startsWith(`${this.world.brokerUrl}/connect?`)) {
      assert.equal(last.status, 200, last.text.slice(0, 500));
      consent = true;
      const answer = await this.browser.post(`${this.world.brokerUrl}/connect`, {
        csrf: inputValue(last.text, 'csrf') ?? '',
        vendor: inputValue(last.text, 'vendor') ?? '',
        return: inputValue(last.text, 'return') ?? '',
        state: inputValue(last.text, 'state') ?? '',
        action: 'connect',
      });
      assert.equal(answer.status, 303, answer.text.slice(0, 500));
      let next = answer.location;
      while (next) {
        last = await this.browser.get(next);
        next = last.status >= 300 && last.status < 400 ? last.location : null;
      }
    }
    assert.equal(
      last.url,
      `${vendor.url}${returnTo}`,
      `back on the article (${last.status} ${last.text.slice(0, 300)})`,
    );
    return { read: this.#read(last), consent };
  }

  /** Presses the paywall's "Read for …" button (the same-site form) and follows it to the article. */
  async pressRead(vendor: VendorAt, paywall: Page): Promise<Read> {
    const form = payFormOf(paywall.text);
    assert.ok(form, 'the paywall has the "Read for" form');
    const answer = await this.browser.post(`${vendor.url}${form.action}`, form.fields, { from: paywall.url });
    assert.equal(answer.status, 303, answer.text.slice(0, 300));
    return this.#read(await this.browser.get(answer.location ?? ''));
  }

  /** The connected sites page's form for a site: its action path. */
  async #siteForm(vendor: VendorAt, what: 'revoke' | 'limit'): Promise<{ action: string; csrf: string }> {
    const page = await this.browser.get(`${this.world.brokerUrl}/sites`);
    assert.equal(page.status, 200);
    const row = page.text.slice(page.text.indexOf(`Vendor ${vendor.id}<`));
    const action = new RegExp(`action="(/sites/[^"/]+/${what})"`).exec(row)?.[1];
    assert.ok(action, `the ${what} form of ${vendor.id}`);
    return { action, csrf: inputValue(page.text, 'csrf') ?? '' };
  }

  async revoke(vendor: VendorAt): Promise<void> {
    const { action, csrf } = await this.#siteForm(vendor, 'revoke');
    const done = await this.browser.post(`${this.world.brokerUrl}${action}`, { csrf });
    assert.equal(done.status, 303, done.text.slice(0, 300));
  }

  async setSiteCap(vendor: VendorAt, dollars: string): Promise<void> {
    const { action, csrf } = await this.#siteForm(vendor, 'limit');
    const done = await this.browser.post(`${this.world.brokerUrl}${action}`, { csrf, site_cap: dollars });
    assert.equal(done.status, 303, done.text.slice(0, 300));
  }

  async setLimits(autoPay: string, dailyCap: string): Promise<void> {
    const page = await this.browser.get(`${this.world.brokerUrl}/sites`);
    const done = await this.browser.post(`${this.world.brokerUrl}/sites/settings`, {
      csrf: inputValue(page.text, 'csrf') ?? '',
      auto_pay: autoPay,
      daily_cap: dailyCap,
    });
    assert.equal(done.status, 303, done.text.slice(0, 300));
  }

  /** The broker's history page, as text. */
  async history(): Promise<string> {
    const page = await this.browser.get(`${this.world.brokerUrl}/history`);
    assert.equal(page.status, 200);
    return page.text;
  }
}

/** The "Read for …" form of a paywall: where it posts and its fields. */
export function payFormOf(html: string): { action: string; fields: Record<string, string> } | undefined {
  const form = /<form method="post" action="([^"]+)"[^>]*>([\s\S]*?)<\/form>/.exec(html);
  if (!form) return undefined;
  const fields: Record<string, string> = {};
  for (const name of ['csrf', 'return_to', 'price']) fields[name] = inputValue(form[2] ?? '', name) ?? '';
  return { action: form[1] ?? '', fields };
}
