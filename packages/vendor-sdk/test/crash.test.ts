import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { b64uEncode } from '@netpay/protocol';
import { testEngines } from '@netpay/service-kit/testing';
import { createSpendStore } from '../src/index.ts';
import { get, startWorld, type VendorIdentity, type World } from './harness.ts';

const SCRIPT = fileURLToPath(new URL('./fixtures/vendor-server.ts', import.meta.url));

async function spawnVendor(world: World, identity: VendorIdentity): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', SCRIPT], {
    env: {
      ...process.env,
      NETPAY_TEST_VENDOR: JSON.stringify({
        id: identity.id,
        port: identity.port,
        url: identity.url,
        apiKey: identity.apiKey,
        seed: b64uEncode(identity.signingKey.privateSeed),
        keyId: identity.signingKey.keyId,
        storeUrl: identity.storeUrl,
        brokerUrl: world.brokerUrl,
      }),
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`vendor exited early with ${code}`)));
  });
  return child;
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

for (const engine of testEngines()) {
  describe(`a vendor killed with SIGKILL between payments on ${engine}`, () => {
    let world: World;
    const children: ChildProcess[] = [];
    before(async () => {
      world = await startWorld({ engine });
    });
    after(async () => {
      for (const c of children) await kill(c);
      await world?.close();
    });

    it('loses no recorded payment and redeems all of them after a restart', async () => {
      const identity = await world.registerVendorIdentity('crashy');
      const { chain } = await world.buyCoin(50);
      let child = await spawnVendor(world, identity);
      children.push(child);
      for (let i = 1; i <= 5; i++) {
        const res = await get(`${identity.url}/articles/${i}`, { chain, index: i });
        assert.equal(res.status, 200, JSON.stringify(res.body));
      }
      // Payments in flight when the process dies may or may not be recorded, but every answered one is.
      const inflight = Array.from({ length: 5 }, (_, i) =>
        get(`${identity.url}/articles/x${i}`, { chain, index: 6 + i }).catch(() => undefined),
      );
      await new Promise((r) => setTimeout(r, 5));
      await kill(child);
      const settled = await Promise.all(inflight);
      const answered = settled.filter((r) => r?.status === 200).map((r) => r?.body.paid.index as number);

      const store = await createSpendStore(identity.storeUrl);
      const loaded = await store.loadChain(chain.chainIdB64);
      const last = loaded?.epochs.at(-1)?.last?.index ?? 0;
      assert.ok(last >= Math.max(5, ...answered), `last ${last} lost an answered payment (${answered})`);
      await store.close();

      child = await spawnVendor(world, identity);
      children.push(child);
      // The restarted vendor continues from what it recorded.
      const stale = await get(`${identity.url}/articles/again`, { chain, index: last });
      assert.ok(stale.status === 402 || stale.body?.paid?.charged === false, JSON.stringify(stale.body));
      const next = await get(`${identity.url}/articles/after`, { chain, index: last + 1 });
      assert.equal(next.status, 200, JSON.stringify(next.body));
      await kill(child);

      // Redeem with the same store from this process: every unit recorded is redeemed.
      const v = await world.startVendor(identity);
      const report = await v.vendor.redeemNow();
      assert.equal(report.accepted, 1);
      assert.equal(report.rejected, 0);
      const account = await v.vendor.account();
      assert.equal(account.earned, last + 1);
      assert.equal(account.redeemed, last + 1);
      assert.equal(account.pending, 0);
      const result = await world.audit();
      assert.equal(result.ok, true, result.discrepancies.join('\n'));
    });
  });
}
