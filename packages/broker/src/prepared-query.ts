import { type Compilable, CompiledQuery } from 'kysely';
import type { Queryable } from './schema.ts';

/** Marks a parameter's place while the query is built once; replaced by the caller's value on every run. */
const SLOT = '\u0000netpay-slot:';

/**
 * A query of the broker's hot paths (claims, redemptions), built by Kysely once per SQL dialect and then run with
 * new values: Kysely's building and compiling was 40–50 % of the broker's CPU on claims (issue 10), for statements
 * that never change shape. The builder stays the readable, typed Kysely query; `slot(name)` stands for a value given
 * at run time.
 *
 * @example
 * const chainById = new PreparedQuery((db, slot) =>
 *   db.selectFrom('chains').selectAll().where('chain_id', '=', slot('chainId')));
 * const row = await chainById.first(trx, { chainId });
 */
export class PreparedQuery<Row, Slots extends string> {
  readonly #compiled = new Map<string, CompiledQuery<Row>>();

  constructor(private readonly build: (db: Queryable, slot: (name: Slots) => never) => Compilable<Row>) {}

  /** Every row, with `values` in the slots. */
  async all(db: Queryable, values: Record<Slots, unknown>): Promise<Row[]> {
    const compiled = this.#compile(db);
    const parameters = compiled.parameters.map((p) =>
      typeof p === 'string' && p.startsWith(SLOT) ? values[p.slice(SLOT.length) as Slots] : p,
    );
    const result = await db.executeQuery(CompiledQuery.raw(compiled.sql, parameters));
    return result.rows as Row[];
  }

  /** The first row, if any. */
  async first(db: Queryable, values: Record<Slots, unknown>): Promise<Row | undefined> {
    return (await this.all(db, values))[0];
  }

  /** Runs a statement that returns no rows (an insert or update). */
  async run(db: Queryable, values: Record<Slots, unknown>): Promise<void> {
    await this.all(db, values);
  }

  #compile(db: Queryable): CompiledQuery<Row> {
    // One compiled form per dialect (placeholders and quoting differ between SQLite and PostgreSQL).
    const dialect = db.getExecutor().adapter.constructor.name;
    let compiled = this.#compiled.get(dialect);
    if (!compiled) {
      compiled = this.build(db, (name) => `${SLOT}${name}` as never).compile();
      this.#compiled.set(dialect, compiled);
    }
    return compiled;
  }
}
