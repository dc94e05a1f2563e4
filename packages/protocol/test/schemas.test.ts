import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TSchema } from '@sinclair/typebox';
import {
  BuyCoinRequestSchema,
  BuyCoinResponseSchema,
  CheckpointRequestSchema,
  CheckpointResponseSchema,
  ClaimResponseSchema,
  CoinListSchema,
  CreateCustomerRequestSchema,
  CreateSessionRequestSchema,
  checkWire,
  DiscoverySchema,
  ErrorCodeSchema,
  HistorySchema,
  HolderCertificateSchema,
  PaymentRequiredProblemSchema,
  ProblemSchema,
  ProtocolError,
  parseWire,
  problemDetails,
  RedemptionRequestSchema,
  RedemptionResponseSchema,
  RefundResponseSchema,
  ReleaseRequestSchema,
  ReleaseResponseSchema,
  ReleaseStatementSchema,
  SessionResponseSchema,
  TouchstoneSchema,
  VendorAccountSchema,
  VendorDirectoryEntrySchema,
  ConnectionGrantResponseSchema,
  AllowanceRequestSchema,
  AllowanceResponseSchema,
} from '../src/index.ts';
import { vectors } from './vectors.ts';

const t = vectors.touchstone;
const [h1, h2] = vectors.holderCerts;
const r = vectors.release;
const p = vectors.chain.paywords as string[];
const key = { keyId: 'bk1', alg: 'Ed25519', publicKey: vectors.keys.broker.publicKey };
const card = { number: '4242 4242 4242 4242', expiry: '12/30', cvc: '123' };

/** One valid example per schema; each must pass, and each must fail with an extra or a mistyped member. */
const examples: [string, TSchema, Record<string, unknown>][] = [
  ['Touchstone', TouchstoneSchema, t],
  ['HolderCertificate', HolderCertificateSchema, h1],
  ['HolderCertificate (epoch 2)', HolderCertificateSchema, h2],
  ['ReleaseStatement', ReleaseStatementSchema, r],
  [
    'Discovery',
    DiscoverySchema,
    {
      broker: 'https://broker.example',
      currency: 'NZD',
      keys: [key],
      feeBps: 250,
      maxChainLength: 100000,
      api: 'https://broker.example/api',
    },
  ],
  [
    'VendorDirectoryEntry',
    VendorDirectoryEntrySchema,
    {
      vendorId: 'daily-planet',
      name: 'The Daily Planet',
      url: 'http://localhost:4001',
      releaseUrl: 'http://localhost:4001/netpay/release',
      keys: [{ ...key, keyId: 'dp1', publicKey: vectors.keys['daily-planet'].publicKey }],
    },
  ],
  [
    'ClaimResponse (forced)',
    ClaimResponseSchema,
    {
      touchstone: t,
      holder: h2,
      previous: { vendorId: 'daily-planet', releaseUrl: 'https://dp.example/release', epoch: 1 },
      start: { index: 0, payword: p[0] },
    },
  ],
  ['ClaimResponse (first)', ClaimResponseSchema, { touchstone: t, holder: h1, previous: null, start: null }],
  ['CheckpointRequest', CheckpointRequestSchema, { epoch: 1, index: 5, payword: p[5] }],
  ['CheckpointResponse', CheckpointResponseSchema, { holder: h1 }],
  [
    'RedemptionRequest',
    RedemptionRequestSchema,
    {
      items: [
        { chainId: t.chainId, epoch: 1, from: { index: 0, payword: p[0] }, to: { index: 7, payword: p[7] } },
        {
          chainId: t.chainId,
          epoch: 2,
          from: { index: 7, payword: p[7], release: r },
          to: { index: 9, payword: p[9] },
        },
      ],
    },
  ],
  [
    'RedemptionResponse',
    RedemptionResponseSchema,
    {
      redemptionId: 'r_1',
      items: [
        { chainId: t.chainId, epoch: 1, status: 'accepted', amount: 7, fee: 0 },
        { chainId: t.chainId, epoch: 2, status: 'rejected', amount: 0, fee: 0, code: 'overlap' },
      ],
      credited: 7,
    },
  ],
  [
    'VendorAccount',
    VendorAccountSchema,
    { vendorId: 'daily-planet', balance: -3, pending: 0, paidOut: 10, currency: 'NZD' },
  ],
  ['ReleaseRequest', ReleaseRequestSchema, { holder: h2 }],
  ['ReleaseResponse', ReleaseResponseSchema, { release: r }],
  ['CreateCustomerRequest', CreateCustomerRequestSchema, { email: 'alice@example.com', password: 'correct horse' }],
  ['CreateSessionRequest', CreateSessionRequestSchema, { email: 'alice@example.com', password: 'x' }],
  ['SessionResponse', SessionResponseSchema, { token: 'abc' }],
  [
    'BuyCoinRequest',
    BuyCoinRequestSchema,
    { amount: 100, unit: 1, chainId: t.chainId, anchor: p[0], payment: { card } },
  ],
  ['BuyCoinRequest (minimal)', BuyCoinRequestSchema, { amount: 100, payment: { card } }],
  ['BuyCoinResponse', BuyCoinResponseSchema, { chainId: t.chainId, touchstone: t, seed: vectors.chain.seed }],
  [
    'CoinList',
    CoinListSchema,
    {
      coins: [
        {
          chainId: t.chainId,
          value: 16,
          unit: 1,
          length: 16,
          spentIndex: 7,
          holder: 'the-bugle',
          status: 'active',
          issuedAt: t.issuedAt,
          expiresAt: t.expiresAt,
          remaining: 9,
        },
        {
          chainId: t.chainId,
          value: 16,
          unit: 1,
          length: 16,
          spentIndex: 0,
          holder: null,
          status: 'refunded',
          issuedAt: t.issuedAt,
          expiresAt: t.expiresAt,
          remaining: 0,
        },
      ],
    },
  ],
  [
    'History',
    HistorySchema,
    {
      events: [
        { kind: 'purchase', at: t.issuedAt, chainId: t.chainId, amount: 16 },
        { kind: 'spend', at: t.issuedAt, chainId: t.chainId, amount: 7, vendorId: 'daily-planet' },
      ],
    },
  ],
  ['RefundResponse', RefundResponseSchema, { chainId: t.chainId, refunded: 9, releasedIndex: 7 }],
  [
    'ConnectionGrantResponse',
    ConnectionGrantResponseSchema,
    {
      chainId: t.chainId,
      touchstone: t,
      holder: h1,
      previous: null,
      start: null,
      allowance: { index: 5, payword: vectors.chain.paywords[5], expiresAt: t.expiresAt },
      refreshToken: 'np_rt_0123456789abcdef',
      balance: 450,
      limits: { autoPayMaxMinor: 10 },
    },
  ],
  [
    'AllowanceRequest',
    AllowanceRequestSchema,
    {
      refreshToken: 'np_rt_0123456789abcdef',
      chainId: t.chainId,
      epoch: 1,
      spent: { index: 3, payword: vectors.chain.paywords[3] },
    },
  ],
  [
    'AllowanceResponse',
    AllowanceResponseSchema,
    {
      chainId: t.chainId,
      touchstone: t,
      allowance: { index: 8, payword: vectors.chain.paywords[8], expiresAt: t.expiresAt },
      balance: 440,
      limits: { autoPayMaxMinor: 10 },
    },
  ],
];

describe('schemas accept valid messages and reject extras and wrong types', () => {
  for (const [name, schema, value] of examples) {
    it(name, () => {
      assert.equal(checkWire(schema, value), true, JSON.stringify(value));
      assert.deepEqual(parseWire(schema, value), value);
      assert.equal(checkWire(schema, { ...value, unexpected: 1 }), false, 'extra property accepted');
      for (const field of Object.keys(value)) {
        const wrong = typeof value[field] === 'string' ? 42 : 'x';
        assert.equal(checkWire(schema, { ...value, [field]: wrong }), false, `${field} accepted ${wrong}`);
        const { [field]: _dropped, ...missing } = value;
        const optional = name.startsWith('BuyCoin') && ['unit', 'chainId', 'anchor', 'seed'].includes(field);
        if (!optional) assert.equal(checkWire(schema, missing), false, `${field} not required`);
      }
    });
  }
});

describe('primitive constraints', () => {
  it('rejects non-canonical base64url, bad timestamps and out-of-range numbers', () => {
    const bad: Record<string, unknown>[] = [
      { chainId: `${t.chainId.slice(0, -1)}x` }, // non-zero trailing bits
      { chainId: `${t.chainId}=` },
      { anchor: `+${p[0]?.slice(1)}` }, // a character outside the url-safe alphabet
      { sig: t.sig.slice(1) },
      { issuedAt: '2026-11-24T00:00:00.000Z' },
      { issuedAt: '2026-11-24 00:00:00Z' },
      { expiresAt: '2026-13-24T00:00:00Z' },
      { length: 0 },
      { length: 1_000_001 },
      { length: 1.5 },
      { unit: 0 },
      { currency: 'nzd' },
      { broker: 'javascript:alert(1)' },
      { broker: 'https://a.example/\nx' },
      { keyId: '' },
    ];
    for (const change of bad)
      assert.equal(checkWire(TouchstoneSchema, { ...t, ...change }), false, JSON.stringify(change));
    assert.equal(checkWire(HolderCertificateSchema, { ...h1, vendorId: 'Daily' }), false);
    assert.equal(checkWire(HolderCertificateSchema, { ...h1, epoch: 0 }), false);
    assert.equal(checkWire(HolderCertificateSchema, { ...h1, prevVendorId: '-x' }), false);
  });

  it('bounds customer input', () => {
    const ok = { email: 'alice@example.com', password: 'correct horse' };
    assert.equal(checkWire(CreateCustomerRequestSchema, { ...ok, password: 'short' }), false);
    assert.equal(checkWire(CreateCustomerRequestSchema, { ...ok, password: 'x'.repeat(201) }), false);
    assert.equal(checkWire(CreateCustomerRequestSchema, { ...ok, email: 'not-an-email' }), false);
    assert.equal(checkWire(CreateCustomerRequestSchema, { ...ok, email: `${'a'.repeat(250)}@b.co` }), false);
    const buy = { amount: 100, payment: { card } };
    assert.equal(checkWire(BuyCoinRequestSchema, { ...buy, amount: 0 }), false);
    assert.equal(checkWire(BuyCoinRequestSchema, { ...buy, amount: 1.5 }), false);
    assert.equal(checkWire(BuyCoinRequestSchema, { ...buy, payment: { card: { ...card, expiry: '13/30' } } }), false);
    assert.equal(checkWire(BuyCoinRequestSchema, { ...buy, payment: { card: { ...card, cvc: '12' } } }), false);
    assert.equal(
      checkWire(BuyCoinRequestSchema, { ...buy, payment: { card: { ...card, number: '4'.repeat(24) } } }),
      false,
    );
    assert.equal(checkWire(BuyCoinRequestSchema, { ...buy, payment: { card, extra: 1 } }), false);
  });

  it('caps redemption batches at 1000 items', () => {
    const item = { chainId: t.chainId, epoch: 1, from: { index: 0, payword: p[0] }, to: { index: 1, payword: p[1] } };
    assert.equal(checkWire(RedemptionRequestSchema, { items: Array(1000).fill(item) }), true);
    assert.equal(checkWire(RedemptionRequestSchema, { items: Array(1001).fill(item) }), false);
    assert.equal(checkWire(RedemptionRequestSchema, { items: [] }), false);
  });

  it('ErrorCodeSchema accepts only registered codes', () => {
    assert.equal(checkWire(ErrorCodeSchema, 'overlap'), true);
    assert.equal(checkWire(ErrorCodeSchema, 'nope'), false);
  });
});

describe('problems', () => {
  it('problemDetails output matches ProblemSchema; 402 body matches PaymentRequiredProblemSchema', () => {
    assert.equal(checkWire(ProblemSchema, problemDetails('already_spent', 'x', { lastIndex: 5 })), true);
    const body = problemDetails('payment_required', undefined, {
      price: 5,
      currency: 'NZD',
      vendor: 'daily-planet',
      broker: 'https://broker.example',
      connect: 'https://broker.example/connect',
    });
    assert.equal(checkWire(PaymentRequiredProblemSchema, body), true);
    assert.equal(checkWire(PaymentRequiredProblemSchema, { ...body, price: -1 }), false);
  });
});

describe('parseWire', () => {
  it('throws bad_request naming the failing path', () => {
    assert.throws(
      () => parseWire(CheckpointRequestSchema, { epoch: 1, index: 'x', payword: p[1] }),
      (err: unknown) => err instanceof ProtocolError && err.code === 'bad_request' && /\/index/.test(err.detail ?? ''),
    );
    assert.throws(() => parseWire(CheckpointRequestSchema, null), ProtocolError);
    assert.throws(() => parseWire(CheckpointRequestSchema, 'x'), ProtocolError);
  });
});
