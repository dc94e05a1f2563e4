import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { testEngines } from '@netpay/service-kit/testing';
import { call, item, PaywordChain, proof, brokerSuite } from './harness.ts';

/**
 * Issue 10, redemption reads only what it needs: a chain is loaded without its ranges; the ranges a redemption
 * must see are asked for one question at a time, and each epoch's summary (kept gross, highest end) follows its
 * ranges through redemptions and take-backs. The audit checks the summaries against the ranges.
 */
for (const engine of testEngines()) {
  describe(`redeemed ranges read by need on ${engine}`, () => {
    const suite = brokerSuite(engine);

    const redeem = async (apiKey: string, key: string, items: Array<Record<string, unknown>>) => {
      const res = await call(suite.broker.api, 'POST', '/redemptions', { token: apiKey, key, body: { items } });
      assert.equal(res.status, 200, res.text);
      return (res.body.items as Array<{ status: string; code?: string; amount: number }>).map((i) =>
        i.status === 'accepted' ? i.amount : i.code,
      );
    };
    const epochRow = (chainId: string, epoch: number) =>
      suite.broker.database.db
        .selectFrom('epochs')
        .select(['kept_gross', 'redeemed_index'])
        .where('chain_id', '=', chainId)
        .where('epoch', '=', epoch)
        .executeTakeFirstOrThrow();

    test('fifty ranges on one chain: each goes on from the last, overlaps are found, a release takes back across many', async () => {
      const a = await suite.broker.addVendor('ranges-a');
      const b = await suite.broker.addVendor('ranges-b');
      const { token } = await suite.broker.customer();
      const chain = PaywordChain.generate(200);
      assert.equal((await suite.broker.buyCoin(token, { amount: 400, unit: 2, chain })).status, 201);
      const claimA = await call(suite.broker.api, 'POST', `/chains/${chain.chainIdB64}/claim`, {
        token: a.apiKey,
        body: proof(chain, 1),
      });
      assert.equal(claimA.status, 200, claimA.text);

      const fifty = Array.from({ length: 50 }, (_, i) => item(chain, 1, 2 * i, 2 * i + 2));
      assert.deepEqual(await redeem(a.apiKey, 'fifty', fifty), Array(50).fill(4));
      assert.deepEqual(await redeem(a.apiKey, 'again', [item(chain, 1, 10, 12), item(chain, 1, 99, 101)]), [
        'overlap',
        'invalid_payword',
      ]);
      assert.deepEqual(await redeem(a.apiKey, 'on', [item(chain, 1, 100, 110)]), [20]);
      assert.deepEqual(await epochRow(chain.chainIdB64, 1), { kept_gross: 220, redeemed_index: 110 });

      // B takes the coin at 150; A's release says it stopped at 40: what A was paid beyond 40 is taken back. B's
      // epoch still starts at 110, where A showed it was paid to: [40,110) goes to nobody.
      const claimB = await call(suite.broker.api, 'POST', `/chains/${chain.chainIdB64}/claim`, {
        token: b.apiKey,
        body: proof(chain, 150),
      });
      assert.equal(claimB.status, 200, claimB.text);
      const release = a.release(claimB.body.holder, 40, chain.b64(40));
      assert.deepEqual(await redeem(b.apiKey, 'b', [item(chain, 2, 40, 150, release)]), ['invalid_payword']);
      assert.deepEqual(await epochRow(chain.chainIdB64, 1), { kept_gross: 80, redeemed_index: 110 });
      assert.deepEqual(await redeem(b.apiKey, 'b2', [item(chain, 2, 110, 150)]), [80]);
      assert.deepEqual(await epochRow(chain.chainIdB64, 2), { kept_gross: 80, redeemed_index: 150 });
      const audited = await suite.broker.audit();
      assert.ok(audited.ok, audited.discrepancies.join('; '));
    });

    test('the audit names an epoch whose summary disagrees with its ranges', async () => {
      const a = await suite.broker.addVendor('summary-a');
      const { token } = await suite.broker.customer();
      const chain = PaywordChain.generate(20);
      assert.equal((await suite.broker.buyCoin(token, { amount: 20, chain })).status, 201);
      await call(suite.broker.api, 'POST', `/chains/${chain.chainIdB64}/claim`, {
        token: a.apiKey,
        body: proof(chain, 1),
      });
      assert.deepEqual(await redeem(a.apiKey, 's', [item(chain, 1, 0, 5)]), [5]);
      await suite.broker.database.db
        .updateTable('epochs')
        .set({ kept_gross: 4 })
        .where('chain_id', '=', chain.chainIdB64)
        .execute();
      const audited = await suite.broker.audit();
      assert.ok(
        audited.discrepancies.some((d) => d.startsWith(`chain ${chain.chainIdB64}:`) && d.includes('kept gross of 4')),
        audited.discrepancies.join('; '),
      );
      await suite.broker.database.db
        .updateTable('epochs')
        .set({ kept_gross: 5 })
        .where('chain_id', '=', chain.chainIdB64)
        .execute();
    });
  });
}
