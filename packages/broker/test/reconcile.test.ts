import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { PaywordChain } from '@netpay/protocol';
import { openDatabase } from '@netpay/service-kit';
import { createTestDatabase, type TestDatabase, tempDir, testEngines } from '@netpay/service-kit/testing';
import { accountBalance } from '../src/ledger-store.ts';
import {
  isDue,
  probeCard,
  probeFromCharge,
  repeatOf,
  settlementOf,
  type StoredPurchaseAttempt,
} from '../src/purchase-attempt.ts';
import { reconcilePurchases, startReconcileJob } from '../src/reconcile.ts';
import type { BrokerSchema } from '../src/schema.ts';
import { formKeyAfter } from '../src/web/buy-form.ts';
import {
  type BankUnderTest,
  type BrokerUnderTest,
  call,
  freePort,
  GOOD_CARD,
  type Reply,
  startBank,
  startBroker,
} from './harness.ts';
import { csrfOf, inputValue, WebClient } from './web-client.ts';

const BIN = fileURLToPath(new URL('../../cli/bin/netpay.mjs', import.meta.url));

describe('purchase reconciliation rules', () => {
  test('the bank answer to a probe says what it holds under the key', () => {
    assert.deepEqual(probeFromCharge({ ok: true, chargeId: 'ch_1', amount: 200 }), {
      kind: 'charged',
      chargeId: 'ch_1',
      amount: 200,
    });
    assert.deepEqual(probeFromCharge({ ok: false, code: 'card_declined' }), { kind: 'declined' });
    assert.deepEqual(probeFromCharge({ ok: false, code: 'insufficient_funds' }), { kind: 'declined' });
    // A request the bank never stored is checked as a card, and the probe's card fails that check.
    assert.deepEqual(probeFromCharge({ ok: false, code: 'invalid_card' }), { kind: 'absent' });
    assert.deepEqual(probeFromCharge({ ok: false, code: 'idempotency_conflict' }), { kind: 'mismatch' });
  });

  test('a probe card matches the purchase on its last four digits and expiry and is no card at all', () => {
    const card = probeCard('4242', '12/30');
    assert.equal(card.number.replace(/[^0-9]/g, '').slice(-4), '4242');
    assert.equal(card.expiry, '12/30');
    assert.doesNotMatch(card.number, /^[0-9 ]{12,}$/);
  });

  test('charged → issue; declined, absent → closed; anything odd → held for a person', () => {
    const attempt = { amount: 200 };
    assert.deepEqual(settlementOf(attempt, { kind: 'charged', chargeId: 'ch_1', amount: 200 }), {
      action: 'issue',
      chargeId: 'ch_1',
    });
    assert.deepEqual(settlementOf(attempt, { kind: 'declined' }), { action: 'close', status: 'declined' });
    assert.deepEqual(settlementOf(attempt, { kind: 'absent' }), { action: 'close', status: 'abandoned' });
    assert.equal(settlementOf(attempt, { kind: 'charged', chargeId: 'ch_1', amount: 199 }).action, 'hold');
    assert.equal(settlementOf(attempt, { kind: 'mismatch' }).action, 'hold');
  });

  test('only open attempts past their grace are due', () => {
    const now = new Date('2026-01-01T00:01:00Z');
    const at = (updatedAt: string, status: StoredPurchaseAttempt['status'] = 'charging') => ({ status, updatedAt });
    assert.equal(isDue(at('2026-01-01T00:00:00Z'), now, 60_000), true);
    assert.equal(isDue(at('2026-01-01T00:00:01Z'), now, 60_000), false);
    assert.equal(isDue(at('2026-01-01T00:01:00Z'), now, 0), true);
    for (const status of ['completed', 'declined', 'abandoned', 'refunded'] as const) {
      assert.equal(isDue(at('2020-01-01T00:00:00Z', status), now, 0), false, status);
    }
  });

  test('a repeat of a purchase goes on, another request under its key conflicts, a refunded one stays refunded', () => {
    assert.equal(repeatOf({ status: 'charging', fingerprint: 'f' }, 'f'), 'proceed');
    assert.equal(repeatOf({ status: 'abandoned', fingerprint: 'f' }, 'f'), 'proceed');
    assert.equal(repeatOf({ status: 'charging', fingerprint: 'f' }, 'g'), 'conflict');
    assert.equal(repeatOf({ status: 'refunded', fingerprint: 'f' }, 'f'), 'refunded');
  });

  test('the buy form keeps its key until the purchase has a final answer', () => {
    for (const code of ['bank_unavailable', 'internal_error', 'rate_limited']) assert.equal(formKeyAfter(code), 'keep');
    for (const code of [
      'card_declined',
      'insufficient_funds',
      'invalid_card',
      'idempotency_conflict',
      'chain_exists',
    ]) {
      assert.equal(formKeyAfter(code), 'renew', code);
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Real processes: the bank and the broker, the broker SIGKILLed after the bank committed a charge.

interface Child {
  process: ChildProcess;
  exited: Promise<number | null>;
}

function startChild(args: string[]): Child {
  // Metrics on a port the system picks: the default (the port + 200) was never checked free, and a test running
  // beside this one may hold it, which ends the child at start.
  const child = spawn(process.execPath, [BIN, ...args, '--metrics-port', '0'], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, NETPAY_LOG_LEVEL: 'error' },
  });
  return { process: child, exited: new Promise((resolve) => child.once('exit', (code) => resolve(code))) };
}

async function waitHealthy(url: string, child: Child): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.process.exitCode !== null) throw new Error(`process exited with ${child.process.exitCode}`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${url} did not come up`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Polls until `check` holds (a state, not a duration, decides when the test goes on). */
async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function admin(
  data: string,
  db: string,
  bankUrl: string,
  ...args: string[]
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, 'admin', ...args, '--data', data, '--db', db, '--bank-url', bankUrl], {
    env: { ...process.env, NETPAY_LOG_LEVEL: 'warn' },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => {
    stdout += chunk;
  });
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  return new Promise((resolve) => child.once('close', (status) => resolve({ status, stdout, stderr })));
}

interface StatementLine {
  id: string;
  kind: 'charge' | 'refund' | 'payout';
  amount: number;
  reference: string;
}

const QUIET_REPORT = {
  examined: 0,
  completed: 0,
  refunded: 0,
  declined: 0,
  abandoned: 0,
  alreadySettled: 0,
  deferred: 0,
  held: 0,
};

for (const engine of testEngines()) {
  describe(`a broker killed between the bank's charge and its own commit, on ${engine}`, () => {
    const dir = tempDir('netpay-reconcile-');
    let bankDb: TestDatabase;
    let brokerDb: TestDatabase;
    let bank: Child | undefined;
    let broker: Child | undefined;
    let store: ReturnType<typeof openDatabase<BrokerSchema>> | undefined;

    before(async () => {
      bankDb = await createTestDatabase(engine);
      brokerDb = await createTestDatabase(engine);
    });
    after(async () => {
      // The bank may still be sleeping on the injected latency of the killed broker's request: no need to wait.
      for (const child of [broker, bank]) {
        if (child && child.process.exitCode === null) {
          child.process.kill('SIGKILL');
          await child.exited;
        }
      }
      await store?.close();
      await brokerDb?.drop();
      await bankDb?.drop();
      dir.remove();
    });

    test('the reconciler makes the coin or refunds the charge; bank and ledger agree; a second run changes nothing', async () => {
      const bankPort = await freePort();
      const bankUrl = `http://127.0.0.1:${bankPort}`;
      bank = startChild(['bank', '--data', dir.path, '--port', String(bankPort), '--db', bankDb.url]);
      await waitHealthy(bankUrl, bank);
      const bankKey = readFileSync(join(dir.path, 'bank-api-key'), 'utf8').trim();
      const statement = async () => {
        const r = await call(bankUrl, 'GET', '/v1/statement', { token: bankKey });
        assert.equal(r.status, 200, r.text);
        return r.body as { lines: StatementLine[]; available: number };
      };

      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      const api = `${url}/api/v1`;
      const brokerArgs = [
        'broker',
        '--data',
        dir.path,
        '--db',
        brokerDb.url,
        '--port',
        String(port),
        '--bank-url',
        bankUrl,
        // The broker waits for the bank far longer than the bank's injected delay: only the kill stops it.
        '--bank-timeout-ms',
        '120000',
        '--reconcile-interval-ms',
        '0',
      ];
      broker = startChild(brokerArgs);
      await waitHealthy(url, broker);

      const email = `reconcile-${Date.now()}@example.test`;
      assert.equal((await call(api, 'POST', '/customers', { body: { email, password: 'reconcile-pw' } })).status, 201);
      const { token } = (await call(api, 'POST', '/sessions', { body: { email, password: 'reconcile-pw' } })).body;
      const buy = (key: string, body: Record<string, unknown>) => call(api, 'POST', '/coins', { token, key, body });

      // A: the broker makes the chain. B: the client brings its own chain, which someone takes before the
      // reconciler runs, so B's coin can no longer be made.
      const bodyA = { amount: 150, payment: { card: GOOD_CARD } };
      const chainB = PaywordChain.generate(120);
      const bodyB = { amount: 120, chainId: chainB.chainIdB64, anchor: chainB.anchorB64, payment: { card: GOOD_CARD } };

      // The bank commits each charge, then holds its answer back: the broker is killed while it waits.
      const faults = await call(bankUrl, 'POST', '/v1/sandbox/faults', { token: bankKey, body: { latencyMs: 60_000 } });
      assert.equal(faults.status, 200, faults.text);
      const inFlight = [buy('buy-a', bodyA), buy('buy-b', bodyB)].map((p) =>
        p.then(
          () => 'answered',
          () => 'cut',
        ),
      );
      await until('the bank committed both charges', async () => {
        return (await statement()).lines.filter((l) => l.kind === 'charge').length === 2;
      });
      broker.process.kill('SIGKILL');
      await broker.exited;
      assert.deepEqual(await Promise.all(inFlight), ['cut', 'cut'], 'neither purchase was answered');
      await call(bankUrl, 'DELETE', '/v1/sandbox/faults', { token: bankKey });

      store = openDatabase<BrokerSchema>(brokerDb.url);
      const db = store.db;
      const chainsOf = () =>
        db.selectFrom('chains').select(['chain_id', 'amount', 'charge_id', 'customer_id']).execute();
      const attempts = async () =>
        Object.fromEntries(
          (await db.selectFrom('purchase_attempts').select(['idempotency_key', 'status']).execute()).map((a) => [
            a.idempotency_key,
            a.status,
          ]),
        );
      assert.deepEqual(await chainsOf(), [], 'the broker died before its own commit: charged twice, no coin');
      assert.deepEqual(await attempts(), { 'buy-a': 'charging', 'buy-b': 'charging' });

      broker = startChild(brokerArgs);
      await waitHealthy(url, broker);
      // B's chainId is free (B never committed), so the customer buys it again under a new key.
      const boughtC = await buy('buy-c', bodyB);
      assert.equal(boughtC.status, 201, boughtC.text);

      // Two reconcilers on two hosts and the customer's own retry of A, all at once.
      const [first, second, retryA] = await Promise.all([
        admin(dir.path, brokerDb.url, bankUrl, 'reconcile', '--grace-ms', '0'),
        admin(dir.path, brokerDb.url, bankUrl, 'reconcile', '--grace-ms', '0'),
        buy('buy-a', bodyA),
      ]);
      assert.equal(first.status, 0, first.stderr);
      assert.equal(second.status, 0, second.stderr);
      assert.equal(retryA.status, 201, retryA.text);
      const reports = [JSON.parse(first.stdout), JSON.parse(second.stdout)];
      const total = (k: keyof typeof QUIET_REPORT) => reports.reduce((sum, r) => sum + r[k], 0);
      assert.equal(total('deferred') + total('held') + total('declined') + total('abandoned'), 0);
      assert.ok(total('refunded') >= 1, 'B was refunded');
      assert.ok(total('completed') <= 1, 'A was made at most once by a reconciler');

      // A: one coin, the customer's; its answer is the stored one, with a seed that makes its anchor.
      const coinA = retryA.body as { chainId: string; seed: string; touchstone: { anchor: string; length: number } };
      assert.equal(coinA.touchstone.length, 150);
      assert.equal(PaywordChain.fromB64(coinA.chainId, coinA.seed, 150).anchorB64, coinA.touchstone.anchor);
      const again = await buy('buy-a', bodyA);
      assert.equal(again.text, retryA.text, 'a later retry answers the same coin');
      const chains = await chainsOf();
      assert.equal(chains.length, 2, 'A and C, nothing for B');
      assert.ok(chains.every((c) => c.customer_id === chains[0]?.customer_id));
      const coins = await call(api, 'GET', '/coins', { token });
      assert.deepEqual(
        coins.body.coins.map((c: { chainId: string }) => c.chainId).sort(),
        [coinA.chainId, chainB.chainIdB64].sort(),
      );
      assert.deepEqual(await attempts(), { 'buy-a': 'completed', 'buy-b': 'refunded', 'buy-c': 'completed' });

      // The bank: three charges, B's refunded once; the broker's cash is what the bank holds for it.
      const after = await statement();
      const charges = after.lines.filter((l) => l.kind === 'charge');
      const refunds = after.lines.filter((l) => l.kind === 'refund');
      assert.deepEqual(charges.map((l) => l.amount).sort(), [120, 120, 150]);
      assert.equal(refunds.length, 1);
      assert.equal(refunds[0]?.amount, -120);
      const coinCharges = new Set(chains.map((c) => c.charge_id));
      const refundedCharge = refunds[0]?.reference;
      assert.ok(refundedCharge && !coinCharges.has(refundedCharge), 'the refunded charge has no coin');
      assert.deepEqual(
        new Set(charges.map((l) => l.id)),
        new Set([...coinCharges, refundedCharge]),
        'every charge is a coin or was refunded',
      );
      assert.equal(after.available, 270);
      assert.equal(await accountBalance(db, 'cash'), after.available, 'broker cash = bank balance');

      const audited = await admin(dir.path, brokerDb.url, bankUrl, 'audit');
      assert.equal(audited.status, 0, audited.stderr);
      assert.equal(JSON.parse(audited.stdout).ok, true);

      // Nothing is left to do, and doing it again changes nothing.
      const third = await admin(dir.path, brokerDb.url, bankUrl, 'reconcile', '--grace-ms', '0');
      assert.equal(third.status, 0, third.stderr);
      assert.deepEqual(JSON.parse(third.stdout), QUIET_REPORT);
      assert.deepEqual(await statement(), after);
      assert.equal((await chainsOf()).length, 2);

      broker.process.kill('SIGTERM');
      assert.equal(await broker.exited, 0);
    });
  });
}

// ---------------------------------------------------------------------------------------------------------------
// One broker process in the test: the bank answers too late, so the broker gives up after the bank charged.

function chargeCount(statement: Reply): number {
  return (statement.body.lines as StatementLine[]).filter((l) => l.kind === 'charge').length;
}

for (const engine of testEngines()) {
  describe(`purchases the broker gave up on, on ${engine}`, () => {
    let bank: BankUnderTest;
    let broker: BrokerUnderTest;
    before(async () => {
      bank = await startBank(engine);
      // Long enough for every ordinary charge of the file on a loaded box; the slow bank below takes 3 s.
      broker = await startBroker(engine, bank, { bankTimeoutMs: 1000 });
    });
    after(async () => {
      await broker?.close();
      await bank?.close();
    });

    /** Buys under a bank that answers long after the broker stopped waiting: 503, and the card charged. */
    async function chargedWithoutCoin<R extends { status: number; text: string }>(buy: () => Promise<R>): Promise<R> {
      const charges = chargeCount(await bank.statement());
      await bank.faults({ latencyMs: 3000 });
      let answer: R;
      try {
        answer = await buy();
      } finally {
        await bank.clearFaults();
      }
      assert.equal(answer.status, 503, answer.text);
      await until('the bank committed the charge', async () => chargeCount(await bank.statement()) === charges + 1);
      return answer;
    }

    const status = async (customerId: string, key: string) =>
      (
        await broker.database.db
          .selectFrom('purchase_attempts')
          .select('status')
          .where('customer_id', '=', customerId)
          .where('idempotency_key', '=', key)
          .executeTakeFirst()
      )?.status;

    test('the web add-money form sent again after the bank did not answer adds the money once, with one charge', async () => {
      const client = new WebClient(broker.url);
      const register = await client.get('/register');
      const email = `reconcile-web-${Date.now()}@example.test`;
      const registered = await client.post('/register', {
        csrf: csrfOf(register.text),
        email,
        password: 'correct horse battery',
      });
      assert.equal(registered.status, 303, registered.text);
      const form = (page: string) => ({
        csrf: csrfOf(page),
        idem: inputValue(page, 'idem') ?? '',
        amount: '1.25',
        card_number: '4242 4242 4242 4242',
        card_expiry: '12/30',
        card_cvc: '123',
      });
      const wallet = await client.get('/coins');
      const chargesBefore = chargeCount(await bank.statement());
      const first = await chargedWithoutCoin(() => client.post('/top-ups', form(wallet.text)));
      assert.match(first.text, /The bank did not answer in time/);
      assert.equal(inputValue(first.text, 'idem'), inputValue(wallet.text, 'idem'), 'the same top-up, the same key');

      // The customer submits the form shown again, then submits that same form once more (a double click).
      const second = await client.post('/top-ups', form(first.text));
      assert.equal(second.status, 303, second.text);
      assert.match(second.location ?? '', /^\/coins\?added=/, 'a result page: reloading it adds nothing');
      const third = await client.post('/top-ups', form(first.text));
      assert.equal(third.status, 303);
      assert.equal(chargeCount(await bank.statement()), chargesBefore + 1, 'one charge');
      assert.match((await client.get('/coins')).text, /id="netpay-balance">NZ\$1\.25</, 'added once');
      assert.ok((await broker.audit()).ok);
    });

    test('two reconcilers and the customer retry at once: one coin, one charge, no refund', async () => {
      const { token, customerId } = await broker.customer();
      const body = { amount: 90, payment: { card: GOOD_CARD } };
      const buy = () => call(broker.api, 'POST', '/coins', { token, key: 'race-1', body });
      await chargedWithoutCoin(buy);
      assert.equal(await status(customerId, 'race-1'), 'charging');
      const charges = chargeCount(await bank.statement());
      const deps = broker.app.broker;

      const [a, b, retry] = await Promise.all([
        reconcilePurchases(deps, { graceMs: 0 }),
        reconcilePurchases(deps, { graceMs: 0 }),
        buy(),
      ]);
      assert.equal(retry.status, 201, retry.text);
      assert.ok(a.completed + b.completed <= 1);
      // A reconciler that finds the attempt busy (the other one, or the retry, holds it) defers it: safe, and the
      // next run sees it completed. What must never happen is a refund of a purchase that completes.
      assert.equal(a.refunded + b.refunded, 0);
      assert.equal(await status(customerId, 'race-1'), 'completed');
      const coins = await call(broker.api, 'GET', '/coins', { token });
      assert.deepEqual(
        coins.body.coins.map((c: { chainId: string }) => c.chainId),
        [retry.body.chainId],
      );
      const statement = await bank.statement();
      assert.equal(chargeCount(statement), charges, 'no new charge');
      assert.equal((statement.body.lines as StatementLine[]).filter((l) => l.kind === 'refund').length, 0);
      assert.deepEqual(await reconcilePurchases(deps, { graceMs: 0 }), QUIET_REPORT);
      assert.ok((await broker.audit()).ok);
    });

    test('the broker job makes the coin of a charge nobody came back for', async () => {
      const { token, customerId } = await broker.customer();
      await chargedWithoutCoin(() =>
        call(broker.api, 'POST', '/coins', {
          token,
          key: 'left-1',
          body: { amount: 40, payment: { card: GOOD_CARD } },
        }),
      );
      const job = startReconcileJob(broker.app.broker, { intervalMs: 20, graceMs: 0 });
      try {
        await until('the job settled the purchase', async () => (await status(customerId, 'left-1')) !== 'charging');
      } finally {
        await job.stop();
      }
      assert.equal(await status(customerId, 'left-1'), 'completed');
      const coins = await call(broker.api, 'GET', '/coins', { token });
      assert.equal(coins.body.coins.length, 1);
      assert.equal(coins.body.coins[0].value, 40);
      assert.ok((await broker.audit()).ok);
    });

    test('a charge the bank never received is closed as abandoned; the customer can still finish it', async () => {
      const { token, customerId } = await broker.customer();
      const body = { amount: 30, payment: { card: GOOD_CARD } };
      const buy = () => call(broker.api, 'POST', '/coins', { token, key: 'lost-1', body });
      const charges = chargeCount(await bank.statement());
      await bank.faults({ failNext: 1 });
      assert.equal((await buy()).status, 503);
      const report = await reconcilePurchases(broker.app.broker, { graceMs: 0 });
      assert.deepEqual(report, { ...QUIET_REPORT, examined: 1, abandoned: 1 });
      assert.equal(await status(customerId, 'lost-1'), 'abandoned');
      assert.equal(chargeCount(await bank.statement()), charges, 'the reconciler charged nothing');

      const retry = await buy();
      assert.equal(retry.status, 201, retry.text);
      assert.equal(await status(customerId, 'lost-1'), 'completed');
      assert.equal(chargeCount(await bank.statement()), charges + 1);
      assert.deepEqual(await reconcilePurchases(broker.app.broker, { graceMs: 0 }), QUIET_REPORT);
    });
  });
}
