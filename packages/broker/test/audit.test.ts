import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import type { HolderCertificate } from '@netpay/protocol';
import { tempDir, testEngines } from '@netpay/service-kit/testing';
import { ledgerDiscrepancies } from '../src/audit-rules.ts';
import { loadAuditRows } from '../src/audit.ts';
import {
  type BankUnderTest,
  type BrokerUnderTest,
  call,
  item,
  PaywordChain,
  startBank,
  startBroker,
  type TestVendor,
} from './harness.ts';

const BIN = fileURLToPath(new URL('../../cli/bin/netpay.mjs', import.meta.url));

/** What the audit said before it checked chain by chain: totals across all chains and the entries themselves. */
const GLOBAL_ONLY = [/^postings sum to/, /^entry \S+ sums to/, /^coins outstanding/, /below its floor/];

/**
 * One vendor release endpoint for every vendor of a test: answers the broker's refund claim with a release,
 * signed by the holder, at the index the test chose for that chain.
 */
async function releaseServer(
  vendors: Map<string, TestVendor>,
  points: Map<string, { chain: PaywordChain; index: number }>,
): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      const { holder } = JSON.parse(body) as { holder: HolderCertificate };
      const vendor = vendors.get(holder.prevVendorId);
      const point = points.get(holder.chainId);
      if (!vendor || !point) {
        res.writeHead(503).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ release: vendor.release(holder, point.index, point.chain.b64(point.index)) }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { url: `http://127.0.0.1:${port}/release`, server };
}

for (const engine of testEngines()) {
  describe(`audit chain by chain on ${engine}`, () => {
    let bank: BankUnderTest;
    let broker: BrokerUnderTest;
    let releases: { url: string; server: Server };
    const vendors = new Map<string, TestVendor>();
    const releasePoints = new Map<string, { chain: PaywordChain; index: number }>();
    let keySeq = 0;

    before(async () => {
      bank = await startBank(engine);
      releases = await releaseServer(vendors, releasePoints);
    });
    after(async () => {
      releases?.server.close();
      await bank?.close();
    });
    // A fresh broker per test: each test corrupts its own store.
    beforeEach(async () => {
      broker = await startBroker(engine, bank);
    });
    afterEach(async () => {
      await broker?.close();
    });

    const vendor = async (id: string) => {
      const v = await broker.addVendor(id, releases.url);
      vendors.set(id, v);
      return v;
    };
    /** A coin of 100 units of 2 cents. */
    const coin = async () => {
      const customer = await broker.customer();
      const chain = PaywordChain.generate(100);
      const bought = await broker.buyCoin(customer.token, { amount: 200, unit: 2, chain });
      assert.equal(bought.status, 201, bought.text);
      return { chain, token: customer.token };
    };
    /** A claim carrying the customer's payword at `proof` (v1.1 proof of payment). */
    const claim = async (v: TestVendor, chain: PaywordChain, proof: number) => {
      const res = await call(broker.api, 'POST', `/chains/${chain.chainIdB64}/claim`, {
        token: v.apiKey,
        body: { proof: { index: proof, payword: chain.b64(proof) } },
      });
      assert.equal(res.status, 200, res.text);
      return res.body.holder as HolderCertificate;
    };
    const redeem = async (v: TestVendor, items: unknown[]) => {
      const res = await call(broker.api, 'POST', '/redemptions', {
        token: v.apiKey,
        key: `audit-${++keySeq}`,
        body: { items },
      });
      assert.equal(res.status, 200, res.text);
      for (const i of res.body.items) assert.equal(i.status, 'accepted', res.text);
      return res.body;
    };
    const refund = async (chain: PaywordChain, token: string, releasedAt: number) => {
      releasePoints.set(chain.chainIdB64, { chain, index: releasedAt });
      const res = await call(broker.api, 'POST', `/coins/${chain.chainIdB64}/refund`, { token });
      assert.equal(res.status, 200, res.text);
      return res.body as { refunded: number; releasedIndex: number };
    };
    const assertOk = async () => {
      const result = await broker.audit();
      assert.ok(result.ok, result.discrepancies.join('\n'));
      return result;
    };
    const db = () => broker.database.db;
    const rangeOf = (chain: PaywordChain) =>
      db().selectFrom('redeemed_ranges').selectAll().where('chain_id', '=', chain.chainIdB64).executeTakeFirstOrThrow();
    const entryOf = (kind: string, reference: string) =>
      db()
        .selectFrom('ledger_entries')
        .select('id')
        .where('kind', '=', kind)
        .where('reference', '=', reference)
        .executeTakeFirstOrThrow();
    const addToPosting = async (entryId: string, accountId: string, delta: number) => {
      const row = await db()
        .selectFrom('postings')
        .select('amount')
        .where('entry_id', '=', entryId)
        .where('account_id', '=', accountId)
        .executeTakeFirstOrThrow();
      await db()
        .updateTable('postings')
        .set({ amount: row.amount + delta })
        .where('entry_id', '=', entryId)
        .where('account_id', '=', accountId)
        .execute();
    };
    /** The audit fails, and one of its discrepancies names the chain and matches `about`. */
    const assertNames = async (chain: PaywordChain, about: RegExp) => {
      const result = await broker.audit();
      assert.equal(result.ok, false, 'the audit must fail');
      const prefix = `chain ${chain.chainIdB64}: `;
      assert.ok(
        result.discrepancies.some((d) => d.startsWith(prefix) && about.test(d.slice(prefix.length))),
        `expected a discrepancy '${prefix}…${about.source}…' among:\n${result.discrepancies.join('\n')}`,
      );
      return result;
    };

    /** What the audit checked before, totals across all chains and each entry balanced, sees nothing wrong. */
    const assertTotalsHold = async (result: { discrepancies: string[] }) => {
      assert.deepEqual(ledgerDiscrepancies(await loadAuditRows(db())).discrepancies, []);
      for (const d of result.discrepancies) {
        for (const pattern of GLOBAL_ONLY) assert.doesNotMatch(d, pattern);
      }
    };

    test('the same units paid twice on one chain, the totals kept balanced by another chain: the audit names it', async () => {
      const a = await vendor('twice-a');
      const x = await coin();
      const y = await coin();
      await claim(a, x.chain, 10);
      await claim(a, y.chain, 50);
      await redeem(a, [item(x.chain, 1, 0, 10), item(y.chain, 1, 0, 50)]);
      await assertOk();

      // A second redemption entry pays X's range again; Y's entry is shrunk by as much, so every total holds.
      const rangeX = await rangeOf(x.chain);
      const rangeY = await rangeOf(y.chain);
      const gross = rangeX.gross;
      await db()
        .insertInto('ledger_entries')
        .values({ id: 'le_forged', kind: 'redemption', reference: rangeX.id, created_at: rangeX.created_at })
        .execute();
      await db()
        .insertInto('postings')
        .values([
          { entry_id: 'le_forged', account_id: 'coins_outstanding', amount: gross },
          { entry_id: 'le_forged', account_id: 'vendor:twice-a', amount: -gross },
        ])
        .execute();
      const entryY = await entryOf('redemption', rangeY.id);
      await addToPosting(entryY.id, 'coins_outstanding', -gross);
      await addToPosting(entryY.id, 'vendor:twice-a', gross);

      const result = await assertNames(x.chain, /has 2 redemption entries/);
      await assertNames(x.chain, /its entries post/);
      await assertNames(y.chain, /redemption entry that posts/);
      await assertTotalsHold(result);

      // The operator's command says so too: exit 1, and the discrepancies on stderr, each naming its chain.
      const dir = tempDir('netpay-audit-');
      try {
        const cli = spawnSync(
          process.execPath,
          [BIN, 'admin', 'audit', '--data', dir.path, '--db', broker.database.url],
          { encoding: 'utf8' },
        );
        assert.equal(cli.status, 1, cli.stderr);
        assert.equal(JSON.parse(cli.stdout).ok, false);
        const lines = cli.stderr.trim().split('\n');
        assert.equal(lines[0], `audit failed: ${result.discrepancies.length} discrepancies`);
        assert.deepEqual(
          lines.slice(1).map((l) => l.trim()),
          result.discrepancies,
        );
        assert.ok(lines.some((l) => l.trim().startsWith(`chain ${x.chain.chainIdB64}: `)));
      } finally {
        dir.remove();
      }
    });

    test('a range kept past its epoch’s release: the audit names the chain', async () => {
      const a = await vendor('past-a');
      const { chain, token } = await coin();
      await claim(a, chain, 12);
      await redeem(a, [item(chain, 1, 0, 12)]);
      await coin(); // another customer's coin keeps coins outstanding above its floor in total
      assert.deepEqual(await refund(chain, token, 12), { chainId: chain.chainIdB64, refunded: 176, releasedIndex: 12 });
      await assertOk();

      // The range grows to 16 past the release at 12, and its redemption entry with it: the ledger stays balanced.
      const range = await rangeOf(chain);
      await db()
        .updateTable('redeemed_ranges')
        .set({ to_index: 16, kept_to: 16, gross: 32 })
        .where('id', '=', range.id)
        .execute();
      const entry = await entryOf('redemption', range.id);
      await addToPosting(entry.id, 'coins_outstanding', 8);
      await addToPosting(entry.id, 'vendor:past-a', -8);

      await assertTotalsHold(await assertNames(chain, /release/));
    });

    test('a range kept past a later epoch’s start: the audit names the chain', async () => {
      const a = await vendor('later-a');
      const b = await vendor('later-b');
      const { chain } = await coin();
      await claim(a, chain, 12);
      await redeem(a, [item(chain, 1, 0, 12)]);
      await claim(b, chain, 20);
      await assertOk();

      // Epoch 2 now starts at 8, below what A keeps (to 12): those units would be paid to both holders' epochs.
      await db()
        .updateTable('epochs')
        .set({ start_index: 8, start_payword: chain.b64(8), start_kind: 'release' })
        .where('chain_id', '=', chain.chainIdB64)
        .where('epoch', '=', 2)
        .execute();

      await assertTotalsHold(await assertNames(chain, /later epoch’s start at 8|later epoch's start at 8/));
    });

    test('a refund larger than the unspent remainder: the audit names the chain', async () => {
      const a = await vendor('over-a');
      const { chain, token } = await coin();
      await claim(a, chain, 30);
      await redeem(a, [item(chain, 1, 0, 30)]);
      await coin(); // another customer's coin keeps coins outstanding above its floor in total
      await refund(chain, token, 30);
      await assertOk();

      // Ten cents more refunded than the 70 unspent units, written consistently in the chain and the ledger.
      await db()
        .updateTable('chains')
        .set({ refunded_amount: 150, refunded_units: 75 })
        .where('chain_id', '=', chain.chainIdB64)
        .execute();
      const entry = await entryOf('refund', chain.chainIdB64);
      await addToPosting(entry.id, 'coins_outstanding', 10);
      await addToPosting(entry.id, 'cash', -10);

      await assertTotalsHold(await assertNames(chain, /refund/));
    });

    test('a tampered posting amount: the audit names the chain', async () => {
      const a = await vendor('tamper-a');
      const { chain } = await coin();
      await claim(a, chain, 40);
      await redeem(a, [item(chain, 1, 0, 40)]);
      await assertOk();

      const range = await rangeOf(chain);
      const entry = await entryOf('redemption', range.id);
      await addToPosting(entry.id, 'vendor:tamper-a', -7);

      await assertNames(chain, /vendor:tamper-a/);
    });

    test('after purchases, a move, a take-back and refunds the audit holds', async () => {
      const a = await vendor('busy-a');
      const b = await vendor('busy-b');
      // One coin moves from A to B; A redeemed past the release it then signed, so the broker takes it back. B's
      // epoch still starts at 20, where A's own claim showed the customer had paid A: the units [12, 20) go to nobody.
      const moved = await coin();
      await claim(a, moved.chain, 20);
      await redeem(a, [item(moved.chain, 1, 0, 20)]);
      const holderB = await claim(b, moved.chain, 21);
      const release = a.release(holderB, 12, moved.chain.b64(12));
      const below = await call(broker.api, 'POST', '/redemptions', {
        token: b.apiKey,
        key: `audit-${++keySeq}`,
        body: { items: [item(moved.chain, 2, 12, 30, release)] },
      });
      assert.equal(below.body.items[0].status, 'rejected', below.text);
      await redeem(b, [item(moved.chain, 2, 20, 30), item(moved.chain, 2, 30, 45)]);
      const takenBack = await db().selectFrom('ledger_entries').select('id').where('kind', '=', 'take_back').execute();
      assert.equal(takenBack.length, 1);
      // One coin spent at B and refunded; one never used and refunded whole; one left active.
      const spent = await coin();
      await claim(b, spent.chain, 25);
      await redeem(b, [item(spent.chain, 1, 0, 25)]);
      await refund(spent.chain, spent.token, 25);
      const unused = await coin();
      await refund(unused.chain, unused.token, 0);
      await coin();

      const result = await assertOk();
      assert.equal(result.totals.chains, 4);
      assert.equal(result.totals.redeemedGross, 24 + 50 + 50);
      assert.equal(result.totals.refunded, 150 + 200);
      assert.equal(result.totals.expectedCoinsOutstanding, 4 * 200 - 24 - 50 - 50 - 150 - 200);
    });
  });
}
