import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type HolderCertificate, PaywordChain } from '@netpay/protocol';
import fc from 'fast-check';
import { ChainInvariantError, ChainState, type EpochState } from '../src/chain-state.ts';
import type { ChainRecord, EpochRecord } from '../src/spend-store.ts';

const LENGTH = 40;
const chain = PaywordChain.generate(LENGTH);
const NOW = Date.parse('2026-11-24T00:00:00Z');
const ctx = { nowMs: NOW, currency: 'NZD', maxStepsAhead: 1000 };

const record: ChainRecord = {
  chainId: chain.chainIdB64,
  touchstone: {
    chainId: chain.chainIdB64,
    anchor: chain.b64(0),
    length: LENGTH,
    unit: 1,
    currency: 'NZD',
    broker: 'http://broker.test',
    keyId: 'bk1',
    issuedAt: '2026-11-23T00:00:00Z',
    expiresAt: '2026-12-24T00:00:00Z',
    sig: 'unchecked-here',
  },
  unit: 1,
  length: LENGTH,
  currency: 'NZD',
  expiresAtMs: NOW + 30 * 86_400_000,
};

function epoch(n: number, start: number | null, last = start): EpochRecord {
  const holder = { chainId: chain.chainIdB64, epoch: n, vendorId: 'v', expiresAt: '' } as unknown as HolderCertificate;
  const point = (i: number | null) => (i === null ? null : { index: i, payword: chain.b64(Math.min(i, LENGTH)) });
  return {
    chainId: chain.chainIdB64,
    epoch: n,
    holder,
    leaseExpiresAtMs: NOW + 60_000,
    previous: null,
    start: point(start),
    startRelease: null,
    releaseReported: false,
    last: point(last),
    lastResource: null,
    release: null,
    superseded: false,
    redeemed: null,
    redeemedMinor: 0,
    rejectedMinor: 0,
  };
}

const held = (last = 0) => new ChainState(record, [epoch(1, 0, last)], [], () => NOW);
const pay = (index: number, resource = `GET /a/${index}`, priceMinor = 1, word = index) => ({
  index,
  payword: chain.payword(word),
  paywordB64: chain.b64(word),
  resource,
  priceMinor,
});

describe('ChainState: check and advance in one step, invariants where the state moves', () => {
  it('a payable payment advances the epoch and carries its compare-and-set', () => {
    const state = held(3);
    const step = state.checkAndAdvance(pay(5, 'GET /a', 2), ctx);
    assert.equal(step.kind, 'pay');
    assert.deepEqual(step.kind === 'pay' && step.write, {
      chainId: chain.chainIdB64,
      epoch: 1,
      expectedLastIndex: 3,
      index: 5,
      payword: chain.b64(5),
      resource: 'GET /a',
      amountMinor: 2,
      atMs: NOW,
    });
    assert.equal(state.lastIndex, 5);
    assert.equal(state.current?.record.last?.index, 5);
    assert.equal(state.entitled('GET /a'), true);
    // The same header again is a free retry, and moves nothing.
    assert.equal(state.checkAndAdvance(pay(5, 'GET /a', 2), ctx).kind, 'retry');
    assert.equal(state.lastIndex, 5);
  });

  it('a refused or claiming payment leaves the chain as it was', () => {
    const state = held(3);
    assert.equal(state.checkAndAdvance(pay(3, 'GET /other'), ctx).kind, 'reject');
    assert.equal(state.checkAndAdvance(pay(6, 'GET /x', 1, 7), ctx).kind, 'reject');
    (state.current as EpochState).stopping = true;
    assert.equal(state.checkAndAdvance(pay(4), ctx).kind, 'claim');
    assert.equal(state.lastIndex, 3);
    assert.equal(state.current?.record.last?.index, 3);
  });

  it('an epoch never moves back, and no last point lies beyond the chain', () => {
    const state = held(10);
    assert.throws(() => state.putEpoch(epoch(1, 0, 9)), ChainInvariantError);
    assert.throws(() => new ChainState(record, [epoch(1, 0, LENGTH + 1)], [], () => NOW), ChainInvariantError);
    const release = { index: 8, payword: chain.b64(8) } as NonNullable<EpochRecord['release']>;
    assert.throws(() => state.settleRelease(state.current as EpochState, release), ChainInvariantError);
    assert.equal(state.lastIndex, 10);
    state.settleRelease(state.current as EpochState, { ...release, index: 12, payword: chain.b64(12) });
    assert.equal(state.lastIndex, 12);
    assert.equal(state.accepting, false);
  });

  it('under any sequence of payments the last index only grows, within the length, one write per advance', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            index: fc.integer({ min: 0, max: LENGTH + 2 }),
            price: fc.integer({ min: 1, max: 3 }),
            resource: fc.constantFrom('GET /a', 'GET /b', 'GET /c'),
            forged: fc.boolean(),
          }),
          { maxLength: 30 },
        ),
        (payments) => {
          const state = held(0);
          for (const p of payments) {
            const before = state.lastIndex;
            const word = p.forged ? Math.max(0, Math.min(LENGTH, p.index + 1)) : Math.min(LENGTH, p.index);
            const step = state.checkAndAdvance(pay(p.index, p.resource, p.price, word), ctx);
            assert.ok(state.lastIndex >= before && state.lastIndex <= LENGTH);
            assert.equal(state.current?.record.last?.index, state.lastIndex);
            if (step.kind === 'pay') {
              assert.equal(step.write.expectedLastIndex, before);
              assert.ok(step.write.index > before);
              assert.equal(state.lastIndex, p.index);
              assert.equal(step.write.amountMinor, p.index - before);
            } else {
              assert.equal(state.lastIndex, before);
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
