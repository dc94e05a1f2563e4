import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { b64uEncode, generateSigningKey, type HolderCertificate, signRelease } from '@netpay/protocol';
import { newMasterKeyText, openDatabase, rfc3339 } from '@netpay/service-kit';
import { createTestDatabase, type TestDatabase, tempDir, testEngines } from '@netpay/service-kit/testing';
import { DEFAULT_LOGIN_FAILURE_LIMITS } from '../src/login-throttle.ts';
import type { BrokerSchema } from '../src/schema.ts';
import { registerVendor } from '../src/vendor-registry.ts';
import { type BrokerProcess, runNetpay, startBrokerProcess } from './broker-process.ts';
import {
  type BankUnderTest,
  call,
  freePort,
  GOOD_CARD,
  item,
  PaywordChain,
  proof,
  type Reply,
  startBank,
} from './harness.ts';

/** The per-customer coin-purchase budget the fleet runs with: small, and refilling too slowly to matter here. */
const PURCHASE_BUDGET = 40;
const PURCHASE_BUDGET_SECONDS = 86_400;

/** A vendor the test plays: its API key, and a release it signs when the broker asks (§6) at a chosen index. */
interface FleetVendor {
  id: string;
  apiKey: string;
  /** The index this vendor releases at when the broker takes a chain from it for a refund. */
  releaseAt: Map<string, { chain: PaywordChain; index: number }>;
}

/**
 * PostgreSQL only: a fleet is several broker processes sharing one PostgreSQL store (SQLite is one process's
 * embedded store). Two real `netpay broker` processes, started at the same moment on one empty schema, one real
 * bank; every race sends alternate requests to each process.
 */
const skip = testEngines().includes('postgres') ? false : 'NETPAY_TEST_ENGINES leaves PostgreSQL out';

describe('a broker fleet, PostgreSQL only: two broker processes on one PostgreSQL store', { skip }, () => {
  let bank: BankUnderTest;
  let store: TestDatabase;
  let database: ReturnType<typeof openDatabase<BrokerSchema>>;
  let desk: Server;
  let deskUrl: string;
  const brokers: BrokerProcess[] = [];
  // A data folder per process, as on two hosts.
  const dirs: Array<ReturnType<typeof tempDir>> = [];
  // Every process of a fleet opens the same sealed columns, so they share one master key (here from the environment).
  const env = { NETPAY_MASTER_KEY: newMasterKeyText(), NETPAY_OPERATOR_TOKEN: 'fleet-operator-token' };
  const vendors = new Map<string, FleetVendor & { sign: ReturnType<typeof signerFor> }>();
  let seq = 0;

  before(async () => {
    bank = await startBank('postgres');
    store = await createTestDatabase('postgres');
    desk = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => {
        body += c;
      });
      req.on('end', () => {
        const { holder } = JSON.parse(body) as { holder: HolderCertificate };
        const vendor = vendors.get(holder.prevVendorId);
        const point = vendor?.releaseAt.get(holder.chainId);
        if (!vendor || !point) {
          res.writeHead(503).end();
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ release: vendor.sign(holder, point.index, point.chain.b64(point.index)) }));
      });
    });
    await new Promise<void>((r) => desk.listen(0, '127.0.0.1', () => r()));
    const address = desk.address();
    deskUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/release`;

    dirs.push(tempDir('netpay-fleet-a-'), tempDir('netpay-fleet-b-'));
    for (const dir of dirs) writeFileSync(join(dir.path, 'bank-api-key'), `${bank.apiKey}\n`);
    const ports = [await freePort(), await freePort()];
    // One public address for the fleet, as behind a load balancer.
    const publicUrl = `http://127.0.0.1:${ports[0]}`;
    // Both at once on the empty schema: each migrates and makes the first rows (accounts, signing key), and the
    // one that loses that race must still come up.
    const started = await Promise.allSettled(
      ports.map((port, i) =>
        startBrokerProcess(
          port,
          [
            '--data',
            dirs[i]?.path ?? '',
            '--db',
            store.url,
            '--bank-url',
            bank.url,
            '--public-url',
            publicUrl,
            '--coin-purchases-per-customer',
            `${PURCHASE_BUDGET}/${PURCHASE_BUDGET_SECONDS}`,
            // Any free port for each process's metrics, rather than its own port + 200, which may be taken.
            '--metrics-port',
            '0',
          ],
          env,
        ),
      ),
    );
    for (const s of started) if (s.status === 'fulfilled') brokers.push(s.value);
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;
    database = openDatabase<BrokerSchema>(store.url);
  });

  after(async () => {
    await Promise.all(brokers.map((b) => b.stop()));
    await database?.close();
    await store?.drop();
    await bank?.close();
    desk?.close();
    for (const dir of dirs) dir.remove();
  });

  /** The API of the process that serves request `i`: alternate requests go to alternate processes. */
  const api = (i: number) => (brokers[i % brokers.length] as BrokerProcess).api;

  function signerFor(id: string, keyId: string, privateSeed: Uint8Array) {
    return (to: HolderCertificate, index: number, payword: string) =>
      signRelease(
        {
          chainId: to.chainId,
          epoch: to.prevEpoch,
          vendorId: id,
          index,
          payword,
          toVendorId: to.vendorId,
          toEpoch: to.epoch,
          keyId,
          releasedAt: rfc3339(new Date()),
        },
        privateSeed,
      );
  }

  async function addVendor(name: string) {
    const id = `${name}-${++seq}`;
    const key = generateSigningKey();
    const { apiKey, keyId } = await registerVendor(database.db, {
      id,
      name: `Vendor ${id}`,
      url: `http://127.0.0.1:9/${id}/`,
      releaseUrl: deskUrl,
      publicKey: b64uEncode(key.publicKey),
    });
    const vendor = { id, apiKey, releaseAt: new Map(), sign: signerFor(id, keyId, key.privateSeed) };
    vendors.set(id, vendor);
    return vendor;
  }

  /** A customer registered on one process and logged in on the other. */
  async function customer() {
    const email = `fleet-${++seq}-${Date.now()}@example.test`;
    const created = await call(api(0), 'POST', '/customers', { body: { email, password: 'correct horse' } });
    assert.equal(created.status, 201, created.text);
    const session = await call(api(1), 'POST', '/sessions', { body: { email, password: 'correct horse' } });
    assert.equal(session.status, 200, session.text);
    return { email, token: session.body.token as string };
  }

  async function coin(token: string, length = 200) {
    const chain = PaywordChain.generate(length);
    const bought = await call(api(seq), 'POST', '/coins', {
      token,
      key: `coin-${++seq}`,
      body: { amount: length, chainId: chain.chainIdB64, anchor: chain.anchorB64, payment: { card: GOOD_CARD } },
    });
    assert.equal(bought.status, 201, bought.text);
    return chain;
  }

  const claim = (i: number, vendor: FleetVendor, chain: PaywordChain, index: number) =>
    call(api(i), 'POST', `/chains/${chain.chainIdB64}/claim`, { token: vendor.apiKey, body: proof(chain, index) });

  const balanceOf = async (vendor: FleetVendor) =>
    (await call(api(seq++), 'GET', '/vendor/account', { token: vendor.apiKey })).body.balance as number;

  async function auditHolds(): Promise<void> {
    const audited = await runNetpay(['admin', 'audit', '--data', dirs[0]?.path ?? '', '--db', store.url], env);
    assert.equal(audited.status, 0, audited.stderr);
    assert.equal(JSON.parse(audited.stdout).ok, true);
  }

  test('claims raced across both processes: exactly one holder per epoch, epochs contiguous, each opened by a higher proof', async () => {
    const { token } = await customer();
    const chain = await coin(token);
    const claimants = await Promise.all(['a', 'b', 'c', 'd', 'e'].map((n) => addVendor(`claim-${n}`)));
    const replies = await Promise.all(
      Array.from({ length: 20 }, (_, i) => claim(i, claimants[i % claimants.length] as FleetVendor, chain, i + 1)),
    );
    const granted = replies.filter((r) => r.status === 200);
    assert.ok(granted.length >= 1);
    for (const r of replies) if (r.status !== 200) assert.equal(r.body.code, 'invalid_payword', r.text);
    const holderOf = new Map<number, string>();
    for (const r of granted) {
      const { epoch, vendorId } = r.body.holder;
      assert.equal(holderOf.get(epoch) ?? vendorId, vendorId, `epoch ${epoch} has two holders`);
      holderOf.set(epoch, vendorId);
    }
    const epochs = await database.db
      .selectFrom('epochs')
      .selectAll()
      .where('chain_id', '=', chain.chainIdB64)
      .orderBy('epoch')
      .execute();
    assert.ok(epochs.length >= 1);
    epochs.forEach((e, i) => {
      assert.equal(e.epoch, i + 1);
      assert.equal(e.prev_epoch, i);
      if (i > 0) assert.equal(e.prev_vendor_id, epochs[i - 1]?.vendor_id);
      assert.equal(e.superseded_by, i === epochs.length - 1 ? null : i + 2);
      if (holderOf.has(e.epoch)) assert.equal(holderOf.get(e.epoch), e.vendor_id);
      assert.ok((e.claim_index ?? 0) > (epochs[i - 1]?.claim_index ?? 0), `epoch ${e.epoch} opened by a lower proof`);
    });
    const row = await database.db
      .selectFrom('chains')
      .select('current_epoch')
      .where('chain_id', '=', chain.chainIdB64)
      .executeTakeFirstOrThrow();
    assert.equal(row.current_epoch, epochs.length);
  });

  test('one redemption sent 20 times across both processes: one answer byte for byte, credited once', async () => {
    const { token } = await customer();
    const chain = await coin(token, 100);
    const vendor = await addVendor('same-key');
    assert.equal((await claim(0, vendor, chain, 1)).status, 200);
    const body = { items: [item(chain, 1, 0, 50), item(chain, 1, 50, 60)] };
    const replies = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        call(api(i), 'POST', '/redemptions', { token: vendor.apiKey, key: 'same', body }),
      ),
    );
    for (const r of replies) {
      assert.equal(r.status, 200, r.text);
      assert.equal(r.text, replies[0]?.text);
    }
    assert.equal(replies[0]?.body.credited, 59);
    assert.equal(await balanceOf(vendor), 59);
    for (const i of [0, 1]) {
      const other = await call(api(i), 'POST', '/redemptions', {
        token: vendor.apiKey,
        key: 'same',
        body: { items: [item(chain, 1, 60, 61)] },
      });
      assert.equal(other.status, 422);
      assert.equal(other.body.code, 'idempotency_conflict');
    }
    const stored = await database.db
      .selectFrom('redemptions')
      .select((eb) => eb.fn.countAll<string | number>().as('n'))
      .where('vendor_id', '=', vendor.id)
      .executeTakeFirstOrThrow();
    assert.equal(Number(stored.n), 1);
  });

  test('overlapping redemptions under different keys across both processes: exactly one is accepted', async () => {
    const { token } = await customer();
    const chain = await coin(token, 100);
    const vendor = await addVendor('overlap');
    assert.equal((await claim(1, vendor, chain, 1)).status, 200);
    const replies = await Promise.all(
      Array.from({ length: 24 }, (_, i) =>
        call(api(i), 'POST', '/redemptions', {
          token: vendor.apiKey,
          key: `ov-${i}`,
          body: { items: [item(chain, 1, 0, 10 + (i % 7))] },
        }),
      ),
    );
    for (const r of replies) assert.equal(r.status, 200, r.text);
    const accepted = replies.filter((r) => r.body.items[0].status === 'accepted');
    assert.equal(accepted.length, 1);
    for (const r of replies) if (r !== accepted[0]) assert.equal(r.body.items[0].code, 'overlap', r.text);
    assert.equal(await balanceOf(vendor), accepted[0]?.body.credited);
  });

  test('one purchase sent 20 times across both processes: one bank charge, one coin, one answer', async () => {
    const { token } = await customer();
    const charges = async () =>
      (await bank.statement()).body.lines.filter((l: { kind: string }) => l.kind === 'charge').length;
    const before = await charges();
    const replies = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        call(api(i), 'POST', '/coins', { token, key: 'one', body: { amount: 25, payment: { card: GOOD_CARD } } }),
      ),
    );
    for (const r of replies) {
      assert.equal(r.status, 201, r.text);
      assert.equal(r.text, replies[0]?.text, 'every process answers the bytes the first committed');
    }
    assert.equal(await charges(), before + 1);
    for (const i of [0, 1]) {
      const coins = await call(api(i), 'GET', '/coins', { token });
      assert.equal(coins.body.coins.length, 1);
    }
  });

  test('refunds racing claims and redemptions across both processes: money out per chain never passes its value', async () => {
    const { token } = await customer();
    const LENGTH = 200;
    const chains = [await coin(token, LENGTH), await coin(token, LENGTH), await coin(token, LENGTH)];
    const a = await addVendor('refund-a');
    const b = await addVendor('refund-b');
    const c = await addVendor('refund-c');
    for (const chain of chains) {
      assert.equal((await claim(0, a, chain, 1)).status, 200);
      // What each vendor has served when the broker asks it to release: A up to 50, B its proof 60, C its proof 80.
      a.releaseAt.set(chain.chainIdB64, { chain, index: 50 });
      b.releaseAt.set(chain.chainIdB64, { chain, index: 60 });
      c.releaseAt.set(chain.chainIdB64, { chain, index: 80 });
    }
    const bankRefunds = async () =>
      (await bank.statement()).body.lines.filter((l: { kind: string }) => l.kind === 'refund').length;
    const refundsBefore = await bankRefunds();
    let n = 0;
    const races = chains.map((chain) => {
      const refund = () => call(api(n++), 'POST', `/coins/${chain.chainIdB64}/refund`, { token });
      return {
        redemptions: [10, 20, 30, 40, 50].map((to) =>
          call(api(n++), 'POST', '/redemptions', {
            token: a.apiKey,
            key: `ra-${chain.chainIdB64}-${to}`,
            body: { items: [item(chain, 1, 0, to)] },
          }),
        ),
        refunds: [refund(), refund()],
        claims: [claim(n++, b, chain, 60), claim(n++, c, chain, 80)],
      };
    });
    const settled = await Promise.all(
      races.map(async (r) => ({
        redemptions: await Promise.all(r.redemptions),
        refunds: await Promise.all(r.refunds),
        claims: await Promise.all(r.claims),
      })),
    );

    for (const [k, chain] of chains.entries()) {
      const race = settled[k];
      assert.ok(race);
      for (const r of race.redemptions) assert.equal(r.status, 200, r.text);
      assert.ok(race.redemptions.filter((r) => r.body.items[0].status === 'accepted').length <= 1);
      for (const r of race.claims) {
        if (r.status !== 200) assert.ok(['chain_refunding', 'invalid_payword'].includes(r.body.code), r.text);
      }
      // Racing refunds of one coin answer alike, or the later one finds it refunded.
      const done = race.refunds.filter((r) => r.status === 200);
      assert.ok(done.length >= 1, race.refunds.map((r) => r.text).join(' | '));
      for (const r of done) assert.deepEqual(r.body, done[0]?.body);
      for (const r of race.refunds) if (r.status !== 200) assert.equal(r.body.code, 'not_refundable', r.text);
      for (const i of [0, 1]) {
        const again = await call(api(i), 'POST', `/coins/${chain.chainIdB64}/refund`, { token });
        assert.equal(again.status, 409, again.text);
        assert.equal(again.body.code, 'not_refundable');
      }

      const row = await database.db
        .selectFrom('chains')
        .select(['status', 'refunded_amount', 'refund_index'])
        .where('chain_id', '=', chain.chainIdB64)
        .executeTakeFirstOrThrow();
      assert.equal(row.status, 'refunded');
      assert.equal(row.refunded_amount, done[0]?.body.refunded);
      assert.equal(row.refunded_amount, LENGTH - (row.refund_index ?? 0));
      const ranges = await database.db
        .selectFrom('redeemed_ranges')
        .selectAll()
        .where('chain_id', '=', chain.chainIdB64)
        .execute();
      for (const r of ranges) assert.ok(r.kept_to <= (row.refund_index ?? 0), 'a range kept past the refund index');
      const kept = ranges.reduce((sum, r) => sum + r.gross - r.taken_back_gross, 0);
      assert.ok(kept + row.refunded_amount <= LENGTH, `${kept} kept + ${row.refunded_amount} refunded > ${LENGTH}`);
    }
    assert.equal(await bankRefunds(), refundsBefore + chains.length, 'one bank refund per coin, not one per request');
    await auditHolds();
  });

  test('wrong passwords split across both processes are counted once: refused after as many as on one process', async () => {
    const limit = DEFAULT_LOGIN_FAILURE_LIMITS.perAccountFromAddress;
    const { email } = await customer();
    const login = (i: number, password: string) => call(api(i), 'POST', '/sessions', { body: { email, password } });
    for (let i = 0; i < limit; i++) {
      const r = await login(i, `wrong ${i}`);
      assert.equal(r.status, 401, `attempt ${i + 1}: ${r.text}`);
      assert.equal(r.body.code, 'invalid_credentials');
    }
    for (const i of [0, 1]) {
      const refused = await login(i, 'wrong again');
      assert.equal(refused.status, 429, refused.text);
      assert.equal(refused.body.code, 'rate_limited');
      assert.ok(Number(refused.headers.get('retry-after')) >= 1);
      assert.equal((await login(i, 'correct horse')).status, 429, 'this address is refused for the account');
    }

    // Racing: failures the two processes record at once never add up past the budget (a guess that sees too many
    // in flight is refused unchecked), and what the race left is counted by both: guessing on, alternating, is
    // refused exactly when the budget is spent.
    const other = await customer();
    const guess = (i: number) =>
      call(api(i), 'POST', '/sessions', { body: { email: other.email, password: `guess ${i}` } });
    const raced = await Promise.all(Array.from({ length: 3 * limit }, (_, i) => guess(i)));
    const checked = raced.filter((r) => r.status === 401).length;
    assert.equal(checked + raced.filter((r) => r.status === 429).length, raced.length);
    assert.ok(checked <= limit, `${checked} passwords checked for a budget of ${limit}`);
    let more = 0;
    for (;;) {
      const r = await guess(more);
      if (r.status === 429) break;
      assert.equal(r.status, 401, r.text);
      more += 1;
      assert.ok(more <= limit, 'the budget was not enforced');
    }
    assert.equal(checked + more, limit, 'the race and the guesses after it share one budget');
  });

  test('the per-customer coin-purchase budget is shared: requests split across both processes get one budget', async () => {
    const { token } = await customer();
    // Requests the broker refuses after the budget check (an amount that is no multiple of the unit): they
    // cost a token each and no bank charge.
    const replies: Reply[] = await Promise.all(
      Array.from({ length: PURCHASE_BUDGET + 20 }, (_, i) =>
        call(api(i), 'POST', '/coins', {
          token,
          key: `budget-${i}`,
          body: { amount: 3, unit: 2, payment: { card: GOOD_CARD } },
        }),
      ),
    );
    const passed = replies.filter((r) => r.status === 400);
    const limited = replies.filter((r) => r.status === 429);
    assert.equal(passed.length + limited.length, replies.length, replies.map((r) => r.status).join(','));
    assert.equal(passed.length, PURCHASE_BUDGET, 'one budget for the customer, not one per process');
    for (const r of limited) {
      assert.equal(r.body.code, 'rate_limited');
      assert.ok(Number(r.headers.get('retry-after')) >= 1);
    }
    // Another customer has a budget of its own.
    const fresh = await customer();
    const own = await call(api(1), 'POST', '/coins', {
      token: fresh.token,
      key: 'budget-fresh',
      body: { amount: 3, unit: 2, payment: { card: GOOD_CARD } },
    });
    assert.equal(own.status, 400, own.text);
  });

  test('the books hold after every race', auditHolds);
});
