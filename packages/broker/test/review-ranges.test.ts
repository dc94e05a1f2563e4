import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { openDatabase } from '@netpay/service-kit';
import { testEngines } from '@netpay/service-kit/testing';
import { sql } from 'kysely';
import { createBrokerApp } from '../src/app.ts';
import { loadChainState } from '../src/chain-state.ts';
import { HttpBank } from '../src/http-bank.ts';
import { migrations } from '../src/migrations.ts';
import type { BrokerSchema } from '../src/schema.ts';
import { migrate } from '@netpay/service-kit';
import { pino } from 'pino';
import { call, freePort, item, PaywordChain, proof, startBroker, brokerSuite, type TestVendor } from './harness.ts';

/**
 * Adversarial review of issue 10's broker changes (hash pool, ranges read by need with epoch summaries, prepared
 * queries): a dishonest vendor redeems overlapping ranges across epochs and in both orders, re-redeems after a
 * take-back, races long ranges (hashed in the pool, then judged under the lock) against short ones and against a
 * release that takes back; the chain lock of the prepared query really locks on PostgreSQL; two brokers in one
 * process keep to their own store; migration 0010 fills summaries that agree with the ranges. After every attack
 * the chain's kept gross plus refunds stays within its value and the audit passes.
 */
for (const engine of testEngines()) {
  describe(`review: redemption attacks on ${engine}`, () => {
    const suite = brokerSuite(engine);

    const redeemAt = async (api: string, apiKey: string, key: string, items: Array<Record<string, unknown>>) => {
      const res = await call(api, 'POST', '/redemptions', { token: apiKey, key, body: { items } });
      assert.equal(res.status, 200, res.text);
      return (res.body.items as Array<{ status: string; code?: string; amount: number }>).map((i) =>
        i.status === 'accepted' ? i.amount : i.code,
      );
    };
    const redeem = (apiKey: string, key: string, items: Array<Record<string, unknown>>) =>
      redeemAt(suite.broker.api, apiKey, key, items);
    const claim = async (vendor: TestVendor, chain: PaywordChain, at: number) => {
      const res = await call(suite.broker.api, 'POST', `/chains/${chain.chainIdB64}/claim`, {
        token: vendor.apiKey,
        body: proof(chain, at),
      });
      assert.equal(res.status, 200, res.text);
      return res.body.holder;
    };
    const coin = async (length: number, unit = 1) => {
      const { token } = await suite.broker.customer();
      const chain = PaywordChain.generate(length);
      const bought = await suite.broker.buyCoin(token, { amount: length * unit, unit, chain });
      assert.equal(bought.status, 201, bought.text);
      return chain;
    };
    /** What leaves the broker for the chain by its ranges (the ranges themselves, not the summaries). */
    const keptByRanges = async (chainId: string) => {
      const rows = await suite.broker.database.db
        .selectFrom('redeemed_ranges')
        .select(['gross', 'taken_back_gross', 'vendor_id'])
        .where('chain_id', '=', chainId)
        .execute();
      const byVendor = new Map<string, number>();
      for (const r of rows) byVendor.set(r.vendor_id, (byVendor.get(r.vendor_id) ?? 0) + r.gross - r.taken_back_gross);
      return byVendor;
    };
    const assertAudited = async () => {
      const audited = await suite.broker.audit();
      assert.ok(audited.ok, audited.discrepancies.join('; '));
    };

    test('overlaps across epochs in both orders, equivocating releases, re-redeeming after a take-back', async () => {
      const a = await suite.broker.addVendor(`rv-a-${engine}`);
      const b = await suite.broker.addVendor(`rv-b-${engine}`);
      const chain = await coin(100);
      await claim(a, chain, 1);
      assert.deepEqual(await redeem(a.apiKey, 'a1', [item(chain, 1, 0, 60)]), [60]);
      const holderB = await claim(b, chain, 80);
      // B carries A's release at 40: A's [40, 60) is taken back, but B's epoch starts at 60, where A showed it was
      // paid to (had A been paid out, paying B for 40..60 would let those units out twice): B is paid 60..80.
      const at40 = a.release(holderB, 40, chain.b64(40));
      assert.deepEqual(await redeem(b.apiKey, 'b1', [item(chain, 2, 40, 80, at40)]), ['invalid_payword']);
      assert.deepEqual(await redeem(b.apiKey, 'b1b', [item(chain, 2, 60, 80)]), [20]);
      // A tries again past its release, from its old end, and over what it kept; B over its own range.
      assert.deepEqual(
        await redeem(a.apiKey, 'a2', [
          item(chain, 1, 40, 60),
          item(chain, 1, 60, 70),
          item(chain, 1, 0, 40),
          item(chain, 1, 20, 40),
        ]),
        ['invalid_payword', 'invalid_payword', 'overlap', 'invalid_payword'],
      );
      assert.deepEqual(await redeem(b.apiKey, 'b2', [item(chain, 2, 40, 80, at40), item(chain, 2, 60, 80)]), [
        'invalid_payword',
        'overlap',
      ]);
      // A equivocates with a lower release (30): A's [30, 40) goes back, but B's start stays 40 (a known start is
      // never lowered: had A been paid out, B would be paid for the same units again), so 30..40 go to nobody.
      const at30 = a.release(holderB, 30, chain.b64(30));
      assert.deepEqual(await redeem(b.apiKey, 'b3', [item(chain, 2, 30, 40, at30), item(chain, 2, 30, 40, at30)]), [
        'invalid_payword',
        'invalid_payword',
      ]);
      // A higher release (50) afterwards changes nothing: the lower one stands; nothing beyond 30 for A.
      const at50 = a.release(holderB, 50, chain.b64(50));
      assert.deepEqual(await redeem(b.apiKey, 'b4', [item(chain, 2, 50, 80, at50), item(chain, 2, 30, 40, at30)]), [
        'invalid_payword',
        'invalid_payword',
      ]);
      assert.deepEqual(await redeem(a.apiKey, 'a3', [item(chain, 1, 0, 30), item(chain, 1, 30, 40)]), [
        'overlap',
        'invalid_payword',
      ]);
      const kept = await keptByRanges(chain.chainIdB64);
      assert.equal(kept.get(a.id), 30);
      assert.equal(kept.get(b.id), 20, 'B from 60, where A had shown it was paid to; 30..60 to nobody');
      await assertAudited();
    });

    test('the other order: the release first, then the earlier holder tries past it', async () => {
      const a = await suite.broker.addVendor(`rv-c-${engine}`);
      const b = await suite.broker.addVendor(`rv-d-${engine}`);
      const chain = await coin(100);
      await claim(a, chain, 1);
      const holderB = await claim(b, chain, 90);
      const at30 = a.release(holderB, 30, chain.b64(30));
      assert.deepEqual(await redeem(b.apiKey, 'd1', [item(chain, 2, 30, 90, at30)]), [60]);
      assert.deepEqual(
        await redeem(a.apiKey, 'c1', [item(chain, 1, 0, 60), item(chain, 1, 0, 31), item(chain, 1, 0, 30)]),
        ['beyond_release', 'beyond_release', 30],
      );
      // Continuing from its own end at 30 is refused as beyond the release too, and the whole chain is paid once.
      assert.deepEqual(await redeem(a.apiKey, 'c2', [item(chain, 1, 30, 31)]), ['beyond_release']);
      const kept = await keptByRanges(chain.chainIdB64);
      assert.equal((kept.get(a.id) ?? 0) + (kept.get(b.id) ?? 0), 90);
      await assertAudited();
    });

    test('a long range (hashed in the pool) races a short one and a take-back on the same chain', async () => {
      const a = await suite.broker.addVendor(`rv-e-${engine}`);
      const b = await suite.broker.addVendor(`rv-f-${engine}`);
      for (let round = 0; round < 3; round++) {
        const chain = await coin(6000);
        await claim(a, chain, 1);
        const [long, short] = await Promise.all([
          redeem(a.apiKey, `long-${round}`, [item(chain, 1, 0, 4000)]),
          redeem(a.apiKey, `short-${round}`, [item(chain, 1, 0, 10)]),
        ]);
        // Exactly one of the two was paid; the other overlaps it.
        assert.deepEqual([long, short].filter((r) => r[0] === 'overlap').length, 1, JSON.stringify([long, short]));
        // Now a long continuation (hashed ahead in the pool, judged under the lock) races B's claim and its
        // release at 100: whichever order, A keeps nothing beyond 100, and B is paid once from where A had shown it
        // was paid to (its highest redeemed end, at least 100) up to 5000; the units between go to nobody.
        const from = long[0] === 4000 ? 4000 : 10;
        const [more, bPaid] = await Promise.all([
          redeem(a.apiKey, `more-${round}`, [item(chain, 1, from, 4500)]),
          (async () => {
            const holderB = await claim(b, chain, 5000);
            const at100 = a.release(holderB, 100, chain.b64(100));
            return redeem(b.apiKey, `b-${round}`, [item(chain, 2, 100, 5000, at100)]);
          })(),
        ]);
        if (more[0] !== 4500 - from) {
          assert.ok(more[0] === 'beyond_release' || more[0] === 'end_unknown', JSON.stringify(more));
        }
        const shown = more[0] === 4500 - from ? 4500 : from;
        if (shown <= 100) assert.deepEqual(bPaid, [4900]);
        else {
          assert.deepEqual(bPaid, ['invalid_payword'], `round ${round}: not from below A's ${shown}`);
          assert.deepEqual(await redeem(b.apiKey, `b-on-${round}`, [item(chain, 2, shown, 5000)]), [5000 - shown]);
        }
        const kept = await keptByRanges(chain.chainIdB64);
        assert.equal(kept.get(a.id), Math.min(shown, 100), `round ${round}: taken back to the release`);
        assert.equal(kept.get(b.id), 5000 - Math.max(shown, 100));
      }
      await assertAudited();
    });

    test('a garbage payword at a long range is refused by the pool, and nothing is written', async () => {
      const a = await suite.broker.addVendor(`rv-g-${engine}`);
      const chain = await coin(9000);
      await claim(a, chain, 1);
      const other = PaywordChain.generate(9000);
      const forged = {
        chainId: chain.chainIdB64,
        epoch: 1,
        from: { index: 0, payword: chain.b64(0) },
        to: { index: 8000, payword: other.b64(8000) },
      };
      const before = await suite.broker.counts();
      assert.deepEqual(
        await redeem(a.apiKey, 'g1', [forged, { ...forged, to: { index: 3000, payword: other.b64(3000) } }]),
        ['invalid_payword', 'invalid_payword'],
      );
      const afterCounts = await suite.broker.counts();
      assert.equal(afterCounts.redeemed_ranges, before.redeemed_ranges);
      // A good long range mixed with the forged one: only the good one is paid, once.
      assert.deepEqual(await redeem(a.apiKey, 'g2', [forged, item(chain, 1, 0, 7000), item(chain, 1, 0, 7000)]), [
        'invalid_payword',
        7000,
        'overlap',
      ]);
      await assertAudited();
    });

    test('migration 0010 refills the epoch summaries of a store that already has ranges and take-backs', async () => {
      const a = await suite.broker.addVendor(`rv-h-${engine}`);
      const b = await suite.broker.addVendor(`rv-i-${engine}`);
      const chain = await coin(200, 3);
      await claim(a, chain, 1);
      assert.deepEqual(await redeem(a.apiKey, 'h1', [item(chain, 1, 0, 50), item(chain, 1, 50, 120)]), [150, 210]);
      const holderB = await claim(b, chain, 150);
      // A's release at 70 takes back its [70, 120); B's epoch starts at 120, where A had shown it was paid to.
      assert.deepEqual(await redeem(b.apiKey, 'i1', [item(chain, 2, 70, 150, a.release(holderB, 70, chain.b64(70)))]), [
        'invalid_payword',
      ]);
      assert.deepEqual(await redeem(b.apiKey, 'i2', [item(chain, 2, 120, 150)]), [90]);
      const db = suite.broker.database.db;
      const summaries = () =>
        db
          .selectFrom('epochs')
          .select(['chain_id', 'epoch', 'kept_gross', 'redeemed_index', 'redeemed_payword'])
          .orderBy('chain_id')
          .orderBy('epoch')
          .execute();
      const wanted = await summaries();
      assert.ok(wanted.some((e) => e.chain_id === chain.chainIdB64 && e.epoch === 1 && e.kept_gross === 210));
      // Back to the store before 0010, then migrate again.
      await sql`DROP INDEX redeemed_ranges_kept_to`.execute(db);
      for (const column of ['kept_gross', 'redeemed_index', 'redeemed_payword']) {
        await sql`ALTER TABLE epochs DROP COLUMN ${sql.ref(column)}`.execute(db);
      }
      await sql`DELETE FROM kysely_migration WHERE name = '0010_epoch_redeemed'`.execute(db);
      // The migrations after 0010 go back too (migrations run in order): 0011 made a table, carried over again.
      await sql`DROP TABLE connection_tokens`.execute(db);
      await sql`DELETE FROM kysely_migration WHERE name = '0011_connection_tokens'`.execute(db);
      await migrate(db as never, migrations);
      assert.deepEqual(await summaries(), wanted);
      await assertAudited();
    });

    test('the audit names a tampered highest end (index or payword) and a kept gross raised or lowered', async () => {
      const a = await suite.broker.addVendor(`rv-l-${engine}`);
      const chain = await coin(60);
      await claim(a, chain, 1);
      assert.deepEqual(await redeem(a.apiKey, 'l1', [item(chain, 1, 0, 20), item(chain, 1, 20, 30)]), [20, 10]);
      await assertAudited();
      const db = suite.broker.database.db;
      const tamper = async (patch: Partial<BrokerSchema['epochs']>, expected: string) => {
        const original = await db
          .selectFrom('epochs')
          .select(['kept_gross', 'redeemed_index', 'redeemed_payword'])
          .where('chain_id', '=', chain.chainIdB64)
          .where('epoch', '=', 1)
          .executeTakeFirstOrThrow();
        await db.updateTable('epochs').set(patch).where('chain_id', '=', chain.chainIdB64).execute();
        const audited = await suite.broker.audit();
        assert.ok(
          audited.discrepancies.some((d) => d.startsWith(`chain ${chain.chainIdB64}:`) && d.includes(expected)),
          `${JSON.stringify(patch)}: ${audited.discrepancies.join('; ')}`,
        );
        await db.updateTable('epochs').set(original).where('chain_id', '=', chain.chainIdB64).execute();
        await assertAudited();
      };
      await tamper({ redeemed_payword: chain.b64(29) }, 'highest redeemed end at 30');
      await tamper({ redeemed_index: 20, redeemed_payword: chain.b64(20) }, 'highest redeemed end at 20');
      await tamper({ redeemed_index: null, redeemed_payword: null }, 'highest redeemed end at null');
      await tamper({ kept_gross: 31 }, 'kept gross of 31');
      await tamper({ kept_gross: 0 }, 'kept gross of 0');
    });

    test('two brokers in one process, each on its own store: prepared queries find only their own rows', async () => {
      const other = await startBroker(engine, suite.bank);
      try {
        const a = await suite.broker.addVendor(`rv-j-${engine}`);
        const chain = await coin(50);
        // The vendor and the chain exist only in the first broker's store.
        const foreign = await call(other.api, 'POST', `/chains/${chain.chainIdB64}/claim`, {
          token: a.apiKey,
          body: proof(chain, 1),
        });
        assert.equal(foreign.status, 401, foreign.text);
        const a2 = await other.addVendor(`rv-j-${engine}`);
        const unknown = await call(other.api, 'POST', `/chains/${chain.chainIdB64}/claim`, {
          token: a2.apiKey,
          body: proof(chain, 1),
        });
        assert.equal(unknown.status, 404, unknown.text);
        await claim(a, chain, 1);
        assert.deepEqual(await redeemAt(other.api, a2.apiKey, 'j1', [item(chain, 1, 0, 10)]), ['unknown_chain']);
        assert.deepEqual(await redeem(a.apiKey, 'j1', [item(chain, 1, 0, 10)]), [10]);
        const otherAudit = await other.audit();
        assert.ok(otherAudit.ok, otherAudit.discrepancies.join('; '));
      } finally {
        await other.close();
      }
    });

    test('PostgreSQL: the chain lock is a row lock, and two brokers on one store pay a range once', {
      skip: engine === 'postgres' ? false : 'row locks are PostgreSQL’s',
    }, async () => {
      const a = await suite.broker.addVendor('rv-k-pg');
      const chain = await coin(8000);
      await claim(a, chain, 1);
      // While one transaction holds the chain through the prepared lock query, another cannot lock the row.
      const second = openDatabase<BrokerSchema>(suite.broker.database.url);
      try {
        let release: () => void = () => {};
        const held = new Promise<void>((r) => {
          release = r;
        });
        let locked: () => void = () => {};
        const isLocked = new Promise<void>((r) => {
          locked = r;
        });
        const holding = suite.broker.database.db.transaction().execute(async (trx) => {
          assert.ok(await loadChainState(trx, 'postgres', chain.chainIdB64));
          locked();
          await held;
        });
        await isLocked;
        await assert.rejects(
          sql`SELECT chain_id FROM chains WHERE chain_id = ${chain.chainIdB64} FOR UPDATE NOWAIT`.execute(second.db),
          (error: { code?: string }) => error.code === '55P03',
        );
        release();
        await holding;

        // A second broker app on the same store, its own pool: the same range sent to both at once is paid once.
        const port = await freePort();
        const url = `http://127.0.0.1:${port}`;
        const app = await createBrokerApp({
          db: second.db,
          engine: 'postgres',
          bank: new HttpBank({ url: suite.bank.url, apiKey: suite.bank.apiKey, timeoutMs: 2000 }),
          logger: pino({ level: 'silent' }),
          config: { publicUrl: suite.broker.url },
        });
        await app.listen({ host: '127.0.0.1', port });
        try {
          const api = `${url}/api/v1`;
          let from = 0;
          for (const to of [10, 3000, 3005, 7000]) {
            const answers = await Promise.all([
              redeemAt(suite.broker.api, a.apiKey, `k-${to}-1`, [item(chain, 1, from, to)]),
              redeemAt(api, a.apiKey, `k-${to}-2`, [item(chain, 1, from, to)]),
              redeemAt(api, a.apiKey, `k-${to}-3`, [item(chain, 1, from, to)]),
            ]);
            const paid = answers.filter((r) => r[0] === to - from);
            assert.equal(paid.length, 1, JSON.stringify(answers));
            from = to;
          }
          assert.equal((await keptByRanges(chain.chainIdB64)).get(a.id), 7000);
          await assertAudited();
        } finally {
          await app.close();
        }
      } finally {
        await second.close();
      }
    });
  });
}
