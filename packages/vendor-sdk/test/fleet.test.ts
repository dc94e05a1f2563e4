import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { b64uEncode, type PaywordChain } from '@netpay/protocol';
import { findNginx, type RunningNginx, startNginx } from '../../newspaper/src/bench-nginx.ts';
import { createNetPayVendor, createSpendStore } from '../src/index.ts';
import { freePort, type Got, get, startWorld, type VendorIdentity, type World } from './harness.ts';

const SCRIPT = fileURLToPath(new URL('./fixtures/fleet-vendor.ts', import.meta.url));

/** One process of the vendor `identity`, listening on `port` (the identity's release URL may point elsewhere). */
async function spawnProcess(world: World, identity: VendorIdentity, name: string, port: number) {
  const child = spawn(process.execPath, ['--import', 'tsx', SCRIPT], {
    env: {
      ...process.env,
      NETPAY_TEST_VENDOR: JSON.stringify({
        id: identity.id,
        name,
        port,
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
    child.once('exit', (code) => reject(new Error(`vendor process exited early with ${code}`)));
  });
  return { child, url: `http://127.0.0.1:${port}` };
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

/**
 * A wallet's view of one chain: the index it has spent to. It pays `spent + price / unit` and, told
 * `already_spent`, resynchronises to the vendor's last index and pays again (what charged readers twice before).
 */
class ChainWallet {
  spent = 0;
  refusals: string[] = [];
  constructor(readonly chain: PaywordChain) {}

  async buy(url: string, units: number): Promise<Got> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const index = this.spent + units;
      const res = await get(url, { chain: this.chain, index });
      if (res.status === 200) {
        assert.equal(res.body.paid.charged, true, JSON.stringify(res.body));
        assert.equal(res.body.paid.index, index);
        this.spent = index;
        return res;
      }
      this.refusals.push(`${url} at ${index}: ${res.status} ${res.body?.code} ${res.body?.detail ?? ''}`);
      if (res.body?.code !== 'already_spent') return res;
      this.spent = res.body.lastIndex as number;
    }
    throw new Error(`could not buy ${url}: ${this.refusals.join('; ')}`);
  }
}

const ARTICLES = 12;
const CHAINS = 6;
const priceOf = (i: number) => (i % 3 === 0 ? 2 : 1);
const pathOf = (c: number, i: number) => (priceOf(i) === 2 ? `/long/c${c}-${i}` : `/articles/c${c}-${i}`);

describe('two processes of one vendor on one PostgreSQL store', () => {
  let world: World;
  const children: ChildProcess[] = [];
  const proxies: RunningNginx[] = [];
  before(async () => {
    world = await startWorld({ engine: 'postgres' });
  });
  after(async () => {
    for (const p of proxies) await p.stop();
    for (const c of children) await kill(c);
    await world?.close();
  });

  it('takes payments of each chain alternating between the processes, then moves them away mid-flight: no refusal, no overcharge, no double spend', async () => {
    const identity = await world.registerVendorIdentity('fleet');
    const a = await spawnProcess(world, identity, 'a', identity.port);
    const b = await spawnProcess(world, identity, 'b', await freePort());
    children.push(a.child, b.child);
    const processes = [a.url, b.url];
    const wallets = await Promise.all(
      Array.from({ length: CHAINS }, async () => new ChainWallet((await world.buyCoin(200)).chain)),
    );

    // Several chains at once, each chain's payments alternating between the two processes.
    await Promise.all(
      wallets.map(async (w, c) => {
        for (let i = 1; i <= ARTICLES; i++) {
          const res = await w.buy(`${processes[i % 2]}${pathOf(c, i)}`, priceOf(i));
          assert.equal(res.status, 200, w.refusals.join('; '));
        }
      }),
    );
    const sumOfPrices = Array.from({ length: ARTICLES }, (_, i) => priceOf(i + 1)).reduce((s, p) => s + p, 0);
    for (const w of wallets) {
      assert.deepEqual(w.refusals, [], 'an honest payment was refused');
      assert.equal(w.spent, sumOfPrices, 'the reader paid more units than the articles cost');
    }

    // Every chain moves to another vendor while its last payment here is still in flight (on either process).
    const other = await world.addVendor('fleet-other');
    let speculationLost = 0;
    await Promise.all(
      wallets.map(async (w, c) => {
        const before = w.spent;
        const [here, there] = await Promise.all([
          get(`${processes[c % 2]}/articles/c${c}-last`, { chain: w.chain, index: before + 1 }),
          get(`${other.url}/articles/c${c}-moved`, { chain: w.chain, index: before + 2 }),
        ]);
        assert.equal(there.status, 200, JSON.stringify(there.body));
        if (here.status === 200) {
          assert.equal(here.body.paid.index, before + 1);
        } else {
          // The release came first: the payment here was not taken, and the wallet's guess at the next vendor
          // cost it the unit it meant for this one. Nothing is charged here for it.
          assert.equal(here.body.code, 'already_spent', JSON.stringify(here.body));
          speculationLost += 1;
        }
        w.spent = before + 2;
        const next = await w.buy(`${other.url}/articles/c${c}-after`, 1);
        assert.equal(next.status, 200);
      }),
    );

    // Redeem through either process: every unit this vendor answered as paid is credited, none rejected.
    const ra = (await (await fetch(`${a.url}/test/redeem`, { method: 'POST' })).json()) as Record<string, number>;
    const rb = (await (await fetch(`${b.url}/test/redeem`, { method: 'POST' })).json()) as Record<string, number>;
    assert.equal((ra.rejected ?? 0) + (rb.rejected ?? 0), 0, JSON.stringify({ ra, rb }));
    const ro = await other.vendor.redeemNow();
    assert.equal(ro.rejected, 0);

    const store = await createSpendStore(identity.storeUrl);
    const here = createNetPayVendor({
      vendorId: identity.id,
      brokerUrl: world.brokerUrl,
      apiKey: identity.apiKey,
      signingKey: identity.signingKey,
      releaseUrl: `${identity.url}/netpay/release`,
      store,
    });
    const mine = await here.account();
    await here.close();
    await store.close();
    const theirs = await other.vendor.account();
    assert.equal(mine.rejected, 0);
    assert.equal(mine.pending, 0);
    assert.equal(mine.redeemed, mine.earned, 'credited differs from the units served');
    assert.equal(theirs.redeemed, theirs.earned);
    // Each unit of every chain was charged once, at one vendor: the wallets' spent indices add up to both
    // vendors' earnings, and only a wrong guess during a move costs a unit (never a unit charged twice).
    const spentUnits = wallets.reduce((s, w) => s + w.spent, 0);
    assert.equal(mine.earned + theirs.earned, spentUnits);
    const served = CHAINS * (sumOfPrices + 2) + (CHAINS - speculationLost);
    assert.equal(spentUnits, served + speculationLost);
    const result = await world.audit();
    assert.equal(result.ok, true, result.discrepancies.join('\n'));
    for (const c of [a.child, b.child]) await kill(c);
  });

  it('behind nginx, routes every request of a chain to one process and takes its payments', async () => {
    const nginx = findNginx();
    if (!nginx) {
      assert.ok(process.env.CI !== 'true', 'nginx is not installed (apt-get install nginx-light)');
      return;
    }
    const identity = await world.registerVendorIdentity('fleet-nginx');
    const a = await spawnProcess(world, identity, 'a', await freePort());
    const b = await spawnProcess(world, identity, 'b', await freePort());
    children.push(a.child, b.child);
    const proxy = await startNginx({
      nginx,
      port: identity.port,
      upstreams: [a.url, b.url].map((u) => u.replace('http://', '')),
    });
    proxies.push(proxy);
    const wallets = await Promise.all(
      Array.from({ length: CHAINS }, async () => new ChainWallet((await world.buyCoin(200)).chain)),
    );
    const landed = new Set<string>();
    await Promise.all(
      wallets.map(async (w, c) => {
        const seen = new Set<string>();
        for (let i = 1; i <= 6; i++) {
          const res = await w.buy(`${proxy.url}${pathOf(c, i)}`, priceOf(i));
          assert.equal(res.status, 200, w.refusals.join('; '));
          seen.add(res.headers.get('x-vendor-process') ?? '?');
        }
        assert.equal(seen.size, 1, `chain ${c} landed on ${[...seen]}`);
        landed.add([...seen][0] as string);
        assert.deepEqual(w.refusals, []);
      }),
    );
    assert.ok([...landed].every((p) => p === 'a' || p === 'b'));
    const result = await world.audit();
    assert.equal(result.ok, true, result.discrepancies.join('\n'));
  });
});
