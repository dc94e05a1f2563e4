import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { type HolderCertificate, PaywordChain, type ReleaseStatement } from '@netpay/protocol';
import { ManualClock } from '@netpay/service-kit';
import { testEngines } from '@netpay/service-kit/testing';
import fc from 'fast-check';
import { audit } from '../src/audit.ts';
import { newId } from '../src/ids.ts';
import { brokerSuite, call, type TestVendor } from './harness.ts';

/**
 * Issue 7's property: random purchases, payments, moves, colluding vendors and customers, redemptions and refunds.
 * Per chain, money out (vendors' kept gross + refund) never passes the value; every honest vendor is credited
 * exactly the units it took and an honest customer's refund is at least what it did not spend; the audit passes,
 * and fails (naming the chain) exactly when a corruption breaks conservation.
 */

type Action =
  | { kind: 'pay'; vendor: number; units: number }
  | { kind: 'redeem'; vendor: number }
  | { kind: 'checkpoint'; vendor: number }
  | { kind: 'collude'; vendor: number }
  | { kind: 'refund' }
  | { kind: 'expire' };

const LENGTH = 40;
const TTL_SECONDS = 60;
const VENDORS = 3;

const actionArb: fc.Arbitrary<Action> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('pay' as const),
      vendor: fc.nat(VENDORS - 1),
      units: fc.integer({ min: 1, max: 4 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('redeem' as const), vendor: fc.nat(VENDORS - 1) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('checkpoint' as const), vendor: fc.nat(VENDORS - 1) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('collude' as const), vendor: fc.nat(VENDORS - 1) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'refund' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'expire' as const }) },
);

interface EpochView {
  epoch: number;
  cert: HolderCertificate;
  prevVendor: string;
  start: number | null;
  startRelease?: ReleaseStatement;
  last: number;
  redeemedTo: number | null;
  release?: ReleaseStatement;
  /** The certificate of the holder this epoch was released to. */
  releasedTo?: HolderCertificate;
}

/** What the release URL of the current run's vendors answers (the broker's refund asks through it). */
let releaseDesk: ((vendorId: string, holder: HolderCertificate) => Promise<ReleaseStatement>) | undefined;

for (const engine of testEngines()) {
  describe(`conservation under collusion, property, on ${engine}`, () => {
    let vendors: TestVendor[];
    let customer: { token: string };
    const clock = new ManualClock('2026-11-24T00:00:00Z');
    const suite = brokerSuite(engine, {
      broker: {
        clock,
        config: { leaseTtlSeconds: TTL_SECONDS },
        releaseClient: async (url, body) => {
          const vendorId = new URL(url).pathname.split('/')[1] ?? '';
          if (!releaseDesk) throw new Error('no run');
          return { release: await releaseDesk(vendorId, (body as { holder: HolderCertificate }).holder) };
        },
      },
    });
    before(async () => {
      vendors = [];
      for (let i = 0; i < VENDORS; i++) vendors.push(await suite.broker.addVendor(`prop-${i}`));
      customer = await suite.broker.customer();
    });

    test('per chain, money out ≤ value; honest parties paid exactly; the audit agrees', async () => {
      let run = 0;
      const runModel = async (colluders: number[], actions: Action[], corruption: number) => {
        run++;
        const chain = PaywordChain.generate(LENGTH);
        const bought = await suite.broker.buyCoin(customer.token, {
          amount: LENGTH,
          chain,
          key: `prop-${engine}-${run}`,
        });
        assert.equal(bought.status, 201, bought.text);
        const dishonest = new Set(colluders);
        const views = vendors.map(() => new Map<number, EpochView>());
        const took = vendors.map(() => 0);
        let spent = 0;
        let customerHonest = true;
        let expired = false;
        let refunded = false;
        let keySeq = 0;
        const byId = (id: string) => vendors.findIndex((v) => v.id === id);
        const api = (vi: number, method: string, path: string, body?: unknown) =>
          call(suite.broker.api, method, path, {
            token: vendors[vi]?.apiKey,
            ...(body === undefined ? {} : { body }),
            ...(path === '/redemptions' ? { key: `p-${engine}-${run}-${++keySeq}` } : {}),
          });

        // §6: an honest vendor releases at its last index, first obtaining its own start (recursively).
        const releaseFrom = async (vi: number, epoch: number, to: HolderCertificate): Promise<ReleaseStatement> => {
          const view = views[vi]?.get(epoch);
          if (!view) throw new Error(`vendor ${vi} never held epoch ${epoch}`);
          if (view.release) return view.release;
          await ensureStart(vi, view);
          view.release = vendors[vi]?.release(to, view.last, chain.b64(view.last), epoch) as ReleaseStatement;
          view.releasedTo = to;
          return view.release;
        };
        releaseDesk = (vendorId, holder) => releaseFrom(byId(vendorId), holder.prevEpoch, holder);

        const ensureStart = async (vi: number, view: EpochView) => {
          if (view.start !== null) return;
          const release = await releaseFrom(byId(view.prevVendor), view.epoch - 1, view.cert);
          view.start = release.index;
          view.startRelease = release;
          view.last = release.index;
          // v1.1: report the release at once (the broker records it even if the renewal is refused).
          await api(vi, 'POST', `/chains/${chain.chainIdB64}/checkpoint`, {
            epoch: view.epoch,
            index: release.index,
            payword: release.payword,
            release,
          });
        };

        const redeemAll = async (vi: number) => {
          const items: Array<{ view: EpochView; body: Record<string, unknown>; to: number }> = [];
          for (const view of views[vi]?.values() ?? []) {
            if (view.start === null) continue;
            const from = view.redeemedTo ?? view.start;
            const to = view.release ? view.release.index : view.last;
            if (to <= from) continue;
            items.push({
              view,
              to,
              body: {
                chainId: chain.chainIdB64,
                epoch: view.epoch,
                from: {
                  index: from,
                  payword: chain.b64(from),
                  ...(view.redeemedTo === null && view.startRelease ? { release: view.startRelease } : {}),
                },
                to: { index: to, payword: chain.b64(to), ...(view.release ? { release: view.release } : {}) },
              },
            });
          }
          if (items.length === 0) return;
          const res = await api(vi, 'POST', '/redemptions', { items: items.map((i) => i.body) });
          assert.equal(res.status, 200, res.text);
          res.body.items.forEach((r: { status: string; code?: string }, i: number) => {
            const it = items[i];
            if (!it) return;
            if (r.status === 'accepted') it.view.redeemedTo = it.to;
            else if (r.code !== 'end_unknown' && !dishonest.has(vi) && customerHonest && !expired) {
              assert.fail(`an honest redemption was rejected: ${r.code} ${JSON.stringify(it.body)}`);
            }
          });
        };

        for (const action of actions) {
          if (action.kind === 'expire') {
            clock.advance((TTL_SECONDS + 1) * 1000);
            expired = true;
          } else if (action.kind === 'refund') {
            if (refunded) continue;
            const res = await call(suite.broker.api, 'POST', `/coins/${chain.chainIdB64}/refund`, {
              token: customer.token,
            });
            assert.equal(res.status, 200, res.text);
            refunded = true;
            if (customerHonest)
              assert.ok(res.body.refunded >= LENGTH - spent, 'an honest customer gets its unspent rest');
          } else if (action.kind === 'pay') {
            const vi = action.vendor;
            const next = spent + action.units;
            if (next > LENGTH || refunded) continue;
            const claim = await api(vi, 'POST', `/chains/${chain.chainIdB64}/claim`, {
              proof: { index: next, payword: chain.b64(next) },
            });
            if (claim.status !== 200) {
              // Only a customer that handed out a far payword can find its own chain spent beyond its count.
              assert.ok(!customerHonest, `an honest payment was refused: ${claim.text}`);
              continue;
            }
            const cert = claim.body.holder as HolderCertificate;
            let view = views[vi]?.get(cert.epoch);
            if (!view) {
              view = {
                epoch: cert.epoch,
                cert,
                prevVendor: cert.prevVendorId,
                start: cert.epoch === 1 ? 0 : (claim.body.start?.index ?? null),
                last: cert.epoch === 1 ? 0 : (claim.body.start?.index ?? 0),
                redeemedTo: null,
              };
              views[vi]?.set(cert.epoch, view);
            }
            view.cert = cert;
            if (view.release) continue; // already released: an honest vendor takes no more on this epoch
            if (view.start === null && claim.body.start) {
              view.start = claim.body.start.index;
              view.last = claim.body.start.index;
            }
            await ensureStart(vi, view);
            if (next <= view.last) continue;
            took[vi] = (took[vi] ?? 0) + (next - view.last);
            view.last = next;
            spent = next;
          } else if (action.kind === 'checkpoint') {
            const vi = action.vendor;
            const latest = [...(views[vi]?.values() ?? [])].at(-1);
            if (!latest || latest.start === null || latest.release) continue;
            await api(vi, 'POST', `/chains/${chain.chainIdB64}/checkpoint`, {
              epoch: latest.epoch,
              index: latest.last,
              payword: chain.b64(latest.last),
            });
          } else if (action.kind === 'redeem') {
            await redeemAll(action.vendor);
          } else if (dishonest.has(action.vendor)) {
            // Collusion: the customer hands this vendor w_LENGTH; the vendor redeems every epoch it held to the
            // end of the chain, and signs a second release at LENGTH for any epoch it released.
            customerHonest = false;
            const vi = action.vendor;
            for (const view of views[vi]?.values() ?? []) {
              const from = view.redeemedTo ?? view.start ?? 0;
              if (from >= LENGTH) continue;
              const fake = view.releasedTo
                ? vendors[vi]?.release(view.releasedTo, LENGTH, chain.b64(LENGTH), view.epoch)
                : undefined;
              await api(vi, 'POST', '/redemptions', {
                items: [
                  {
                    chainId: chain.chainIdB64,
                    epoch: view.epoch,
                    from: { index: from, payword: chain.b64(from) },
                    to: { index: LENGTH, payword: chain.b64(LENGTH), ...(fake ? { release: fake } : {}) },
                  },
                ],
              });
            }
          }
        }
        for (let vi = 0; vi < VENDORS; vi++) await redeemAll(vi);

        // Per chain: money out never passes the value.
        const ranges = await suite.broker.database.db
          .selectFrom('redeemed_ranges')
          .selectAll()
          .where('chain_id', '=', chain.chainIdB64)
          .execute();
        const row = await suite.broker.database.db
          .selectFrom('chains')
          .selectAll()
          .where('chain_id', '=', chain.chainIdB64)
          .executeTakeFirstOrThrow();
        const keptUnits = new Map<string, number>();
        let kept = 0;
        for (const r of ranges) {
          kept += r.gross - r.taken_back_gross;
          keptUnits.set(r.vendor_id, (keptUnits.get(r.vendor_id) ?? 0) + (r.kept_to - r.from_index));
        }
        assert.ok(kept + row.refunded_amount <= LENGTH, `${kept} + ${row.refunded_amount} left for a ${LENGTH} chain`);
        // Every honest vendor is credited exactly what it took (forced starts after an expiry excepted: a holder
        // that never checkpointed can lose what it took, by design).
        if (!expired) {
          for (let vi = 0; vi < VENDORS; vi++) {
            if (dishonest.has(vi)) continue;
            assert.equal(
              keptUnits.get(vendors[vi]?.id ?? '') ?? 0,
              took[vi],
              `honest ${vendors[vi]?.id} paid exactly once`,
            );
          }
        }
        const audited = await suite.broker.audit();
        assert.ok(audited.ok, audited.discrepancies.join('; '));

        // A corruption inside a transaction that is rolled back: the audit fails, naming this chain, exactly when
        // the corruption breaks conservation.
        await corruptAndAudit(chain.chainIdB64, corruption, kept + row.refunded_amount, row.current_epoch);
      };

      async function corruptAndAudit(chainId: string, kind: number, out: number, epoch: number): Promise<void> {
        const rollback = new Error('rollback');
        let verdict: Awaited<ReturnType<typeof audit>> | undefined;
        let breaks = false;
        await suite.broker.database.db
          .transaction()
          .execute(async (trx) => {
            const at = '2026-11-24T00:00:00Z';
            if (kind === 0) {
              // The refund is paid again, one cent more than the chain has left, through a balanced entry.
              const amount = LENGTH - out + 1;
              breaks = true;
              await trx
                .updateTable('chains')
                .set((eb) => ({ refunded_amount: eb('refunded_amount', '+', amount) }))
                .where('chain_id', '=', chainId)
                .execute();
              const id = newId('le');
              await trx
                .insertInto('ledger_entries')
                .values({ id, kind: 'refund', reference: chainId, created_at: at })
                .execute();
              await trx
                .insertInto('postings')
                .values([
                  { entry_id: id, account_id: 'coins_outstanding', amount },
                  { entry_id: id, account_id: 'cash', amount: -amount },
                ])
                .execute();
            } else {
              // A second vendor credit for units already out: a range of one unit past everything, with its entry.
              breaks = out + 1 > LENGTH;
              const rr = newId('rr');
              await trx
                .insertInto('redeemed_ranges')
                .values({
                  id: rr,
                  chain_id: chainId,
                  from_index: LENGTH - 1,
                  from_payword: 'x',
                  to_index: LENGTH,
                  to_payword: 'x',
                  kept_to: LENGTH,
                  vendor_id: vendors[0]?.id ?? '',
                  epoch: Math.max(1, epoch),
                  redemption_id: 'corrupt',
                  gross: 1,
                  fee: 0,
                  taken_back_gross: 0,
                  taken_back_fee: 0,
                  created_at: at,
                })
                .execute();
              const id = newId('le');
              await trx
                .insertInto('ledger_entries')
                .values({ id, kind: 'redemption', reference: rr, created_at: at })
                .execute();
              await trx
                .insertInto('postings')
                .values([
                  { entry_id: id, account_id: 'coins_outstanding', amount: 1 },
                  { entry_id: id, account_id: `vendor:${vendors[0]?.id}`, amount: -1 },
                ])
                .execute();
            }
            verdict = await audit(trx);
            throw rollback;
          })
          .catch((error) => {
            if (error !== rollback) throw error;
          });
        assert.ok(verdict);
        if (breaks) {
          assert.equal(verdict.ok, false, 'the audit must fail on a corrupted chain');
          assert.ok(
            verdict.discrepancies.some((d) => d.startsWith(`chain ${chainId}:`)),
            verdict.discrepancies.join('; '),
          );
        }
        const after = await suite.broker.audit();
        assert.ok(after.ok, 'the corruption was rolled back');
      }

      await fc.assert(
        fc.asyncProperty(
          fc.subarray([0, 1, 2], { maxLength: 2 }),
          fc.array(actionArb, { minLength: 1, maxLength: 24 }),
          fc.nat(1),
          async (colluders, actions, corruption) => runModel(colluders, actions, corruption),
        ),
        {
          numRuns: engine === 'sqlite' ? 40 : 15,
          endOnFailure: true,
          ...(process.env.MODEL_SEED ? { seed: Number(process.env.MODEL_SEED) } : {}),
          ...(process.env.MODEL_PATH ? { path: process.env.MODEL_PATH } : {}),
        },
      );
    });
  });
}
