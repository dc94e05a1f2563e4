import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { b64uEncode, findKey, generateSigningKey, PaywordChain, verifyTouchstone } from '@netpay/protocol';
import { systemClock } from '@netpay/service-kit';
import { tempDir, testEngines } from '@netpay/service-kit/testing';
import { HttpBank } from '../src/http-bank.ts';
import { runPayouts } from '../src/payouts.ts';
import { rotateSigningKey } from '../src/signing-keys.ts';
import { registerVendor } from '../src/vendor-registry.ts';
import { call, item, brokerSuite } from './harness.ts';

const BIN = fileURLToPath(new URL('../../cli/bin/netpay.mjs', import.meta.url));

describe('netpay admin', () => {
  test('vendor add takes a public key that starts with a dash; audit and rotate-key print JSON', () => {
    const dir = tempDir('netpay-admin-');
    try {
      const run = (...args: string[]) =>
        spawnSync(process.execPath, [BIN, 'admin', ...args, '--data', dir.path], { encoding: 'utf8' });
      let publicKey = '';
      while (!publicKey.startsWith('-')) publicKey = b64uEncode(generateSigningKey().publicKey);
      const added = run(
        'vendor',
        'add',
        '--id',
        'dash',
        '--name',
        'Dash',
        '--url',
        'http://a/',
        '--release-url',
        'http://a/r',
        '--public-key',
        publicKey,
      );
      assert.equal(added.status, 0, added.stderr);
      assert.match(JSON.parse(added.stdout).apiKey, /^np_vk_/);
      const listed = JSON.parse(run('vendor', 'list').stdout) as Array<{
        vendorId: string;
        keys: Array<{ publicKey: string }>;
      }>;
      assert.equal(listed.find((v) => v.vendorId === 'dash')?.keys[0]?.publicKey, publicKey);
      const audited = run('audit');
      assert.equal(audited.status, 0);
      assert.equal(JSON.parse(audited.stdout).ok, true);
      assert.equal(JSON.parse(run('rotate-key').stdout).keyId, 'bk2');
      assert.equal(run('nonsense').status, 2);
    } finally {
      dir.remove();
    }
  });
});

for (const engine of testEngines()) {
  describe(`operator functions on ${engine}`, () => {
    const suite = brokerSuite(engine);

    test('payouts pay each vendor what it is owed once, through the bank', async () => {
      const { token } = await suite.broker.customer();
      const chain = PaywordChain.generate(500);
      await suite.broker.buyCoin(token, { amount: 5000, unit: 10, chain });
      const v = await suite.broker.addVendor('payee');
      await call(suite.broker.api, 'POST', `/chains/${chain.chainIdB64}/claim`, {
        token: v.apiKey,
        body: { proof: { index: 1, payword: chain.b64(1) } },
      });
      const r = await call(suite.broker.api, 'POST', '/redemptions', {
        token: v.apiKey,
        key: 'p1',
        body: { items: [item(chain, 1, 0, 100)] },
      });
      assert.equal(r.body.credited, 980);
      const httpBank = new HttpBank({ url: suite.bank.url, apiKey: suite.bank.apiKey });
      // Settlement holds are tested in payouts.test.ts; here every credit is payable at once.
      const pay = () =>
        runPayouts({
          db: suite.broker.database.db,
          engine,
          bank: httpBank,
          clock: systemClock,
          config: { currency: 'NZD', settlementWindowSeconds: 0 },
        });
      const report = await pay();
      assert.deepEqual(
        report.paid.map((p) => [p.vendorId, p.amount]),
        [['payee', 980]],
      );
      const account = await call(suite.broker.api, 'GET', '/vendor/account', { token: v.apiKey });
      assert.deepEqual(account.body, { vendorId: 'payee', balance: 0, pending: 0, paidOut: 980, currency: 'NZD' });
      const second = await pay();
      assert.equal(second.paid.length, 0, 'nothing owed, nothing paid');
      // A bank failure leaves the payout pending; the next run pays it under the same key.
      await call(suite.broker.api, 'POST', '/redemptions', {
        token: v.apiKey,
        key: 'p2',
        body: { items: [item(chain, 1, 100, 110)] },
      });
      await suite.bank.faults({ failNext: 1 });
      const failed = await pay();
      assert.equal(failed.pending.length, 1);
      const pendingView = await call(suite.broker.api, 'GET', '/vendor/account', { token: v.apiKey });
      assert.equal(pendingView.body.pending, 98);
      const retried = await pay();
      assert.equal(retried.paid.length, 1);
      assert.equal(retried.paid[0]?.payoutId, failed.pending[0]?.payoutId);
      const audited = await suite.broker.audit();
      assert.ok(audited.ok, audited.discrepancies.join('; '));
      assert.equal(audited.totals.accounts['vendor:payee'], 0);
    });

    test('rotating the key keeps old touchstones verifiable and signs new ones with the new key', async () => {
      const { token } = await suite.broker.customer();
      const old = await suite.broker.buyCoin(token, { amount: 10 });
      const newKeyId = await suite.broker.database.db.transaction().execute((trx) => rotateSigningKey(trx, new Date()));
      const discovery = await call(suite.broker.url, 'GET', '/.well-known/netpay');
      assert.ok(discovery.body.keys.length >= 2);
      const fresh = await suite.broker.buyCoin(token, { amount: 10 });
      assert.equal(fresh.body.touchstone.keyId, newKeyId);
      for (const t of [old.body.touchstone, fresh.body.touchstone]) {
        const key = findKey(discovery.body.keys, t.keyId);
        assert.ok(key && verifyTouchstone(t, key));
      }
      const brokerVendor = await call(suite.broker.api, 'GET', '/vendors/broker');
      assert.ok(brokerVendor.body.keys.some((k: { keyId: string }) => k.keyId === newKeyId));
    });

    test('registering a vendor: default keyId, re-registering issues a new API key, bad input refused', async () => {
      const publicKey = b64uEncode(generateSigningKey().publicKey);
      const first = await registerVendor(suite.broker.database.db, {
        id: 'reg-test',
        name: 'Reg',
        url: 'http://127.0.0.1:1/',
        releaseUrl: 'http://127.0.0.1:1/release',
        publicKey,
      });
      assert.match(first.keyId, /^v[A-Za-z0-9_-]{10}$/);
      assert.equal(first.rotated, false);
      const second = await registerVendor(suite.broker.database.db, {
        id: 'reg-test',
        name: 'Reg 2',
        url: 'http://127.0.0.1:1/',
        releaseUrl: 'http://127.0.0.1:1/release',
        publicKey,
      });
      assert.equal(second.rotated, true);
      assert.equal((await call(suite.broker.api, 'GET', '/vendor/account', { token: first.apiKey })).status, 401);
      assert.equal((await call(suite.broker.api, 'GET', '/vendor/account', { token: second.apiKey })).status, 200);
      await assert.rejects(
        registerVendor(suite.broker.database.db, {
          id: 'Bad Id',
          name: 'x',
          url: 'http://a/',
          releaseUrl: 'http://a/',
          publicKey,
        }),
      );
      await assert.rejects(
        registerVendor(suite.broker.database.db, {
          id: 'broker',
          name: 'x',
          url: 'http://a/',
          releaseUrl: 'http://a/',
          publicKey,
        }),
      );
    });
  });
}
