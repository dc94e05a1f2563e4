import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { b64uDecode, PaywordChain, parseWwwAuthenticate } from '@netpay/protocol';
import {
  challengeHeader,
  checkPayment,
  claimRefusal,
  createNetPayVendor,
  type ChainView,
  connectUrl,
  paymentProblem,
  paymentRequired,
  prefersHtml,
  RemoteError,
  type SpendStore,
  verifiesAtOrBelow,
} from '../src/index.ts';

const chain = PaywordChain.generate(20);
const NOW = Date.parse('2026-11-24T00:00:00Z');

function view(overrides: Partial<ChainView> = {}, entitled: string[] = []): ChainView {
  return {
    chainId: chain.chainId,
    unit: 1,
    length: 20,
    currency: 'NZD',
    expiresAtMs: NOW + 86_400_000,
    lastIndex: 5,
    lastPayword: chain.payword(5),
    lastResource: 'GET /a/5',
    knownPoints: [
      { index: 0, payword: chain.payword(0) },
      { index: 5, payword: chain.payword(5) },
    ],
    entitled: (r) => entitled.includes(r),
    accepting: true,
    ...overrides,
  };
}

const ctx = { nowMs: NOW, currency: 'NZD' };
const pay = (index: number, resource = 'GET /a/x', priceMinor = 1, payword = chain.payword(index)) => ({
  index,
  payword,
  resource,
  priceMinor,
});

describe('checkPayment (§4 rules as a pure function)', () => {
  it('accepts the next index and counts the units', () => {
    assert.deepEqual(checkPayment(view(), pay(6), ctx), { kind: 'pay', units: 1, amountMinor: 1 });
    assert.deepEqual(checkPayment(view(), pay(8, 'r', 3), ctx), { kind: 'pay', units: 3, amountMinor: 3 });
  });
  it('accepts and records units past the price (resynchronisation)', () => {
    assert.deepEqual(checkPayment(view(), pay(9, 'r', 1), ctx), { kind: 'pay', units: 4, amountMinor: 4 });
  });
  it('serves a retry of the last payment for the same resource free', () => {
    assert.deepEqual(checkPayment(view(), pay(5, 'GET /a/5'), ctx), { kind: 'retry' });
  });
  it('a retry for another resource is already_spent with lastIndex', () => {
    const c = checkPayment(view(), pay(5, 'GET /other'), ctx);
    assert.equal(c.kind, 'reject');
    assert.equal(c.kind === 'reject' && c.code, 'already_spent');
    assert.deepEqual(c.kind === 'reject' && c.extra, { lastIndex: 5 });
  });
  it('an entitled resource is free with a payword at or below last', () => {
    assert.deepEqual(checkPayment(view({}, ['GET /old']), pay(3, 'GET /old'), ctx), { kind: 'entitled' });
    assert.deepEqual(checkPayment(view({}, ['GET /old']), pay(5, 'GET /old'), ctx), { kind: 'entitled' });
    const forged = checkPayment(view({}, ['GET /old']), pay(3, 'GET /old', 1, chain.payword(4)), ctx);
    assert.equal(forged.kind === 'reject' && forged.code, 'already_spent');
  });
  it('refuses expired chains, other currencies, odd prices, exhausted chains', () => {
    const code = (c: ReturnType<typeof checkPayment>) => (c.kind === 'reject' ? c.code : c.kind);
    assert.equal(code(checkPayment(view({ expiresAtMs: NOW }), pay(6), ctx)), 'chain_expired');
    assert.equal(code(checkPayment(view({ currency: 'AUD' }), pay(6), ctx)), 'currency_mismatch');
    assert.equal(code(checkPayment(view({ unit: 2 }), pay(6, 'r', 3), ctx)), 'insufficient_amount');
    assert.equal(code(checkPayment(view(), pay(21, 'r', 1, chain.payword(20)), ctx)), 'chain_exhausted');
    assert.equal(
      code(checkPayment(view({ lastIndex: 19, lastPayword: chain.payword(19) }), pay(20, 'r', 2), ctx)),
      'chain_exhausted',
    );
    assert.equal(code(checkPayment(view(), pay(4), ctx)), 'already_spent');
    assert.equal(code(checkPayment(view(), pay(6, 'r', 2), ctx)), 'insufficient_amount');
    assert.equal(code(checkPayment(view(), pay(6, 'r', 1, chain.payword(7)), ctx)), 'invalid_payword');
  });
  it('asks for a claim only for a payword that verifies against what it knows', () => {
    assert.deepEqual(checkPayment(view({ accepting: false }), pay(6), ctx), { kind: 'claim' });
    const forged = checkPayment(view({ accepting: false }), pay(6, 'r', 1, chain.payword(8)), ctx);
    assert.equal(forged.kind === 'reject' && forged.code, 'invalid_payword');
  });
});

describe('bounded work per request (§4 v1.1)', () => {
  const long = PaywordChain.generate(3000);
  const longView = (overrides: Partial<ChainView> = {}) =>
    view({
      chainId: long.chainId,
      length: 3000,
      lastIndex: 5,
      lastPayword: long.payword(5),
      knownPoints: [
        { index: 0, payword: long.payword(0) },
        { index: 5, payword: long.payword(5) },
      ],
      ...overrides,
    });
  const forged = new Uint8Array(32).fill(7);
  const at = (index: number, payword = long.payword(index), priceMinor = 1, resource = 'r') => ({
    index,
    payword,
    resource,
    priceMinor,
  });

  it('refuses a payword more than maxStepsAhead beyond the last index before hashing, with lastIndex', () => {
    const meter = { hashSteps: 0 };
    const c = checkPayment(longView(), at(1006, forged), { ...ctx, meter });
    assert.deepEqual(c, {
      kind: 'reject',
      code: 'too_far_ahead',
      detail: "index 1006 is 1001 steps beyond this vendor's last index; at most 1000",
      extra: { lastIndex: 5 },
    });
    assert.equal(meter.hashSteps, 0);
    // At the bound it is verified: a genuine payword pays, a forged one costs exactly the bound.
    assert.deepEqual(checkPayment(longView(), at(1005), { ...ctx, meter }), {
      kind: 'pay',
      units: 1000,
      amountMinor: 1000,
    });
    assert.equal(meter.hashSteps, 1000);
    const bad = checkPayment(longView(), at(1005, forged), { ...ctx, meter });
    assert.equal(bad.kind === 'reject' && bad.code, 'invalid_payword');
    assert.equal(meter.hashSteps, 2000);
  });

  it('refuses before any claim, and a larger maxStepsAhead moves the bound', () => {
    const far = checkPayment(longView({ accepting: false }), at(2000), ctx);
    assert.equal(far.kind === 'reject' && far.code, 'too_far_ahead');
    assert.deepEqual(checkPayment(longView({ accepting: false }), at(2000), { ...ctx, maxStepsAhead: 2000 }), {
      kind: 'claim',
    });
  });

  it('an index past the chain is chain_exhausted, whatever else is wrong with it', () => {
    const c = checkPayment(longView(), at(3001, forged), ctx);
    assert.equal(c.kind === 'reject' && c.code, 'chain_exhausted');
  });

  it('never bounds below the price in units', () => {
    const meter = { hashSteps: 0 };
    const c = checkPayment(longView(), at(1505, long.payword(1505), 1500), { ...ctx, meter });
    assert.deepEqual(c, { kind: 'pay', units: 1500, amountMinor: 1500 });
    assert.equal(meter.hashSteps, 1500);
  });

  it('an entitlement far below the last index is not hashed beyond the bound', () => {
    const v = longView({
      lastIndex: 2500,
      lastPayword: long.payword(2500),
      knownPoints: [
        { index: 0, payword: long.payword(0) },
        { index: 2500, payword: long.payword(2500) },
      ],
    });
    const entitled = { ...v, entitled: (r: string) => r === 'GET /old' };
    const meter = { hashSteps: 0 };
    const c = checkPayment(entitled, at(2000, long.payword(2000), 1, 'GET /old'), { ...ctx, meter });
    assert.equal(c.kind === 'reject' && c.code, 'already_spent');
    assert.equal(meter.hashSteps, 0);
    assert.deepEqual(checkPayment(entitled, at(900, long.payword(900), 1, 'GET /old'), { ...ctx, meter }), {
      kind: 'entitled',
    });
    assert.equal(meter.hashSteps, 900);
  });
});

describe('vendor options', () => {
  it('refuses maxStepsAhead below 1000', () => {
    const options = {
      vendorId: 'v',
      brokerUrl: 'http://127.0.0.1:1',
      apiKey: 'k',
      signingKey: { privateSeed: new Uint8Array(32), keyId: 'k1' },
      releaseUrl: 'http://127.0.0.1:1/netpay/release',
      // The store is not touched while the options are checked.
      store: undefined as unknown as SpendStore,
    };
    assert.throws(() => createNetPayVendor({ ...options, maxStepsAhead: 999 }), RangeError);
    assert.throws(() => createNetPayVendor({ ...options, maxStepsAhead: 1000.5 }), RangeError);
  });
});

describe('claim refusals become §4 answers', () => {
  const facts = { vendorId: 'v', priceMinor: 1, currency: 'NZD', brokerUrl: 'http://127.0.0.1:1' };
  const refused = (status: number, code: string) =>
    new RemoteError('refused', `HTTP ${status} ${code}`, status, code as never);
  it('invalid_payword stays invalid_payword; chain_refunding is unknown_chain; an outage is 503', () => {
    const bad = claimRefusal(facts, refused(402, 'invalid_payword'));
    assert.deepEqual([bad.status, bad.body.code], [402, 'invalid_payword']);
    assert.ok(bad.headers['www-authenticate']);
    const refunding = claimRefusal(facts, refused(409, 'chain_refunding'));
    assert.deepEqual([refunding.status, refunding.body.code], [402, 'unknown_chain']);
    const gone = claimRefusal(facts, refused(404, 'unknown_chain'));
    assert.deepEqual([gone.status, gone.body.code], [402, 'unknown_chain']);
    const down = claimRefusal(facts, new RemoteError('unreachable', 'ECONNREFUSED'));
    assert.deepEqual([down.status, down.body.code], [503, 'broker_unavailable']);
  });
});

describe('verifiesAtOrBelow', () => {
  it('hashes down to the nearest known point, equality at a known index', () => {
    const points = [
      { index: 0, payword: chain.payword(0) },
      { index: 10, payword: chain.payword(10) },
    ];
    assert.equal(verifiesAtOrBelow(chain.chainId, points, 10, chain.payword(10)), true);
    assert.equal(verifiesAtOrBelow(chain.chainId, points, 12, chain.payword(12)), true);
    assert.equal(verifiesAtOrBelow(chain.chainId, points, 3, chain.payword(3)), true);
    assert.equal(verifiesAtOrBelow(chain.chainId, points, 3, chain.payword(2)), false);
    assert.equal(verifiesAtOrBelow(chain.chainId, points, 10, chain.payword(9)), false);
  });
});

describe('challenge', () => {
  const facts = { vendorId: 'daily-planet', priceMinor: 5, currency: 'NZD', brokerUrl: 'http://127.0.0.1:4000' };
  it('formats WWW-Authenticate exactly as §4', () => {
    assert.equal(
      challengeHeader(facts),
      'NetPay realm="daily-planet", price="5", currency="NZD", broker="http://127.0.0.1:4000"',
    );
    assert.deepEqual(parseWwwAuthenticate(challengeHeader(facts)), {
      realm: 'daily-planet',
      price: 5,
      currency: 'NZD',
      broker: 'http://127.0.0.1:4000',
    });
  });
  it('gives a payment_required problem with price, currency, vendor, broker, connect', () => {
    const d = paymentRequired(facts, 'GET /a/1', 'application/json');
    assert.equal(d.status, 402);
    assert.equal(d.html, undefined);
    assert.equal(d.headers['content-type'], 'application/problem+json');
    assert.equal(d.body.type, 'urn:netpay:error:payment_required');
    assert.equal(d.body.code, 'payment_required');
    assert.equal(d.body.price, 5);
    assert.equal(d.body.currency, 'NZD');
    assert.equal(d.body.vendor, 'daily-planet');
    assert.equal(d.body.broker, 'http://127.0.0.1:4000');
    assert.equal(d.body.connect, connectUrl(facts.brokerUrl));
    assert.equal(d.body.connect, 'http://127.0.0.1:4000/connect');
  });
  it('gives browsers an HTML paywall with a Pay with NetPay button', () => {
    const d = paymentRequired(facts, 'GET /a/1', 'text/html,application/xhtml+xml,*/*;q=0.8');
    assert.match(d.html ?? '', /Pay with NetPay/);
    assert.match(d.html ?? '', /NZ\$0\.05/);
    assert.match(d.html ?? '', /href="http:\/\/127\.0\.0\.1:4000\/connect\?vendor=daily-planet"/);
    assert.equal(d.headers['www-authenticate']?.startsWith('NetPay realm='), true);
  });
  it('negotiates Accept', () => {
    assert.equal(prefersHtml(undefined), false);
    assert.equal(prefersHtml('*/*'), false);
    assert.equal(prefersHtml('application/json, text/html;q=0.5'), false);
    assert.equal(prefersHtml('text/html'), true);
  });
  it('problems carry the challenge and registered statuses', () => {
    const p = paymentProblem(facts, 'already_spent', 'x', { lastIndex: 3 });
    assert.equal(p.status, 402);
    assert.equal(p.body.lastIndex, 3);
    assert.ok(p.headers['www-authenticate']);
    assert.equal(paymentProblem(facts, 'bad_request').status, 400);
    assert.equal(paymentProblem(facts, 'broker_unavailable').status, 503);
  });
  it('decodes test helpers', () => {
    assert.equal(b64uDecode(chain.b64(1), 32).length, 32);
  });
});
