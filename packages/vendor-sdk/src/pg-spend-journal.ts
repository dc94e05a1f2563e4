import { createRequire } from 'node:module';
import type pg from 'pg';
import type { KnownEntitlements, WriteResult } from './payment-journal.ts';
import type { PaymentWrite } from './spend-store.ts';

/** A run of payments on one epoch, each expecting the index the one before it pays: one compare-and-set. */
interface Run {
  chainId: string;
  epoch: number;
  expected: number;
  tail: PaymentWrite;
  members: number[];
}

/**
 * The whole batch as one statement: the compare-and-set of every run, then the journal rows of the runs that won,
 * the entitlements that are new and the purchase notes server-side wallets' payments carry, in the statement's own
 * transaction (one round trip, one commit). Arrays through unnest, so one named prepared statement serves every
 * batch size.
 *
 * The heads are found by the join alone. After five executions PostgreSQL keeps a generic plan, which knows no
 * array's length; an extra `chain_id = ANY($1)` (once added for a young table's custom plans) made that plan
 * re-read the whole unnest for every head it found, n² in the batch. Measured alone (40 payments a batch): the
 * server's CPU a payment 28-33 µs with it, 14 without; on 200,000 heads 14-23 µs, the heads found by their key.
 */
const COMMIT_TEXT = `
WITH runs AS (
  SELECT * FROM unnest($1::text[], $2::bigint[], $3::int[], $4::int[], $5::text[], $6::text[], $7::int[])
    AS r(chain_id, epoch, expected, last_index, last_payword, last_resource, run)
), won AS (
  UPDATE netpay_epoch_heads e
     SET last_index = r.last_index, last_payword = r.last_payword, last_resource = r.last_resource
    FROM runs r
   WHERE e.chain_id = r.chain_id AND e.epoch = r.epoch AND e.last_index = r.expected
     AND e.released = 0
  RETURNING r.run, e.chain_id, e.epoch
), paid AS (
  SELECT w.chain_id, w.epoch, p.idx, p.payword, p.resource, p.amount_minor, p.at_ms, p.entitle, p.session_hash,
         p.description
    FROM unnest($8::int[], $9::int[], $10::text[], $11::text[], $12::bigint[], $13::bigint[], $14::bool[],
                $15::text[], $16::text[])
      AS p(run, idx, payword, resource, amount_minor, at_ms, entitle, session_hash, description)
    JOIN won w ON w.run = p.run
), journal AS (
  INSERT INTO netpay_payment_journal (chain_id, epoch, idx, payword, resource, amount_minor, at_ms)
  SELECT chain_id, epoch, idx, payword, resource, amount_minor, at_ms FROM paid
), entitled AS (
  INSERT INTO netpay_entitlements (chain_id, resource, idx, payword)
  SELECT DISTINCT ON (chain_id, resource) chain_id, resource, idx, payword FROM paid
   WHERE entitle ORDER BY chain_id, resource, idx
  ON CONFLICT DO NOTHING
), purchased AS (
  INSERT INTO netpay_wallet_purchases (session_hash, resource, chain_id, idx, at_ms)
  SELECT session_hash, resource, chain_id, idx, at_ms FROM paid WHERE session_hash IS NOT NULL
  ON CONFLICT DO NOTHING
), noted AS (
  INSERT INTO netpay_spend_notes (chain_id, idx, amount_minor, description)
  SELECT chain_id, idx, amount_minor, description FROM paid WHERE session_hash IS NOT NULL
  ON CONFLICT DO NOTHING
)
SELECT run FROM won`;

const COMMIT_NAME = 'netpay_payment_batch_v6';

/**
 * The same commit for the usual wave: every run one payment (a reader pays once a request) and no purchase notes.
 * A run is then its payment, so the journal rows and entitlements come straight from the compare-and-sets that won:
 * 9 arrays instead of 16 and two joins and two inserts fewer. Measured alone (40 payments a batch on 62 chains):
 * the server's CPU a payment 10.7 µs against 14 for the full statement, the client's 10 against 13.
 */
const SINGLES_TEXT = `
WITH runs AS (
  SELECT * FROM unnest($1::text[], $2::bigint[], $3::int[], $4::int[], $5::text[], $6::text[], $7::bigint[],
                       $8::bigint[], $9::bool[]) WITH ORDINALITY
    AS r(chain_id, epoch, expected, idx, payword, resource, amount_minor, at_ms, entitle, run)
), won AS (
  UPDATE netpay_epoch_heads e SET last_index = r.idx, last_payword = r.payword, last_resource = r.resource
    FROM runs r
   WHERE e.chain_id = r.chain_id AND e.epoch = r.epoch AND e.last_index = r.expected AND e.released = 0
  RETURNING r.*
), journal AS (
  INSERT INTO netpay_payment_journal (chain_id, epoch, idx, payword, resource, amount_minor, at_ms)
  SELECT chain_id, epoch, idx, payword, resource, amount_minor, at_ms FROM won
), entitled AS (
  INSERT INTO netpay_entitlements (chain_id, resource, idx, payword)
  SELECT DISTINCT ON (chain_id, resource) chain_id, resource, idx, payword FROM won
   WHERE entitle ORDER BY chain_id, resource, idx
  ON CONFLICT DO NOTHING
)
SELECT run - 1 AS run FROM won`;

const SINGLES_NAME = 'netpay_payment_batch_singles_v1';

/** The two statements' texts, for a test that reads the plans PostgreSQL keeps for them. */
export const PAYMENT_BATCH_STATEMENTS = { full: COMMIT_TEXT, singles: SINGLES_TEXT } as const;

/**
 * Batches committed at once, each on a connection of its own: while one waits for PostgreSQL's commit (its WAL
 * flush), the next is sent, and the server's own group commit may flush both at once. Batches in flight never share
 * a chain (GroupCommitter), so they touch different epoch rows and cannot deadlock one another.
 */
export const PG_BATCHES_IN_FLIGHT = 2;

/**
 * Payments that make a batch on PostgreSQL without waiting for the end of the event-loop turn. At 50 connections a
 * turn parses nearly every request in flight, so batches closed with the turn came one at a time (47 payments a
 * commit) and the vendor sat idle while PostgreSQL executed and flushed each one. Cut at 16, the first batch is
 * at the server while the loop parses the rest: measured side by side on 2 cores, 18-21 k paid answers/s instead of
 * 17-18 k (12 and 32 measured alike within the noise; SQLite, whose commit and fsync run on the loop, loses with any
 * cut and closes batches with the turn).
 */
export const PG_CUT_BATCH_AT = 16;

/** Deadlocks between two vendor processes' batches roll the whole statement back, so it is simply run again. */
const DEADLOCK_RETRIES = 5;

const requirePg = createRequire(import.meta.url);

/**
 * Splits a batch into waves, in order: a wave holds at most one run per epoch (an UPDATE changes a row once),
 * and a write that does not extend its epoch's run waits for the next wave, with every later write of that epoch,
 * so writes of one epoch are still tried in the order they came. A write whose expected index is below one a
 * previous wave made durable is a conflict without asking (indexes only move forward).
 */
function nextWave(
  batch: PaymentWrite[],
  open: number[],
  results: (WriteResult | undefined)[],
  floor: Map<string, number>,
) {
  const runs = new Map<string, Run>();
  const deferred = new Set<string>();
  const rest: number[] = [];
  for (const i of open) {
    const w = batch[i] as PaymentWrite;
    const key = `${w.epoch}:${w.chainId}`;
    const known = floor.get(key);
    if (known !== undefined && w.expectedLastIndex < known) {
      results[i] = 'conflict';
      continue;
    }
    const run = runs.get(key);
    if (deferred.has(key) || (run && run.tail.index !== w.expectedLastIndex)) {
      deferred.add(key);
      rest.push(i);
    } else if (run) {
      run.tail = w;
      run.members.push(i);
    } else {
      runs.set(key, { chainId: w.chainId, epoch: w.epoch, expected: w.expectedLastIndex, tail: w, members: [i] });
    }
  }
  // One lock order for every process's batches, so two of them rarely wait on each other crosswise.
  const ordered = [...runs.values()].sort((a, b) =>
    a.chainId < b.chainId ? -1 : a.chainId > b.chainId ? 1 : a.epoch - b.epoch,
  );
  return { runs: ordered, rest };
}

/** Whether the wave can take the lean statement: each run one payment, none with a purchase note. */
function singles(batch: PaymentWrite[], runs: Run[]): boolean {
  for (const run of runs) {
    if (run.members.length !== 1 || (batch[run.members[0] as number] as PaymentWrite).note) return false;
  }
  return true;
}

/** The lean statement's arrays: one element per run, which is its one payment. */
function singlesParams(runs: Run[], known: KnownEntitlements): unknown[] {
  const cols: unknown[][] = Array.from({ length: 9 }, () => []);
  for (const run of runs) {
    const w = run.tail;
    cols[0]?.push(run.chainId);
    cols[1]?.push(run.epoch);
    cols[2]?.push(run.expected);
    cols[3]?.push(w.index);
    cols[4]?.push(w.payword);
    cols[5]?.push(w.resource);
    cols[6]?.push(w.amountMinor);
    cols[7]?.push(w.atMs);
    cols[8]?.push(!known.has(w));
  }
  return cols;
}

function params(batch: PaymentWrite[], runs: Run[], known: KnownEntitlements): unknown[] {
  const cols: unknown[][] = Array.from({ length: 16 }, () => []);
  for (const [r, run] of runs.entries()) {
    cols[0]?.push(run.chainId);
    cols[1]?.push(run.epoch);
    cols[2]?.push(run.expected);
    cols[3]?.push(run.tail.index);
    cols[4]?.push(run.tail.payword);
    cols[5]?.push(run.tail.resource);
    cols[6]?.push(r);
    for (const i of run.members) {
      const w = batch[i] as PaymentWrite;
      cols[7]?.push(r);
      cols[8]?.push(w.index);
      cols[9]?.push(w.payword);
      cols[10]?.push(w.resource);
      cols[11]?.push(w.amountMinor);
      cols[12]?.push(w.atMs);
      cols[13]?.push(!known.has(w));
      cols[14]?.push(w.note?.sessionHash ?? null);
      cols[15]?.push(w.note?.description ?? null);
    }
  }
  return cols;
}

/**
 * The PostgreSQL payment journal: connections of its own, one per batch the group commit may have in flight
 * (`PG_BATCHES_IN_FLIGHT`; the prepared statement is prepared once on each), committing a batch in one round trip.
 */
export class PgSpendJournal {
  readonly #pool: pg.Pool;
  readonly #known: KnownEntitlements;

  constructor(url: string, known: KnownEntitlements) {
    this.#known = known;
    const parsed = new URL(url);
    const schema = parsed.searchParams.get('schema');
    parsed.searchParams.delete('schema');
    const { Pool } = requirePg('pg') as typeof pg;
    this.#pool = new Pool({
      connectionString: parsed.toString(),
      max: PG_BATCHES_IN_FLIGHT,
      // The schema name was checked when the store's database was opened from the same URL.
      ...(schema ? { options: `-c search_path=${schema}` } : {}),
    });
    // An idle connection the server drops (a restart, a failover, pg_terminate_backend) is an 'error' event of the
    // pool; unheard it would end the process. The pool has already let the connection go and the next batch opens
    // a new one; a batch on a connection that drops is answered by its own query's error.
    this.#pool.on('error', () => {});
  }

  /**
   * Commits a batch, each write with the answer it would have had alone: a run that wins commits every write in
   * it; when one loses, its first write is the conflict and the others go to the next wave as a run of their own
   * (another process may have paid that very index).
   */
  async commit(batch: PaymentWrite[]): Promise<WriteResult[]> {
    const results: (WriteResult | undefined)[] = new Array(batch.length);
    const floor = new Map<string, number>();
    let open = batch.map((_, i) => i);
    while (open.length > 0) {
      const { runs, rest } = nextWave(batch, open, results, floor);
      if (runs.length === 0) {
        open = rest;
        continue;
      }
      const won = singles(batch, runs)
        ? await this.#run(SINGLES_NAME, SINGLES_TEXT, singlesParams(runs, this.#known))
        : await this.#run(COMMIT_NAME, COMMIT_TEXT, params(batch, runs, this.#known));
      const again: number[] = [];
      for (const [r, run] of runs.entries()) {
        if (won.has(r)) {
          floor.set(`${run.epoch}:${run.chainId}`, run.tail.index);
          for (const i of run.members) results[i] = 'ok';
          this.#known.remember(run.members.map((i) => batch[i] as PaymentWrite));
        } else {
          results[run.members[0] as number] = 'conflict';
          again.push(...run.members.slice(1));
        }
      }
      open = [...again, ...rest].sort((a, b) => a - b);
    }
    return results as WriteResult[];
  }

  async #run(name: string, text: string, values: unknown[]): Promise<Set<number>> {
    for (let attempt = 0; ; attempt++) {
      try {
        const { rows } = await this.#pool.query<{ run: number }>({ name, text, values });
        return new Set(rows.map((row) => Number(row.run)));
      } catch (error) {
        if ((error as { code?: string }).code !== '40P01' || attempt >= DEADLOCK_RETRIES) throw error;
      }
    }
  }

  close(): Promise<void> {
    return this.#pool.end();
  }
}
