import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, execFile, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type Clock, openDatabase, systemClock } from '@netpay/service-kit';
import { tempDir, testEngines } from '@netpay/service-kit/testing';
import { HttpBank } from '../src/http-bank.ts';
import { CASH } from '../src/ledger.ts';
import { accountBalance } from '../src/ledger-store.ts';
import { type PayoutReport, runPayouts } from '../src/payouts.ts';
import type { BrokerSchema } from '../src/schema.ts';
import { contested, epochEndKnown, type RedeemedCredit, settle } from '../src/settlement.ts';
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

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const RACER = fileURLToPath(new URL('./payout-racer.ts', import.meta.url));
const BIN = fileURLToPath(new URL('../../cli/bin/netpay.mjs', import.meta.url));
const DAY_SECONDS = 86_400;

describe('settlement rule', () => {
  const now = new Date('2026-11-24T12:00:00Z');
  const credit = (over: Partial<RedeemedCredit> = {}): RedeemedCredit => ({
    gross: 500,
    fee: 10,
    takenBackGross: 0,
    takenBackFee: 0,
    createdAt: '2026-11-24T11:30:00Z',
    epochEndKnown: false,
    contested: false,
    ...over,
  });
  const run = (credits: RedeemedCredit[], balance: number, pendingPayouts = 0, settlementWindowSeconds = 3600) =>
    settle({ balance, pendingPayouts, credits, now, settlementWindowSeconds });

  test('credit on an epoch whose end is unknown is held for the window, then payable', () => {
    assert.deepEqual(run([credit()], 490), { held: 490, payable: 0 });
    // Held while younger than the window: an hour old is settled in a window of an hour.
    assert.deepEqual(run([credit({ createdAt: '2026-11-24T11:00:00Z' })], 490, 0, 3600), { held: 0, payable: 490 });
    assert.deepEqual(run([credit({ createdAt: '2026-11-24T11:00:01Z' })], 490, 0, 3600), { held: 490, payable: 0 });
    assert.deepEqual(run([credit()], 490, 0, 0), { held: 0, payable: 490 });
  });

  test('a known end releases the credit at once; only the kept net (after take-backs) is held', () => {
    assert.deepEqual(run([credit({ epochEndKnown: true })], 490), { held: 0, payable: 490 });
    const partly = credit({ takenBackGross: 200, takenBackFee: 4 });
    assert.deepEqual(run([partly, credit({ epochEndKnown: true })], 784), { held: 294, payable: 490 });
  });

  test('a contested range is held whatever its age and its epoch’s end, until the next start is known', () => {
    const old = { createdAt: '2026-11-01T00:00:00Z', contested: true };
    assert.deepEqual(run([credit({ ...old, epochEndKnown: true })], 490), { held: 490, payable: 0 });
    assert.deepEqual(run([credit(old), credit({ epochEndKnown: true })], 980), { held: 490, payable: 490 });
    // Reaching the next claim's payword while the next start is unknown; at the claim counts (a double spend may
    // end there), below it or once the start is known does not.
    assert.equal(contested({ keptTo: 70, nextStart: null, nextClaim: 51 }), true);
    assert.equal(contested({ keptTo: 51, nextStart: null, nextClaim: 51 }), true);
    assert.equal(contested({ keptTo: 50, nextStart: null, nextClaim: 51 }), false);
    assert.equal(contested({ keptTo: 70, nextStart: 50, nextClaim: 51 }), false);
    assert.equal(contested({ keptTo: 70, nextStart: null, nextClaim: null }), false);
    assert.equal(contested({ keptTo: 70, nextStart: undefined, nextClaim: undefined }), false);
  });

  test('pending payouts count as paid; a debt after a take-back pays nothing', () => {
    assert.deepEqual(run([], 1000, 600), { held: 0, payable: 400 });
    assert.deepEqual(run([], -50), { held: 0, payable: 0 });
    assert.deepEqual(run([credit()], 300), { held: 490, payable: 0 });
    assert.throws(() => run([], 1, 0, -1));
  });

  test("an epoch's end is known by its release, its forced bound, or the chain's refund", () => {
    const none = { releaseIndex: null, forcedBound: null, chainStatus: 'active' };
    assert.equal(epochEndKnown(none), false);
    assert.equal(epochEndKnown({ ...none, releaseIndex: 0 }), true);
    assert.equal(epochEndKnown({ ...none, forcedBound: 12 }), true);
    assert.equal(epochEndKnown({ ...none, chainStatus: 'refunded' }), true);
    assert.equal(epochEndKnown({ ...none, chainStatus: 'refunding' }), false);
    assert.equal(epochEndKnown({ releaseIndex: undefined, forcedBound: undefined, chainStatus: undefined }), false);
  });
});

interface Racer {
  go(): void;
  report: Promise<PayoutReport>;
}

/** A payout run in its own process (payout-racer.ts), connected and waiting for `go`. */
async function startRacer(dbUrl: string, bank: BankUnderTest, windowSeconds: number): Promise<Racer> {
  const child: ChildProcessWithoutNullStreams = spawn(
    process.execPath,
    ['--import', 'tsx', RACER, dbUrl, bank.url, bank.apiKey, String(windowSeconds)],
    { cwd: ROOT, stdio: 'pipe' },
  );
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      if (stdout.startsWith('ready\n')) resolve();
    });
    exited.then((code) => reject(new Error(`racer exited ${code} before it was ready: ${stderr}`)));
  });
  return {
    go: () => child.stdin.end('go\n'),
    report: exited.then((code) => {
      if (code !== 0) throw new Error(`racer exited ${code}: ${stderr}`);
      return JSON.parse(stdout.slice('ready\n'.length)) as PayoutReport;
    }),
  };
}

for (const engine of testEngines()) {
  describe(`payouts on ${engine}`, () => {
    let bank: BankUnderTest;
    let broker: BrokerUnderTest;
    let customerToken: string;
    beforeEach(async () => {
      bank = await startBank(engine);
      broker = await startBroker(engine, bank);
      customerToken = (await broker.customer()).token;
    });
    afterEach(async () => {
      await broker?.close();
      await bank?.close();
    });

    const payoutRun = (windowSeconds: number, options: { clock?: Clock; bankTimeoutMs?: number } = {}) =>
      runPayouts({
        db: broker.database.db,
        engine,
        bank: new HttpBank({ url: bank.url, apiKey: bank.apiKey, timeoutMs: options.bankTimeoutMs ?? 5000 }),
        clock: options.clock ?? systemClock,
        config: { currency: 'NZD', settlementWindowSeconds: windowSeconds },
      });

    const claim = async (vendor: TestVendor, chain: PaywordChain, proofIndex: number) => {
      const claimed = await call(broker.api, 'POST', `/chains/${chain.chainIdB64}/claim`, {
        token: vendor.apiKey,
        body: { proof: { index: proofIndex, payword: chain.b64(proofIndex) } },
      });
      assert.equal(claimed.status, 200, claimed.text);
      return claimed.body;
    };

    const redeem = async (vendor: TestVendor, items: Array<Record<string, unknown>>) => {
      const redeemed = await call(broker.api, 'POST', '/redemptions', {
        token: vendor.apiKey,
        key: `r-${Math.random()}`,
        body: { items },
      });
      assert.equal(redeemed.status, 200, redeemed.text);
      for (const i of redeemed.body.items) assert.equal(i.status, 'accepted', redeemed.text);
      return redeemed.body.credited as number;
    };

    /** A new coin of 100 units of 10, paid at `vendor` up to index 50 and redeemed: the vendor's net credit. */
    const creditedVendor = async (id: string) => {
      const chain = PaywordChain.generate(100);
      const bought = await broker.buyCoin(customerToken, { amount: 1000, unit: 10, chain });
      assert.equal(bought.status, 201, bought.text);
      const vendor = await broker.addVendor(id);
      await claim(vendor, chain, 50);
      const credited = await redeem(vendor, [item(chain, 1, 0, 50)]);
      assert.ok(credited > 0);
      return { vendor, chain, credited };
    };

    const bankPayouts = async () => {
      const statement = await bank.statement();
      assert.equal(statement.status, 200, statement.text);
      return (statement.body.lines as Array<{ kind: string; amount: number; reference: string }>).filter(
        (l) => l.kind === 'payout',
      );
    };

    const assertBooks = async () => {
      const cash = await accountBalance(broker.database.db, CASH);
      assert.ok(cash >= 0, `broker cash ${cash} below zero`);
      assert.equal(cash, await bank.balance(), 'the broker cash account agrees with the bank');
      const audited = await broker.audit();
      assert.ok(audited.ok, audited.discrepancies.join('; '));
    };

    test('payout runs racing on separate connections and processes pay each vendor exactly once', async () => {
      const vendors = [];
      for (let i = 0; i < 5; i++) vendors.push(await creditedVendor(`racer-${i}`));

      // Two runs in other processes (other hosts) and, in this process, one on the broker's own handle and, on
      // PostgreSQL, one on a second pool of the same schema. Not two SQLite handles in one process: better-sqlite3
      // waits for a lock synchronously, so the second would block the thread the first needs to finish.
      const racers = await Promise.all([0, 1].map(() => startRacer(broker.database.url, bank, 0)));
      const second = engine === 'postgres' ? openDatabase<BrokerSchema>(broker.database.url) : undefined;
      try {
        const inProcess = (db: typeof broker.database.db) =>
          runPayouts({
            db,
            engine,
            bank: new HttpBank({ url: bank.url, apiKey: bank.apiKey }),
            clock: systemClock,
            config: { currency: 'NZD', settlementWindowSeconds: 0 },
          });
        for (const r of racers) r.go();
        const reports = await Promise.all([
          ...racers.map((r) => r.report),
          inProcess(broker.database.db),
          ...(second ? [inProcess(second.db)] : []),
        ]);

        const paid = reports.flatMap((r) => r.paid);
        assert.deepEqual(
          paid.map((p) => [p.vendorId, p.amount]).sort(),
          vendors.map((v) => [v.vendor.id, v.credited]).sort(),
          'each vendor reported paid once, by one run',
        );
        assert.deepEqual(
          reports.flatMap((r) => r.failed),
          [],
        );
      } finally {
        await second?.close();
      }

      const lines = await bankPayouts();
      assert.deepEqual(
        lines.map((l) => [l.reference, -l.amount]).sort(),
        vendors.map((v) => [`vendor:${v.vendor.id}`, v.credited]).sort(),
        'the bank paid each vendor once',
      );
      const payouts = await broker.database.db.selectFrom('payouts').select(['vendor_id', 'status']).execute();
      assert.deepEqual(
        payouts.map((p) => [p.vendor_id, p.status]).sort(),
        vendors.map((v) => [v.vendor.id, 'paid']).sort(),
      );
      const entries = await broker.database.db
        .selectFrom('ledger_entries')
        .select('reference')
        .where('kind', '=', 'payout')
        .execute();
      assert.equal(entries.length, vendors.length, 'each payout posted once');
      for (const v of vendors) {
        const account = await call(broker.api, 'GET', '/vendor/account', { token: v.vendor.apiKey });
        assert.deepEqual(account.body, {
          vendorId: v.vendor.id,
          balance: 0,
          pending: 0,
          paidOut: v.credited,
          currency: 'NZD',
        });
      }
      await assertBooks();
    });

    test('a run repeated after a bank timeout pays once, under the same idempotency key', async () => {
      const { vendor, credited } = await creditedVendor('slow-bank');
      // The sandbox bank commits the payout, then answers late: the broker gives up before the answer.
      await bank.faults({ latencyMs: 3000 });
      const timedOut = await payoutRun(0, { bankTimeoutMs: 100 });
      assert.deepEqual(timedOut.paid, []);
      assert.equal(timedOut.pending.length, 1, JSON.stringify(timedOut));
      const payoutId = timedOut.pending[0]?.payoutId;
      // Wait for the bank's commit (not for a time): the payout is on its statement.
      for (let tries = 0; (await bankPayouts()).length === 0; tries++) {
        assert.ok(tries < 200, 'the bank never recorded the payout');
        await new Promise((r) => setTimeout(r, 50));
      }
      await bank.clearFaults();

      const retried = await payoutRun(0);
      assert.deepEqual(retried.paid, [{ payoutId, vendorId: vendor.id, amount: credited }]);
      assert.deepEqual(
        (await bankPayouts()).map((l) => [l.reference, -l.amount]),
        [[`vendor:${vendor.id}`, credited]],
        'one payout at the bank',
      );
      const again = await payoutRun(0);
      assert.deepEqual([again.paid, again.pending, again.failed], [[], [], []]);
      await assertBooks();
    });

    test('credit on an epoch whose end is unknown is held, and paid once the release is learned', async () => {
      const chain = PaywordChain.generate(100);
      assert.equal((await broker.buyCoin(customerToken, { amount: 1000, unit: 10, chain })).status, 201);
      const a = await broker.addVendor('first-holder');
      const b = await broker.addVendor('second-holder');
      await claim(a, chain, 30);
      const creditedA = await redeem(a, [item(chain, 1, 0, 30)]);

      // A could still sign a release below 30 for epoch 1 and lose part of this credit: held.
      const early = await payoutRun(DAY_SECONDS);
      assert.deepEqual(early.paid, []);
      assert.deepEqual(early.held, [{ vendorId: a.id, amount: creditedA }]);
      const viewA = await call(broker.api, 'GET', '/vendor/account', { token: a.apiKey });
      assert.deepEqual(viewA.body, { vendorId: a.id, balance: creditedA, pending: 0, paidOut: 0, currency: 'NZD' });

      // B takes the coin and redeems from A's release: the broker learns where epoch 1 ends.
      const claimB = await claim(b, chain, 31);
      const release = a.release(claimB.holder, 30, chain.b64(30));
      const creditedB = await redeem(b, [item(chain, 2, 30, 31, release)]);
      const known = await broker.database.db
        .selectFrom('epochs')
        .select('release_index')
        .where('epoch', '=', 1)
        .executeTakeFirstOrThrow();
      assert.equal(known.release_index, 30);

      const settled = await payoutRun(DAY_SECONDS);
      assert.deepEqual(
        settled.paid.map((p) => [p.vendorId, p.amount]),
        [[a.id, creditedA]],
      );
      assert.deepEqual(settled.held, creditedB > 0 ? [{ vendorId: b.id, amount: creditedB }] : []);

      // Past the window, B's credit is paid although epoch 2's end is still unknown.
      const later: Clock = { now: () => new Date(Date.now() + (DAY_SECONDS + 1) * 1000) };
      const afterWindow = await payoutRun(DAY_SECONDS, { clock: later });
      assert.deepEqual(afterWindow.held, []);
      assert.deepEqual(
        afterWindow.paid.map((p) => [p.vendorId, p.amount]),
        creditedB > 0 ? [[b.id, creditedB]] : [],
      );
      await assertBooks();
    });

    test('netpay admin payouts holds by default and takes --settlement-window-seconds', async () => {
      const { vendor, credited } = await creditedVendor('cli-payee');
      const data = tempDir('netpay-payouts-');
      try {
        writeFileSync(join(data.path, 'bank-api-key'), bank.apiKey, { mode: 0o600 });
        const admin = async (...extra: string[]) => {
          const args = ['admin', 'payouts', '--data', data.path, '--db', broker.database.url, '--bank-url', bank.url];
          const { stdout } = await promisify(execFile)(process.execPath, [BIN, ...args, ...extra], { cwd: ROOT });
          return JSON.parse(stdout) as PayoutReport;
        };
        const held = await admin();
        assert.deepEqual([held.paid, held.held], [[], [{ vendorId: vendor.id, amount: credited }]]);
        const paid = await admin('--settlement-window-seconds', '0');
        assert.deepEqual(
          paid.paid.map((p) => [p.vendorId, p.amount]),
          [[vendor.id, credited]],
        );
      } finally {
        data.remove();
      }
      await assertBooks();
    });
  });
}
