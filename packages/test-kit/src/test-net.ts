// A tiny real broker and vendor on one loopback HTTP server, for the wallet's tests. They are test peers that
// speak the wire protocol with the protocol package's own functions (touchstones signed with signTouchstone,
// paywords checked with verifyPaywordB64), not mocks of the real services. Vendors share one spend record per
// chain, as if every move between them released at the exact last index. Like real vendors (§4), they serve free a
// request that presents the exact point that bought the same resource on that chain (an entitlement).
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type ErrorCode,
  type Touchstone,
  b64uEncode,
  formatReceipt,
  formatWwwAuthenticate,
  generateSigningKey,
  isNetPayAuthorization,
  parseAuthorization,
  problemDetails,
  signTouchstone,
  verifyPaywordB64,
} from '@netpay/protocol';

export const TEST_CARD = { number: '4242424242424242', expiry: '12/30', cvc: '123' };
export const DECLINED_CARD = { number: '4000000000000002', expiry: '12/30', cvc: '123' };

export interface ReceivedPayment {
  realm: string;
  /** The path after the realm, e.g. `articles/7`. */
  resource: string;
  chain: string;
  index: number;
  accepted: boolean;
  code?: string;
  /** A re-read: the point that bought this resource, presented again and served free. */
  entitled?: boolean;
}

export interface TestNetOptions {
  /** Price per realm (default daily-planet 5, the-bugle 3). */
  prices?: Record<string, number>;
  currency?: string;
  /** Touchstone lifetime (default one year). */
  coinTtlMs?: number;
  maxChainLength?: number;
  /** §4 v1.1: how far beyond their last index the vendors verify a payword (default 1000). */
  maxStepsAhead?: number;
  /** Static files served as they are (browser test). */
  statics?: Record<string, { type: string; body: string | Uint8Array }>;
}

export interface TestNet {
  url: string;
  brokerUrl: string;
  prices: Record<string, number>;
  /** Every paid request a vendor received, in order. */
  received: ReceivedPayment[];
  /** Last spent (index, payword) per chain, shared by all vendors. */
  spends: Map<string, { index: number; payword: string }>;
  chains: Map<string, Touchstone>;
  /** Per `chain realm/resource`, the point that bought it (clear it to play a vendor that forgot). */
  entitlements: Map<string, { index: number; payword: string }>;
  /** Purchases the broker charged, per idempotency key. */
  charges: number;
  /** Bodies of every POST /coins, as sent. */
  buyBodies: unknown[];
  faults: {
    /** Answer this many paid requests with 503 broker_unavailable. */
    unavailable: number;
    /** Process the next purchase, then drop the connection without answering. */
    dropNextBuyResponse: boolean;
    /** Sign the next touchstone with a wrong anchor. */
    badNextTouchstone: boolean;
    /** Answer the next paid request too_far_ahead with this lastIndex, whatever it presents (a lying vendor). */
    tooFarAheadLastIndex: number | undefined;
  };
  /** Simulates a spend by someone else (another copy of the wallet): moves the vendors' last index forward. */
  spendElsewhere(chainId: string, toIndex: number, payword: string): void;
  close(): Promise<void>;
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? JSON.parse(text) : undefined;
}

function rfc3339(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19)}Z`;
}

export async function startTestNet(options: TestNetOptions = {}): Promise<TestNet> {
  const currency = options.currency ?? 'NZD';
  const prices = options.prices ?? { 'daily-planet': 5, 'the-bugle': 3 };
  const key = generateSigningKey();
  const users = new Map<string, string>();
  const tokens = new Map<string, string>();
  const idempotency = new Map<string, { body: string; status: number; response: unknown }>();
  const coinsOf = new Map<string, string[]>();
  const refunded = new Set<string>();
  let base = '';

  const net: TestNet = {
    url: '',
    brokerUrl: '',
    prices,
    received: [],
    spends: new Map(),
    chains: new Map(),
    entitlements: new Map(),
    charges: 0,
    buyBodies: [],
    faults: { unavailable: 0, dropNextBuyResponse: false, badNextTouchstone: false, tooFarAheadLastIndex: undefined },
    spendElsewhere(chainId, toIndex, payword) {
      const last = net.spends.get(chainId)?.index ?? 0;
      if (toIndex > last) net.spends.set(chainId, { index: toIndex, payword });
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };

  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };
  const problem = (res: ServerResponse, code: ErrorCode, extra?: Record<string, unknown>, headers = {}) => {
    const p = problemDetails(code, undefined, extra);
    send(res, p.status, p, { 'content-type': 'application/problem+json', ...headers });
  };
  const customer = (req: IncomingMessage): string | undefined => {
    const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
    return m ? tokens.get(m[1] as string) : undefined;
  };

  async function broker(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const api = '/api/v1';
    if (req.method === 'GET' && path === '/.well-known/netpay') {
      return send(res, 200, {
        broker: base,
        currency,
        keys: [{ keyId: 'tk1', alg: 'Ed25519', publicKey: b64uEncode(key.publicKey) }],
        feeBps: 0,
        maxChainLength: options.maxChainLength ?? 100_000,
        api: base + api,
      });
    }
    if (req.method === 'POST' && path === `${api}/customers`) {
      const { email, password } = (await readBody(req)) as { email: string; password: string };
      if (users.has(email)) return problem(res, 'email_taken');
      users.set(email, password);
      return send(res, 201, { email });
    }
    if (req.method === 'POST' && path === `${api}/sessions`) {
      const { email, password } = (await readBody(req)) as { email: string; password: string };
      if (users.get(email) !== password) return problem(res, 'invalid_credentials');
      const token = b64uEncode(crypto.getRandomValues(new Uint8Array(16)));
      tokens.set(token, email);
      return send(res, 200, { token });
    }
    const who = customer(req);
    if (path.startsWith(`${api}/coins`) || path === `${api}/history`) {
      if (!who) return problem(res, 'unauthorized');
    }
    if (req.method === 'POST' && path === `${api}/coins`) {
      const body = (await readBody(req)) as {
        amount: number;
        unit?: number;
        chainId: string;
        anchor: string;
        payment: { card: { number: string } };
      };
      net.buyBodies.push(body);
      const ikey = req.headers['idempotency-key'] as string;
      const text = JSON.stringify(body);
      const seen = idempotency.get(ikey);
      if (seen) {
        if (seen.body !== text) return problem(res, 'idempotency_conflict');
        return send(res, seen.status, seen.response);
      }
      if (body.payment.card.number === DECLINED_CARD.number) {
        const p = problemDetails('card_declined');
        idempotency.set(ikey, { body: text, status: 402, response: p });
        return send(res, 402, p);
      }
      const unit = body.unit ?? 1;
      const now = Date.now();
      const touchstone = signTouchstone(
        {
          chainId: body.chainId,
          anchor: net.faults.badNextTouchstone ? b64uEncode(new Uint8Array(32)) : body.anchor,
          length: body.amount / unit,
          unit,
          currency,
          broker: base,
          keyId: 'tk1',
          issuedAt: rfc3339(now),
          expiresAt: rfc3339(now + (options.coinTtlMs ?? 365 * 86_400_000)),
        },
        key.privateSeed,
      );
      net.faults.badNextTouchstone = false;
      net.charges++;
      net.chains.set(body.chainId, touchstone);
      coinsOf.set(who as string, [...(coinsOf.get(who as string) ?? []), body.chainId]);
      const response = { chainId: body.chainId, touchstone };
      idempotency.set(ikey, { body: text, status: 201, response });
      if (net.faults.dropNextBuyResponse) {
        net.faults.dropNextBuyResponse = false;
        req.socket.destroy();
        return;
      }
      return send(res, 201, response);
    }
    if (req.method === 'GET' && path === `${api}/coins`) {
      const coins = (coinsOf.get(who as string) ?? []).map((id) => {
        const t = net.chains.get(id) as Touchstone;
        const spent = net.spends.get(id)?.index ?? 0;
        return {
          chainId: id,
          value: t.length * t.unit,
          unit: t.unit,
          length: t.length,
          spentIndex: spent,
          holder: null,
          status: refunded.has(id) ? 'refunded' : spent >= t.length ? 'exhausted' : 'active',
          issuedAt: t.issuedAt,
          expiresAt: t.expiresAt,
          remaining: refunded.has(id) ? 0 : (t.length - spent) * t.unit,
        };
      });
      return send(res, 200, { coins });
    }
    if (req.method === 'GET' && path === `${api}/history`) return send(res, 200, { events: [] });
    const refund = new RegExp(`^${api}/coins/([^/]+)/refund$`).exec(path);
    if (req.method === 'POST' && refund) {
      const id = decodeURIComponent(refund[1] as string);
      const t = net.chains.get(id);
      if (!t || !coinsOf.get(who as string)?.includes(id) || refunded.has(id)) return problem(res, 'not_refundable');
      refunded.add(id);
      const last = net.spends.get(id)?.index ?? 0;
      return send(res, 200, { chainId: id, refunded: (t.length - last) * t.unit, releasedIndex: last });
    }
    return problem(res, 'not_found');
  }

  function vendor(req: IncomingMessage, res: ServerResponse, realm: string, resource: string) {
    const price = prices[realm];
    if (price === undefined) return problem(res, 'not_found');
    const challenge = formatWwwAuthenticate({ realm, price, currency, broker: base });
    const auth = req.headers.authorization;
    const refuse = (code: ErrorCode, extra?: Record<string, unknown>) =>
      problem(res, code, extra, code === 'bad_request' ? {} : { 'www-authenticate': challenge });
    if (!isNetPayAuthorization(auth)) {
      return problem(
        res,
        'payment_required',
        { price, currency, vendor: realm, broker: base, connect: `${base}/connect` },
        { 'www-authenticate': challenge },
      );
    }
    let h: ReturnType<typeof parseAuthorization>;
    try {
      h = parseAuthorization(auth);
    } catch {
      return refuse('bad_request');
    }
    const record = (accepted: boolean, code?: string) => {
      const r: ReceivedPayment = { realm, resource, chain: h.chain, index: h.index, accepted };
      if (code) r.code = code;
      net.received.push(r);
    };
    const entitlementKey = `${h.chain} ${realm}/${resource}`;
    const owned = net.entitlements.get(entitlementKey);
    const known = net.chains.get(h.chain);
    if (known && owned?.index === h.index && owned.payword === h.payword) {
      // Checked before anything else, as a real vendor does: a re-read needs neither the broker nor a lease.
      net.received.push({ realm, resource, chain: h.chain, index: h.index, accepted: true, entitled: true });
      const lastIndex = net.spends.get(h.chain)?.index ?? 0;
      const balance = (known.length - lastIndex) * known.unit;
      return send(
        res,
        200,
        { realm, resource, title: `Article ${resource} of ${realm}` },
        { 'netpay-receipt': formatReceipt({ chain: h.chain, index: lastIndex, balance }) },
      );
    }
    if (net.faults.unavailable > 0) {
      net.faults.unavailable--;
      record(false, 'broker_unavailable');
      return refuse('broker_unavailable');
    }
    const t = net.chains.get(h.chain);
    if (!t || refunded.has(h.chain)) {
      record(false, 'unknown_chain');
      return refuse('unknown_chain');
    }
    if (Date.parse(t.expiresAt) <= Date.now()) {
      record(false, 'chain_expired');
      return refuse('chain_expired');
    }
    const units = price / t.unit;
    const last = net.spends.get(h.chain) ?? { index: 0, payword: t.anchor };
    if (last.index >= t.length || h.index > t.length) {
      record(false, 'chain_exhausted');
      return refuse('chain_exhausted');
    }
    if (h.index <= last.index) {
      record(false, 'already_spent');
      return refuse('already_spent', { lastIndex: last.index });
    }
    const lying = net.faults.tooFarAheadLastIndex;
    if (lying !== undefined || h.index - last.index > Math.max(options.maxStepsAhead ?? 1000, units)) {
      net.faults.tooFarAheadLastIndex = undefined;
      record(false, 'too_far_ahead');
      return refuse('too_far_ahead', { lastIndex: lying ?? last.index });
    }
    if (!Number.isInteger(units) || h.index - last.index < units) {
      record(false, 'insufficient_amount');
      return refuse('insufficient_amount');
    }
    if (!verifyPaywordB64({ chainId: h.chain, known: last, presented: { index: h.index, payword: h.payword } })) {
      record(false, 'invalid_payword');
      return refuse('invalid_payword');
    }
    net.spends.set(h.chain, { index: h.index, payword: h.payword });
    net.entitlements.set(entitlementKey, { index: h.index, payword: h.payword });
    record(true);
    send(
      res,
      200,
      { realm, resource, title: `Article ${resource} of ${realm}` },
      { 'netpay-receipt': formatReceipt({ chain: h.chain, index: h.index, balance: (t.length - h.index) * t.unit }) },
    );
  }

  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const handle = async () => {
      const file = options.statics?.[path];
      if (file) {
        res.writeHead(200, { 'content-type': file.type });
        return res.end(file.body);
      }
      if (path === '/free') return send(res, 200, { free: true });
      if (path === '/other-402') {
        res.writeHead(402, { 'www-authenticate': 'Bearer realm="x"', 'content-type': 'text/plain' });
        return res.end('pay some other way');
      }
      const v = /^\/v\/([a-z0-9-]+)\/(.+)$/.exec(path);
      if (v) return vendor(req, res, v[1] as string, v[2] as string);
      return broker(req, res, path);
    };
    handle().catch((err) => {
      res.writeHead(500);
      res.end(String(err));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  net.url = base;
  net.brokerUrl = base;
  return net;
}
