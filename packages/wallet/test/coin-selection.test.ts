import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EXPIRY_MARGIN_MS, selectCoin } from '../src/coin-selection.ts';
import type { StoredCoin } from '../src/coin-store.ts';

const NOW = Date.parse('2026-11-24T00:00:00Z');
const BROKER = 'http://broker.test';

function coin(id: string, over: Partial<StoredCoin> & { expiresAt?: string } = {}): StoredCoin {
  const { expiresAt = '2027-11-24T00:00:00Z', ...rest } = over;
  return {
    chainId: id,
    seed: 's',
    length: 100,
    unitMinor: 1,
    currency: 'NZD',
    broker: BROKER,
    touchstone: { expiresAt } as StoredCoin['touchstone'],
    spentIndex: 0,
    status: 'active',
    purchasedAt: '2026-11-23T00:00:00Z',
    ...rest,
  };
}

const demand = { realm: 'daily-planet', priceMinor: 10, currency: 'NZD', broker: BROKER };

test('only active, same currency and broker, unexpired coins with enough whole units left', () => {
  const pick = (c: StoredCoin) => selectCoin([c], demand, NOW)?.chainId;
  assert.equal(pick(coin('ok')), 'ok');
  assert.equal(pick(coin('b', { broker: `${BROKER}/` })), 'b', 'a trailing slash is the same broker');
  assert.equal(pick(coin('x', { currency: 'AUD' })), undefined);
  assert.equal(pick(coin('x', { broker: 'http://other.test' })), undefined);
  assert.equal(pick(coin('x', { status: 'exhausted' })), undefined);
  assert.equal(pick(coin('x', { status: 'refunding' })), undefined);
  assert.equal(pick(coin('x', { spentIndex: 91 })), undefined);
  assert.equal(pick(coin('y', { spentIndex: 90 })), 'y', 'exactly enough');
  assert.equal(pick(coin('x', { unitMinor: 3 })), undefined, 'price not a whole number of units');
  assert.equal(pick(coin('z', { unitMinor: 5 })), 'z');
  assert.equal(pick(coin('x', { expiresAt: new Date(NOW + EXPIRY_MARGIN_MS).toISOString() })), undefined);
  assert.equal(pick(coin('x', { expiresAt: '2026-11-23T00:00:00Z' })), undefined);
});

test('prefers the coin the vendor already holds, then the smallest that fits, then the earliest expiry', () => {
  const big = coin('big', { length: 1000 });
  const small = coin('small', { length: 20 });
  const smallLater = coin('small-later', { length: 20, expiresAt: '2028-01-01T00:00:00Z' });
  const here = coin('here', { length: 1000, lastRealm: 'daily-planet' });
  assert.equal(selectCoin([big, smallLater, small], demand, NOW)?.chainId, 'small');
  assert.equal(selectCoin([big, small, here], demand, NOW)?.chainId, 'here');
  assert.equal(selectCoin([big, small, here], demand, NOW, new Set(['here', 'small']))?.chainId, 'big');
  assert.equal(selectCoin([], demand, NOW), undefined);
});
