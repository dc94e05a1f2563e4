import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { createTestDatabase, testEngines } from '@netpay/service-kit/testing';
import pg from 'pg';
import { PAYMENT_BATCH_STATEMENTS } from '../src/pg-spend-journal.ts';
import { createSpendStore } from '../src/index.ts';

/*
 * After five executions of a prepared statement PostgreSQL may keep a generic plan, made without the arrays' lengths.
 * The payment batch's plan must stay linear in the batch whatever plan is kept: a join condition that let the
 * planner find the heads by an index on the whole array once made it re-read the unnest for every head found
 * (n² in the batch, twice the server's CPU a payment). Here each statement runs on its generic plan with 40 runs,
 * and every scan of the arrays must run once.
 */

const RUNS = 40;

/** An array literal of simple values (the test's ids and words need no escaping). */
function literal(values: readonly (string | number | boolean | null)[], type: string): string {
  return `'{${values.map((v) => (v === null ? 'NULL' : `"${v}"`)).join(',')}}'::${type}`;
}

interface PlanNode {
  'Node Type': string;
  'Actual Loops': number;
  Plans?: PlanNode[];
}

function functionScans(node: PlanNode, into: PlanNode[] = []): PlanNode[] {
  if (node['Node Type'] === 'Function Scan') into.push(node);
  for (const child of node.Plans ?? []) functionScans(child, into);
  return into;
}

for (const engine of testEngines()) {
  describe(`the payment batch's plan on ${engine}`, () => {
    const drops: (() => Promise<void>)[] = [];
    after(async () => {
      for (const d of drops) await d();
    });

    it('stays linear in the batch on the generic plan PostgreSQL keeps, each statement', async (t) => {
      if (engine !== 'postgres') return t.skip('a PostgreSQL plan');
      const db = await createTestDatabase(engine);
      drops.push(db.drop);
      const store = await createSpendStore(db.url);
      await store.close();
      const url = new URL(db.url);
      const schema = url.searchParams.get('schema') as string;
      url.searchParams.delete('schema');
      const client = new pg.Client({ connectionString: url.toString() });
      await client.connect();
      try {
        await client.query(`SET search_path = ${schema}`);
        await client.query('SET plan_cache_mode = force_generic_plan');
        const ids = Array.from({ length: RUNS }, (_, i) => `chain${String(i).padStart(17, '0')}`);
        for (const id of ids) {
          await client.query(
            `INSERT INTO netpay_epoch_heads (chain_id, epoch, last_index, last_payword, last_resource, released)
             VALUES ($1, 1, 0, 'w0', 'r', 0)`,
            [id],
          );
        }
        const runs = ids.map((_, i) => i);
        const ones = ids.map(() => 1);
        const zeros = ids.map(() => 0);
        const words = ids.map(() => 'w1');
        const resources = ids.map(() => 'GET /a');
        const nows = ids.map(() => 1_700_000_000_000);
        const falses = ids.map(() => false);
        const nulls = ids.map(() => null);
        const args = {
          singles: [
            literal(ids, 'text[]'),
            literal(ones, 'bigint[]'),
            literal(zeros, 'int[]'),
            literal(ones, 'int[]'),
            literal(words, 'text[]'),
            literal(resources, 'text[]'),
            literal(ones, 'bigint[]'),
            literal(nows, 'bigint[]'),
            literal(falses, 'bool[]'),
          ],
          full: [
            literal(ids, 'text[]'),
            literal(ones, 'bigint[]'),
            literal(ones, 'int[]'),
            literal(
              ids.map(() => 2),
              'int[]',
            ),
            literal(words, 'text[]'),
            literal(resources, 'text[]'),
            literal(runs, 'int[]'),
            literal(runs, 'int[]'),
            literal(
              ids.map(() => 2),
              'int[]',
            ),
            literal(words, 'text[]'),
            literal(resources, 'text[]'),
            literal(ones, 'bigint[]'),
            literal(nows, 'bigint[]'),
            literal(falses, 'bool[]'),
            literal(nulls, 'text[]'),
            literal(nulls, 'text[]'),
          ],
        } as const;
        for (const name of ['singles', 'full'] as const) {
          await client.query(`PREPARE batch_${name} AS ${PAYMENT_BATCH_STATEMENTS[name]}`);
          const { rows } = await client.query<{ 'QUERY PLAN': { Plan: PlanNode }[] }>(
            `EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE batch_${name}(${args[name].join(', ')})`,
          );
          const plan = rows[0]?.['QUERY PLAN'][0]?.Plan as PlanNode;
          const scans = functionScans(plan);
          assert.ok(scans.length >= 1, `${name}: the arrays are read`);
          for (const scan of scans) assert.equal(scan['Actual Loops'], 1, `${name}: the arrays are read once`);
          // Every run won its compare-and-set (the plan did the work, not a shortcut).
          const { rows: heads } = await client.query<{ n: string }>(
            'SELECT count(*) AS n FROM netpay_epoch_heads WHERE last_index = $1',
            [name === 'singles' ? 1 : 2],
          );
          assert.equal(Number(heads[0]?.n), RUNS, name);
        }
      } finally {
        await client.end();
      }
    });
  });
}
