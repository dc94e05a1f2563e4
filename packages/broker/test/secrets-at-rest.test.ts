/**
 * Secrets at rest in the broker's store, and session kinds, on both engines over real HTTP: the signing seed, the
 * seeds of broker-made coins, the stored purchase answers and the web HMAC key are sealed under the master key
 * (never in plaintext, not even in the SQLite file's bytes); a store from an older version is sealed on start;
 * a web session's cookie value is no API token and an API token is no web session.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { before, describe, test } from 'node:test';
import { b64uDecode, b64uEncode, publicKeyFromSeed } from '@netpay/protocol';
import { newMasterKeyText, SecretBox } from '@netpay/service-kit';
import { testEngines } from '@netpay/service-kit/testing';
import { prepareBrokerStore } from '../src/app.ts';
import { useMasterKey } from '../src/store-secrets.ts';
import { type BrokerUnderTest, call, brokerSuite } from './harness.ts';
import { csrfOf, WebClient } from './web-client.ts';

// This process seals under a key the test knows, so it can open what the broker stored with a box of its own.
const MASTER_KEY = new Uint8Array(Buffer.from(newMasterKeyText(), 'base64url'));
useMasterKey(MASTER_KEY);
const box = SecretBox.fromKey(MASTER_KEY);
const otherBox = SecretBox.fromKey(new Uint8Array(Buffer.from(newMasterKeyText(), 'base64url')));

/** Every byte SQLite keeps for the store: the database file and its write-ahead log. */
function sqliteBytes(broker: BrokerUnderTest): string {
  const path = broker.database.url.replace(/^sqlite:/, '');
  return [path, `${path}-wal`]
    .filter((p) => existsSync(p))
    .map((p) => readFileSync(p).toString('latin1'))
    .join('');
}

async function storedSecrets(broker: BrokerUnderTest) {
  const db = broker.database.db;
  const key = await db.selectFrom('signing_keys').selectAll().orderBy('seq', 'desc').executeTakeFirstOrThrow();
  const chains = await db.selectFrom('chains').select(['chain_id', 'seed']).execute();
  const purchases = await db.selectFrom('coin_purchases').select(['chain_id', 'response']).execute();
  const web = await (db as unknown as import('kysely').Kysely<{ web_secrets: { name: string; secret: string } }>)
    .selectFrom('web_secrets')
    .selectAll()
    .execute();
  return { key, chains, purchases, web };
}

for (const engine of testEngines()) {
  describe(`secrets at rest in the broker store on ${engine}`, () => {
    const suite = brokerSuite(engine);
    before(async () => {
      // The web pages make the HMAC key on their first request.
      assert.equal((await new WebClient(suite.broker.url).get('/login')).status, 200);
    });

    test('signing seed, coin seeds, purchase answers and the web key are sealed; only the master key opens them', async () => {
      const customer = await suite.broker.customer();
      const bought = await suite.broker.buyCoin(customer.token, { amount: 50, key: 'sealed-1' });
      assert.equal(bought.status, 201, bought.text);
      const seed = bought.body.seed as string;
      assert.ok(seed, 'a broker-made coin carries its seed');

      const { key, chains, purchases, web } = await storedSecrets(suite.broker);
      // The signing seed: sealed, bound to its key id, and it is the key the broker publishes.
      assert.ok(SecretBox.isSealed(key.private_seed), key.private_seed);
      const signingSeed = box.open(key.private_seed, `signing_keys.private_seed:${key.key_id}`);
      assert.equal(b64uEncode(publicKeyFromSeed(b64uDecode(signingSeed, 32))), key.public_key);
      assert.throws(() => otherBox.open(key.private_seed, `signing_keys.private_seed:${key.key_id}`));
      assert.throws(() => box.open(key.private_seed, 'signing_keys.private_seed:bk99'), 'bound to its row');

      const chain = chains.find((c) => c.chain_id === bought.body.chainId);
      assert.ok(chain?.seed && SecretBox.isSealed(chain.seed), 'the chain seed is sealed');
      assert.equal(box.open(chain.seed, `chains.seed:${chain.chain_id}`), seed);
      assert.throws(() => otherBox.open(chain.seed as string, `chains.seed:${chain.chain_id}`));

      const purchase = purchases.find((p) => p.chain_id === bought.body.chainId);
      assert.ok(purchase && SecretBox.isSealed(purchase.response), 'the stored purchase answer is sealed');
      assert.equal(JSON.parse(box.open(purchase.response, 'coin_purchases.response')).seed, seed);

      assert.equal(web.length, 1);
      assert.ok(web.every((w) => SecretBox.isSealed(w.secret)));

      if (engine === 'sqlite') {
        const bytes = sqliteBytes(suite.broker);
        assert.ok(!bytes.includes(seed), 'no plaintext coin seed anywhere in the file or its log');
        assert.ok(!bytes.includes(signingSeed), 'no plaintext signing seed anywhere in the file or its log');
      }

      // A retry with the same key answers from the sealed record, byte for byte.
      const again = await suite.broker.buyCoin(customer.token, { amount: 50, key: 'sealed-1' });
      assert.equal(again.status, 201);
      assert.equal(again.text, bought.text);
    });

    test('a store written in plaintext by an older version is sealed on the next start', async () => {
      const customer = await suite.broker.customer();
      const bought = await suite.broker.buyCoin(customer.token, { amount: 40 });
      assert.equal(bought.status, 201, bought.text);
      const seed = bought.body.seed as string;
      const db = suite.broker.database.db;
      // Write back what an older broker stored: plaintext everywhere.
      const before = await storedSecrets(suite.broker);
      const signingSeed = box.open(before.key.private_seed, `signing_keys.private_seed:${before.key.key_id}`);
      await db
        .updateTable('signing_keys')
        .set({ private_seed: signingSeed })
        .where('key_id', '=', before.key.key_id)
        .execute();
      await db.updateTable('chains').set({ seed }).where('chain_id', '=', bought.body.chainId).execute();
      await db
        .updateTable('coin_purchases')
        .set({ response: bought.text })
        .where('chain_id', '=', bought.body.chainId)
        .execute();

      await prepareBrokerStore(db, suite.broker.url, new Date());

      const after = await storedSecrets(suite.broker);
      assert.equal(box.open(after.key.private_seed, `signing_keys.private_seed:${after.key.key_id}`), signingSeed);
      const chain = after.chains.find((c) => c.chain_id === bought.body.chainId);
      assert.equal(box.open(chain?.seed as string, `chains.seed:${bought.body.chainId}`), seed);
      const purchase = after.purchases.find((p) => p.chain_id === bought.body.chainId);
      assert.equal(box.open(purchase?.response as string, 'coin_purchases.response'), bought.text);
      if (engine === 'sqlite') {
        const bytes = sqliteBytes(suite.broker);
        assert.ok(!bytes.includes(seed), 'the old plaintext seed is gone from the file and its log');
        assert.ok(!bytes.includes(signingSeed), 'the old plaintext signing seed is gone from the file and its log');
      }
      // The broker still signs with the same key: a new coin's touchstone names it.
      const next = await suite.broker.buyCoin(customer.token, { amount: 10 });
      assert.equal(next.status, 201, next.text);
      assert.equal(next.body.touchstone.keyId, after.key.key_id);
    });
  });

  describe(`session kinds on ${engine}`, () => {
    const suite = brokerSuite(engine);

    test('the web session cookie is refused as a Bearer token, and an API token is no web session', async () => {
      const web = new WebClient(suite.broker.url);
      const email = `kinds-${Date.now()}@example.test`;
      const form = await web.get('/register');
      const registered = await web.post('/register', { csrf: csrfOf(form.text), email, password: 'correct horse' });
      assert.equal(registered.status, 303, registered.text);
      const cookie = web.jar.get('np_session');
      assert.ok(cookie, 'the pages keep a session cookie');
      assert.equal((await web.get('/coins')).status, 200, 'the cookie opens the pages');

      for (const path of ['/coins', '/history']) {
        const asBearer = await call(suite.broker.api, 'GET', path, { token: cookie });
        assert.equal(asBearer.status, 401, `${path}: ${asBearer.text}`);
        assert.equal(asBearer.body.code, 'unauthorized');
      }
      const buy = await call(suite.broker.api, 'POST', '/coins', {
        token: cookie,
        key: 'cookie-as-bearer',
        body: { amount: 10, payment: { card: { number: '4242 4242 4242 4242', expiry: '12/30', cvc: '123' } } },
      });
      assert.equal(buy.status, 401);

      // The same customer's API session works at the API, and not as the pages' cookie.
      const session = await call(suite.broker.api, 'POST', '/sessions', { body: { email, password: 'correct horse' } });
      assert.equal(session.status, 200, session.text);
      const token = session.body.token as string;
      assert.equal((await call(suite.broker.api, 'GET', '/coins', { token })).status, 200);
      const pretender = new WebClient(suite.broker.url);
      pretender.jar.set('np_session', token);
      const page = await pretender.get('/coins');
      assert.equal(page.status, 303);
      assert.equal(page.location, '/login');
      const kinds = await suite.broker.database.db.selectFrom('sessions').select('kind').orderBy('kind').execute();
      assert.deepEqual(
        kinds.map((k) => k.kind),
        ['api', 'web'],
      );
    });
  });
}
