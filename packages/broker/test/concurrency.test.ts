import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { PaywordChain } from '@netpay/protocol';
import { testEngines } from '@netpay/service-kit/testing';
import { call, GOOD_CARD, item, proof, brokerSuite } from './harness.ts';

for (const engine of testEngines()) {
  describe(`races on ${engine}`, () => {
    const suite = brokerSuite(engine);
    let token: string;
    before(async () => {
      token = (await suite.broker.customer()).token;
    });

    async function newChain(length = 100) {
      const chain = PaywordChain.generate(length);
      const res = await suite.broker.buyCoin(token, { amount: length, chain });
      assert.equal(res.status, 201, res.text);
      return chain;
    }

    test('concurrent claims by several vendors leave exactly one holder per epoch', async () => {
      const chain = await newChain();
      const vendors = await Promise.all(
        ['ra', 'rb', 'rc', 'rd', 're'].map((id) => suite.broker.addVendor(`claim-${id}`)),
      );
      const requests = Array.from({ length: 25 }, (_, i) => vendors[i % vendors.length]);
      // Each claim carries a payword as proof; one that arrives after a higher proof was seen is refused.
      const replies = await Promise.all(
        requests.map((v, i) =>
          call(suite.broker.api, 'POST', `/chains/${chain.chainIdB64}/claim`, {
            token: v?.apiKey,
            body: proof(chain, i + 1),
          }),
        ),
      );
      const holderOf = new Map<number, string>();
      const granted = replies.filter((r) => r.status === 200);
      assert.ok(granted.length >= 1);
      for (const r of replies) if (r.status !== 200) assert.equal(r.body.code, 'invalid_payword', r.text);
      for (const r of granted) {
        const { epoch, vendorId } = r.body.holder;
        assert.equal(holderOf.get(epoch) ?? vendorId, vendorId, `epoch ${epoch} has two holders`);
        holderOf.set(epoch, vendorId);
      }
      const epochs = await suite.broker.database.db
        .selectFrom('epochs')
        .selectAll()
        .where('chain_id', '=', chain.chainIdB64)
        .orderBy('epoch')
        .execute();
      epochs.forEach((e, i) => {
        assert.equal(e.epoch, i + 1);
        assert.equal(e.prev_epoch, i);
        if (i > 0) assert.equal(e.prev_vendor_id, epochs[i - 1]?.vendor_id);
        assert.equal(e.superseded_by, i === epochs.length - 1 ? null : i + 2);
        if (holderOf.has(e.epoch)) assert.equal(holderOf.get(e.epoch), e.vendor_id);
        // Every epoch was opened by a strictly higher proof than the one before.
        if (i > 0) assert.ok((e.claim_index ?? 0) > (epochs[i - 1]?.claim_index ?? 0));
      });
      const chainRow = await suite.broker.database.db
        .selectFrom('chains')
        .selectAll()
        .where('chain_id', '=', chain.chainIdB64)
        .executeTakeFirstOrThrow();
      assert.equal(chainRow.current_epoch, epochs.length);
    });

    test('concurrent overlapping redemptions under different keys: exactly one is accepted', async () => {
      const chain = await newChain();
      const a = await suite.broker.addVendor('overlap-a');
      await call(suite.broker.api, 'POST', `/chains/${chain.chainIdB64}/claim`, {
        token: a.apiKey,
        body: proof(chain, 1),
      });
      const replies = await Promise.all(
        Array.from({ length: 24 }, (_, i) =>
          call(suite.broker.api, 'POST', '/redemptions', {
            token: a.apiKey,
            key: `ov-${i}`,
            body: { items: [item(chain, 1, 0, 10 + (i % 7))] },
          }),
        ),
      );
      const accepted = replies.filter((r) => r.body.items[0].status === 'accepted');
      assert.equal(accepted.length, 1);
      for (const r of replies) if (r !== accepted[0]) assert.equal(r.body.items[0].code, 'overlap');
      const account = await call(suite.broker.api, 'GET', '/vendor/account', { token: a.apiKey });
      assert.equal(account.body.balance, accepted[0]?.body.credited);
      assert.ok((await suite.broker.audit()).ok);
    });

    test('two vendors race for the same units: every unit is paid once, the released vendor loses', async () => {
      const chain = await newChain();
      const a = await suite.broker.addVendor('race2-a');
      const b = await suite.broker.addVendor('race2-b');
      await call(suite.broker.api, 'POST', `/chains/${chain.chainIdB64}/claim`, {
        token: a.apiKey,
        body: proof(chain, 1),
      });
      const claimB = await call(suite.broker.api, 'POST', `/chains/${chain.chainIdB64}/claim`, {
        token: b.apiKey,
        body: proof(chain, 2),
      });
      // A released at 1 (its claim showed the customer had paid it w1), yet both try to redeem [0, 20) and [1, 20).
      const release = a.release(claimB.body.holder, 1, chain.b64(1));
      const replies = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          i % 2 === 0
            ? call(suite.broker.api, 'POST', '/redemptions', {
                token: a.apiKey,
                key: `a-${i}`,
                body: { items: [item(chain, 1, 0, 20)] },
              })
            : call(suite.broker.api, 'POST', '/redemptions', {
                token: b.apiKey,
                key: `b-${i}`,
                body: { items: [item(chain, 2, 1, 20, release)] },
              }),
        ),
      );
      const acceptedB = replies.filter((r, i) => i % 2 === 1 && r.body.items[0].status === 'accepted');
      assert.equal(acceptedB.length, 1, 'exactly one of B’s redemptions is accepted');
      const ranges = await suite.broker.database.db
        .selectFrom('redeemed_ranges')
        .selectAll()
        .where('chain_id', '=', chain.chainIdB64)
        .execute();
      const kept = ranges.filter((r) => r.kept_to > r.from_index);
      const keptB = kept.filter((r) => r.vendor_id === 'race2-b');
      assert.deepEqual(
        keptB.map((r) => [r.from_index, r.kept_to]),
        [[1, 20]],
      );
      // A keeps at most the unit below its release: anything it got beyond was taken back.
      for (const r of kept.filter((k) => k.vendor_id === 'race2-a')) assert.ok(r.kept_to <= 1, JSON.stringify(r));
      assert.ok((await suite.broker.audit()).ok);
    });

    test('the same redemption sent 20 times at once gets one answer and is credited once', async () => {
      const chain = await newChain();
      const a = await suite.broker.addVendor('same-key-a');
      await call(suite.broker.api, 'POST', `/chains/${chain.chainIdB64}/claim`, {
        token: a.apiKey,
        body: proof(chain, 1),
      });
      const body = { items: [item(chain, 1, 0, 50), item(chain, 1, 50, 60)] };
      const replies = await Promise.all(
        Array.from({ length: 20 }, () =>
          call(suite.broker.api, 'POST', '/redemptions', { token: a.apiKey, key: 'same', body }),
        ),
      );
      for (const r of replies) {
        assert.equal(r.status, 200, r.text);
        assert.equal(r.text, replies[0]?.text);
      }
      assert.equal(replies[0]?.body.credited, 59);
      const account = await call(suite.broker.api, 'GET', '/vendor/account', { token: a.apiKey });
      assert.equal(account.body.balance, 59);
      const other = await call(suite.broker.api, 'POST', '/redemptions', {
        token: a.apiKey,
        key: 'same',
        body: { items: [item(chain, 1, 60, 61)] },
      });
      assert.equal(other.status, 422);
      assert.equal(other.body.code, 'idempotency_conflict');
      assert.ok((await suite.broker.audit()).ok);
    });

    test('the same purchase sent 20 times at once makes one coin and one charge', async () => {
      const customer = await suite.broker.customer();
      const statement = async () =>
        (await suite.bank.statement()).body.lines.filter((l: { kind: string }) => l.kind === 'charge').length;
      const before = await statement();
      const replies = await Promise.all(
        Array.from({ length: 20 }, () =>
          call(suite.broker.api, 'POST', '/coins', {
            token: customer.token,
            key: 'one',
            body: { amount: 25, payment: { card: GOOD_CARD } },
          }),
        ),
      );
      for (const r of replies) {
        assert.equal(r.status, 201, r.text);
        assert.equal(r.text, replies[0]?.text);
      }
      assert.equal(await statement(), before + 1);
      const coins = await call(suite.broker.api, 'GET', '/coins', { token: customer.token });
      assert.equal(coins.body.coins.length, 1);
      assert.ok((await suite.broker.audit()).ok);
    });
  });
}
