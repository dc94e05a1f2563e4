import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { testEngines } from '@netpay/service-kit/testing';
import { accountBalance } from '../src/ledger-store.ts';
import { vendorAccount } from '../src/ledger.ts';
import { call, item, PaywordChain, proof, brokerSuite, type TestVendor } from './harness.ts';

/**
 * Adversarial review of the hash pool's rollback-and-rerun (issue 10): a transaction that has already written
 * (a range, its ledger entry, a take-back) meets a long hash loop, rolls back, hashes in the pool and runs again.
 * Nothing it wrote in the first attempt may survive twice; the same idempotency key sent twice at once while the
 * pool works is paid once; the vendor's ledger account equals what its ranges keep, net of fees.
 */
for (const engine of testEngines()) {
  describe(`review: rollback and rerun around the hash pool on ${engine}`, () => {
    const suite = brokerSuite(engine);

    const post = (apiKey: string, key: string, items: Array<Record<string, unknown>>) =>
      call(suite.broker.api, 'POST', '/redemptions', { token: apiKey, key, body: { items } });
    const redeem = async (apiKey: string, key: string, items: Array<Record<string, unknown>>) => {
      const res = await post(apiKey, key, items);
      assert.equal(res.status, 200, res.text);
      return (res.body.items as Array<{ status: string; code?: string; amount: number }>).map((i) =>
        i.status === 'accepted' ? i.amount : i.code,
      );
    };
    const claim = async (vendor: TestVendor, chain: PaywordChain, at: number) => {
      const res = await call(suite.broker.api, 'POST', `/chains/${chain.chainIdB64}/claim`, {
        token: vendor.apiKey,
        body: proof(chain, at),
      });
      assert.equal(res.status, 200, res.text);
      return res.body.holder;
    };
    const coin = async (length: number) => {
      const { token } = await suite.broker.customer();
      const chain = PaywordChain.generate(length);
      const bought = await suite.broker.buyCoin(token, { amount: length, chain });
      assert.equal(bought.status, 201, bought.text);
      return chain;
    };
    /** Net of fees, what the vendor's ranges keep: what its ledger account must hold. */
    const keptNet = async (vendorId: string) => {
      const rows = await suite.broker.database.db
        .selectFrom('redeemed_ranges')
        .select(['gross', 'fee', 'taken_back_gross', 'taken_back_fee'])
        .where('vendor_id', '=', vendorId)
        .execute();
      return rows.reduce((s, r) => s + r.gross - r.fee - (r.taken_back_gross - r.taken_back_fee), 0);
    };
    const ledgerOf = async (vendorId: string) =>
      -(await accountBalance(suite.broker.database.db, vendorAccount(vendorId)));

    test('an item written before a long release check is rolled back with it and written once on the rerun', async () => {
      const a = await suite.broker.addVendor(`rr-a-${engine}`);
      const b = await suite.broker.addVendor(`rr-b-${engine}`);
      const short = await coin(100);
      const chain = await coin(6000);
      await claim(b, short, 1);
      await claim(a, chain, 1);
      // A was paid to 4500; B takes the chain at 5000 and carries A's release at 3000: checking that release hashes
      // 3000 − 1 steps (past the inline limit) inside the transaction, after the first item and a take-back.
      assert.deepEqual(await redeem(a.apiKey, 'rr-a', [item(chain, 1, 0, 4500)]), [4500]);
      const holderB = await claim(b, chain, 5000);
      const release = a.release(holderB, 3000, chain.b64(3000));
      const countsBefore = await suite.broker.counts();
      // The release takes back A's [3000, 4500); B's range from 3000 is refused all the same (its epoch starts at
      // 4500, where A had shown it was paid to), but the take-back and the short item stand, written once.
      assert.deepEqual(await redeem(b.apiKey, 'rr-b', [item(short, 1, 0, 40), item(chain, 2, 3000, 4000, release)]), [
        40,
        'invalid_payword',
      ]);
      const countsAfter = await suite.broker.counts();
      assert.equal(countsAfter.redeemed_ranges, (countsBefore.redeemed_ranges ?? 0) + 1);
      assert.equal(countsAfter.redemptions, (countsBefore.redemptions ?? 0) + 1);
      assert.equal(countsAfter.conflicts, (countsBefore.conflicts ?? 0) + 1, 'one take-back, recorded once');
      assert.equal(await ledgerOf(a.id), await keptNet(a.id));
      assert.equal(await ledgerOf(b.id), await keptNet(b.id));
      assert.equal(await keptNet(a.id), 3000 - (await feeOf(a.id)));
      const audited = await suite.broker.audit();
      assert.ok(audited.ok, audited.discrepancies.join('; '));
    });

    const feeOf = async (vendorId: string) => {
      const rows = await suite.broker.database.db
        .selectFrom('redeemed_ranges')
        .select(['fee', 'taken_back_fee'])
        .where('vendor_id', '=', vendorId)
        .execute();
      return rows.reduce((s, r) => s + r.fee - r.taken_back_fee, 0);
    };

    test('one Idempotency-Key sent three times at once for a long range: paid once, the same bytes to all', async () => {
      const a = await suite.broker.addVendor(`rr-c-${engine}`);
      const chain = await coin(9000);
      await claim(a, chain, 1);
      const body = [item(chain, 1, 0, 8000)];
      const answers = await Promise.all([
        post(a.apiKey, 'twin', body),
        post(a.apiKey, 'twin', body),
        post(a.apiKey, 'twin', body),
      ]);
      for (const res of answers) assert.equal(res.status, 200, res.text);
      assert.equal(new Set(answers.map((r) => r.text)).size, 1, 'the same answer to every twin');
      const [first] = answers;
      assert.ok(first);
      assert.deepEqual(
        (first.body.items as Array<{ amount: number }>).map((i) => i.amount),
        [8000],
      );
      // The same key with another body is refused, and a new key for the same range overlaps.
      const other = await post(a.apiKey, 'twin', [item(chain, 1, 0, 8001)]);
      assert.equal(other.status, 422, other.text);
      assert.deepEqual(await redeem(a.apiKey, 'twin-2', body), ['overlap']);
      assert.equal(await ledgerOf(a.id), await keptNet(a.id));
      const audited = await suite.broker.audit();
      assert.ok(audited.ok, audited.discrepancies.join('; '));
    });
  });
}
