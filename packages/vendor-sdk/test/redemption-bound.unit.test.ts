import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { b64uEncode, generateChain, type RedemptionItem } from '@netpay/protocol';
import fc from 'fast-check';
import { type ClippedAnswer, paywordBelow, redeemUpToBound, STEPS_PER_TURN } from '../src/redemption-bound.ts';

const chainId = randomBytes(16);
const LENGTH = 9000; // longer than STEPS_PER_TURN twice over, so a far probe yields to the loop on the way
const words = generateChain(chainId, randomBytes(32), LENGTH).map((w) => b64uEncode(w));
const point = (index: number) => ({ index, payword: words[index] as string });

/**
 * A broker that accepts any range with correct paywords from the redeemed point up to `end`, refuses one past it
 * `beyond_release`, and records what it accepted (the ranges must chain, with no gap and no overlap).
 */
function fakeBroker(start: number, end: number, refuseAt?: number) {
  let redeemed = start;
  const accepted: [number, number][] = [];
  const probes: number[] = [];
  const redeem = async (probe: RedemptionItem): Promise<ClippedAnswer> => {
    probes.push(probe.to.index);
    assert.equal(probe.from.payword, words[probe.from.index], 'from payword');
    assert.equal(probe.to.payword, words[probe.to.index], 'to payword hashed down correctly');
    assert.equal(probe.from.index, redeemed, 'each probe starts at the point redeemed so far');
    if (probe.to.index === refuseAt) return 'rejected';
    if (probe.to.index > end) return 'beyond_release';
    accepted.push([probe.from.index, probe.to.index]);
    redeemed = probe.to.index;
    return 'accepted';
  };
  return { redeem, accepted, probes, redeemed: () => redeemed };
}

const item = (from: number, to: number): RedemptionItem => ({
  chainId: b64uEncode(chainId),
  epoch: 2,
  from: point(from),
  to: point(to),
});

describe('redeeming up to an epoch end the broker does not state', () => {
  it('finds the highest accepted index of any range, in log2 of its length probes', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 200 }),
        fc.integer({ min: 2, max: 300 }),
        fc.nat(),
        async (from, span, e) => {
          const to = from + span;
          // The range was refused, so its end is below `to`.
          const end = from + (e % span);
          const broker = fakeBroker(from, end);
          const search = await redeemUpToBound(item(from, to), chainId, broker.redeem);
          assert.equal(search.answered, true);
          assert.deepEqual(search.redeemedTo, point(end));
          assert.equal(broker.redeemed(), end);
          assert.ok(broker.probes.length <= Math.ceil(Math.log2(span)) + 1, `${broker.probes.length} probes`);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('stops at another refusal, keeping what was accepted, and says whether the broker answered', async () => {
    // Probes of [10, 100): 55 (accepted), then 78, refused for another reason (an overlap, say).
    const broker = fakeBroker(10, 90, 78);
    const search = await redeemUpToBound(item(10, 100), chainId, broker.redeem);
    assert.deepEqual(broker.probes, [55, 78]);
    assert.deepEqual(search, { redeemedTo: point(55), answered: true });
    const down = await redeemUpToBound(item(10, 100), chainId, async () => 'unreachable');
    assert.deepEqual(down, { redeemedTo: point(10), answered: false });
  });

  it('hashes a far end down in turns, giving the event loop back', async () => {
    const immediates: number[] = [];
    const watch = () => {
      immediates.push(1);
      if (immediates.length < 10_000) setImmediate(watch);
    };
    setImmediate(watch);
    const word = await paywordBelow(chainId, point(LENGTH), LENGTH - 2 * STEPS_PER_TURN - 7);
    assert.equal(word, words[LENGTH - 2 * STEPS_PER_TURN - 7]);
    // Three slices of hashing, so at least two turns of the loop ran other callbacks in between.
    assert.ok(immediates.length >= 2, `${immediates.length} immediates ran while hashing`);
  });
});
