// One customer reading one site on two devices: each browser has its own session (and server-side wallet) at the
// vendor, both drawing on the customer's one connection to the site. The second device's connect must not cut the
// first one off: each grant gets a refresh token of its own, and revoking the site stops them all.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { testEngines } from '@netpay/service-kit/testing';
import { Reader } from './connected-reader.ts';
import { startWorld, type TestVendor, type World } from './harness.ts';

for (const engine of testEngines()) {
  describe(`one customer on two devices at one site on ${engine}`, () => {
    let world: World;
    let a: TestVendor;
    // Allowances of at most 20 cents: every few articles a device asks the broker for the next one.
    const prices = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [String(i + 1), 6]));

    before(async () => {
      world = await startWorld({ engine, feeBps: 200, broker: { allowanceMaxMinor: 20, connectionBlockMinor: 200 } });
      a = await world.addVendor(`devices-${engine}`, { prices });
    });
    after(async () => world?.close());

    it('both devices keep reading through their refreshes; revoking the site stops both', async () => {
      const phone = await Reader.open(world, 1000);
      assert.equal((await phone.connect(a, '1')).read.charged, true);
      const laptop = await phone.anotherDevice();
      const second = await laptop.connect(a, '2');
      assert.equal(second.read.charged, true, 'the second device connects and pays');
      assert.notEqual(laptop.session, phone.session, 'two sessions at the vendor');

      // Alternating, 6c an article against allowances of 20c: each device refreshes its allowance on the way.
      for (const [device, id] of [
        [phone, '3'],
        [laptop, '4'],
        [phone, '5'],
        [laptop, '6'],
        [phone, '7'],
        [laptop, '8'],
        [phone, '9'],
      ] as const) {
        const r = await device.read(a, id);
        assert.equal(r.status, 200, `article ${id}: ${r.reason ?? r.code ?? ''} ${r.page.text.slice(0, 200)}`);
        assert.equal(r.charged, true, `article ${id} paid`);
      }
      assert.equal((await a.vendor.account()).earned, 9 * 6, 'every article charged once');

      await phone.revoke(a);
      // The site released what it held: the customer paid exactly the nine articles, on one connection.
      assert.equal((await phone.figures()).balance, 1000 - 9 * 6);
      for (const [device, id] of [
        [laptop, '10'],
        [phone, '11'],
      ] as const) {
        const r = await device.read(a, id);
        assert.equal(r.status, 402, `article ${id} after the revoke`);
        assert.equal(r.charged, undefined);
      }
      const result = await world.audit();
      assert.equal(result.ok, true, result.discrepancies.join('\n'));
    });
  });
}
