// The entitlement store as pure functions over a wallet state: which URL a bought point belongs to, one point per
// URL (the newest), a refusal forgets only the point that was refused, and the store is bounded.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Entitlement, type WalletState, emptyState } from '../src/coin-store.ts';
import { isWalletState } from '../src/coin-store.ts';
import {
  MAX_ENTITLEMENTS,
  entitlementKey,
  findEntitlement,
  forgetEntitlement,
  rememberEntitlement,
} from '../src/entitlement-store.ts';

function point(url: string, index: number, chainId = 'chain-a'): Entitlement {
  return {
    url,
    paidUrl: url,
    realm: 'daily-planet',
    chainId,
    index,
    payword: `w${index}`,
    amountMinor: 5,
    currency: 'NZD',
    boughtAt: '2025-01-01T00:00:00Z',
  };
}

test('a URL is keyed as the vendor sees it: normalised, without its fragment; not a URL has no key', () => {
  assert.equal(entitlementKey('http://News.Example:80/a/1#top'), 'http://news.example/a/1');
  assert.equal(entitlementKey(new URL('https://x.example/a?b=1&c=2')), 'https://x.example/a?b=1&c=2');
  assert.notEqual(entitlementKey('https://x.example/a?b=1'), entitlementKey('https://x.example/a?b=2'));
  assert.equal(entitlementKey('not a url'), undefined);
});

test('remember keeps one point per URL, the newest, and find reads it back by any spelling of the URL', () => {
  const state = emptyState();
  assert.equal(findEntitlement(state, 'http://n.example/a/1'), undefined);
  rememberEntitlement(state, point('http://n.example/a/1', 5));
  rememberEntitlement(state, point('http://n.example/a/2', 8));
  rememberEntitlement(state, point('HTTP://N.EXAMPLE/a/1#again', 13, 'chain-b'));
  assert.equal(state.entitlements?.length, 2);
  const found = findEntitlement(state, 'http://n.example/a/1#x');
  assert.deepEqual([found?.url, found?.chainId, found?.index], ['http://n.example/a/1', 'chain-b', 13]);
  assert.equal(findEntitlement(state, 'http://n.example/a/2')?.index, 8);
  assert.equal(findEntitlement(state, 'http://n.example/a/3'), undefined);
  assert.ok(isWalletState(structuredClone(state)), 'the state with entitlements is still a version 1 wallet');
});

test('forget removes the refused point only, never a newer one for the same URL', () => {
  const state = emptyState();
  rememberEntitlement(state, point('http://n.example/a/1', 5));
  forgetEntitlement(state, 'http://n.example/a/1', { chainId: 'chain-a', index: 4 });
  assert.equal(findEntitlement(state, 'http://n.example/a/1')?.index, 5, 'another point: kept');
  rememberEntitlement(state, point('http://n.example/a/1', 9));
  forgetEntitlement(state, 'http://n.example/a/1', { chainId: 'chain-a', index: 5 });
  assert.equal(findEntitlement(state, 'http://n.example/a/1')?.index, 9, 'a payment made meanwhile: kept');
  forgetEntitlement(state, 'http://n.example/a/1#x', { chainId: 'chain-a', index: 9 });
  assert.equal(findEntitlement(state, 'http://n.example/a/1'), undefined);
  forgetEntitlement(emptyState(), 'http://n.example/a/1', { chainId: 'chain-a', index: 9 });
});

test('the store is bounded: beyond MAX_ENTITLEMENTS the oldest purchase is forgotten', () => {
  const state = emptyState();
  for (let i = 0; i <= MAX_ENTITLEMENTS; i++) rememberEntitlement(state, point(`http://n.example/a/${i}`, i + 1));
  assert.equal(state.entitlements?.length, MAX_ENTITLEMENTS);
  assert.equal(findEntitlement(state, 'http://n.example/a/0'), undefined);
  assert.equal(findEntitlement(state, `http://n.example/a/${MAX_ENTITLEMENTS}`)?.index, MAX_ENTITLEMENTS + 1);
  // Buying an old URL again makes it the newest.
  rememberEntitlement(state, point('http://n.example/a/1', 50_000));
  rememberEntitlement(state, point('http://n.example/b/0', 50_001));
  assert.equal(findEntitlement(state, 'http://n.example/a/1')?.index, 50_000);
  assert.equal(findEntitlement(state, 'http://n.example/a/2'), undefined);
});

test('a wallet file written before entitlements were kept loads and reads as owning nothing', () => {
  const old: WalletState = { version: 1, coins: [], history: [], nextEntryId: 1 };
  assert.ok(isWalletState(old));
  assert.equal(findEntitlement(old, 'http://n.example/a/1'), undefined);
  assert.equal(isWalletState({ ...old, entitlements: {} }), false);
});
