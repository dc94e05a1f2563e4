import { CASH, COINS_OUTSTANDING, customerAccount, FEES, normalBalance, vendorAccount } from './ledger.ts';
import type { BrokerSchema } from './schema.ts';

/**
 * The audit's rules, pure: they judge rows already loaded (`audit.ts` loads them) and return every
 * discrepancy as a sentence. A discrepancy about a chain starts with `chain <chainId>: `, so the operator
 * knows which coin to look at; the others are about the ledger as a whole or an entry that belongs to no chain.
 */

export type AuditChain = Pick<
  BrokerSchema['chains'],
  | 'chain_id'
  | 'length'
  | 'unit'
  | 'amount'
  | 'status'
  | 'refund_index'
  | 'refunded_amount'
  | 'customer_id'
  | 'connection_id'
>;
export type AuditEpoch = Pick<
  BrokerSchema['epochs'],
  | 'chain_id'
  | 'epoch'
  | 'vendor_id'
  | 'start_index'
  | 'release_index'
  | 'release'
  | 'forced_bound'
  | 'kept_gross'
  | 'redeemed_index'
  | 'redeemed_payword'
  | 'claim_index'
  | 'checkpoint_index'
>;
export type AuditRange = Pick<
  BrokerSchema['redeemed_ranges'],
  | 'id'
  | 'chain_id'
  | 'epoch'
  | 'vendor_id'
  | 'from_index'
  | 'to_index'
  | 'to_payword'
  | 'kept_to'
  | 'gross'
  | 'fee'
  | 'taken_back_gross'
  | 'taken_back_fee'
>;
export type AuditEntry = Pick<BrokerSchema['ledger_entries'], 'id' | 'kind' | 'reference'>;
export type AuditPosting = BrokerSchema['postings'];
export type AuditAccount = BrokerSchema['accounts'];
export type AuditTopUp = Pick<BrokerSchema['top_ups'], 'id' | 'customer_id' | 'amount' | 'status'>;

/** Every row the audit reads, one load per table. */
export interface AuditRows {
  chains: AuditChain[];
  epochs: AuditEpoch[];
  ranges: AuditRange[];
  entries: AuditEntry[];
  postings: AuditPosting[];
  accounts: AuditAccount[];
  topUps: AuditTopUp[];
}

export interface AuditResult {
  ok: boolean;
  discrepancies: string[];
  totals: {
    accounts: Record<string, number>;
    entries: number;
    postings: number;
    chains: number;
    ranges: number;
    redeemedGross: number;
    refunded: number;
    expectedCoinsOutstanding: number;
  };
}

/**
 * The whole audit over loaded rows: the ledger's own checks, then every chain on its own.
 *
 * @example
 * const { ok, discrepancies } = auditRows(await loadAuditRows(db));
 */
export function auditRows(rows: AuditRows): AuditResult {
  const ledger = ledgerDiscrepancies(rows);
  const chains = chainDiscrepancies(rows);
  const discrepancies = [...ledger.discrepancies, ...chains];
  return {
    ok: discrepancies.length === 0,
    discrepancies,
    totals: {
      accounts: ledger.accounts,
      entries: rows.entries.length,
      postings: rows.postings.length,
      chains: rows.chains.length,
      ranges: rows.ranges.length,
      redeemedGross: ledger.redeemedGross,
      refunded: ledger.refunded,
      expectedCoinsOutstanding: ledger.expectedCoinsOutstanding,
    },
  };
}

/**
 * The checks on the ledger as a whole: all postings sum to zero, every entry sums to zero, postings name known
 * entries and accounts, no account is past its floor, and coins outstanding equal Σ over chains of (value −
 * kept gross − refunded). On their own they cannot see money moved from one chain to another.
 */
export function ledgerDiscrepancies(rows: AuditRows): {
  discrepancies: string[];
  accounts: Record<string, number>;
  redeemedGross: number;
  refunded: number;
  expectedCoinsOutstanding: number;
} {
  const discrepancies: string[] = [];
  const accounts: Record<string, number> = {};
  const byEntry = new Map<string, number>();
  let total = 0;
  for (const p of rows.postings) {
    total += p.amount;
    accounts[p.account_id] = (accounts[p.account_id] ?? 0) + p.amount;
    byEntry.set(p.entry_id, (byEntry.get(p.entry_id) ?? 0) + p.amount);
  }
  if (total !== 0) discrepancies.push(`postings sum to ${total}, not 0`);
  const entryIds = new Set(rows.entries.map((e) => e.id));
  for (const [entryId, sum] of byEntry) {
    if (sum !== 0) discrepancies.push(`entry ${entryId} sums to ${sum}`);
    if (!entryIds.has(entryId)) discrepancies.push(`postings of unknown entry ${entryId}`);
  }
  const accountIds = new Set(rows.accounts.map((a) => a.id));
  for (const id of Object.keys(accounts)) {
    if (!accountIds.has(id)) discrepancies.push(`postings on unknown account ${id}`);
  }
  for (const account of rows.accounts) {
    accounts[account.id] ??= 0;
    if (account.floor === null) continue;
    const normal = normalBalance(account.kind, accounts[account.id] ?? 0);
    if (normal < account.floor) {
      discrepancies.push(`account ${account.id} is at ${normal}, below its floor ${account.floor}`);
    }
  }

  let redeemedGross = 0;
  for (const r of rows.ranges) redeemedGross += r.gross - r.taken_back_gross;
  let value = 0;
  let refunded = 0;
  for (const c of rows.chains) {
    value += c.length * c.unit;
    refunded += c.refunded_amount;
  }
  const expectedCoinsOutstanding = value - redeemedGross - refunded;
  const coinsOutstanding = -(accounts[COINS_OUTSTANDING] ?? 0);
  if (coinsOutstanding !== expectedCoinsOutstanding) {
    discrepancies.push(
      `coins outstanding ${coinsOutstanding} != unredeemed value of chains ${expectedCoinsOutstanding}`,
    );
  }
  return { discrepancies, accounts, redeemedGross, refunded, expectedCoinsOutstanding };
}

/** Account → amount, summed over a set of entries. */
type Amounts = Map<string, number>;

function add(into: Amounts, from: Amounts | undefined): void {
  if (!from) return;
  for (const [account, amount] of from) into.set(account, (into.get(account) ?? 0) + amount);
}

/** Where `actual` differs from `expected` (accounts missing from either count as 0), as "account N not M" parts. */
function differences(actual: Amounts, expected: Amounts): string[] {
  const out: string[] = [];
  const accounts = new Set([...actual.keys(), ...expected.keys()]);
  for (const account of accounts) {
    const a = actual.get(account) ?? 0;
    const e = expected.get(account) ?? 0;
    if (a !== e) out.push(`${a} to ${account}, not ${e}`);
  }
  return out;
}

interface ChainIndex {
  epochs: Map<number, AuditEpoch>;
  ranges: AuditRange[];
  purchases: number;
  refunds: number;
  /** The postings of its purchase and refund entries, summed per account. */
  purchasePostings: Amounts;
  refundPostings: Amounts;
  /** Σ of the coins_outstanding postings of every entry that belongs to the chain. */
  coinsOutstanding: number;
}

/**
 * Every chain on its own (PROTOCOL §8 v1.1):
 * - conservation: Σ kept gross of its ranges + refunded ≤ length × unit;
 * - its own ledger: the coins_outstanding postings of its entries (purchase and refund by chain, redemption and
 *   take-back through their range) equal −(value − kept gross − refunded); each range's redemption entry posts
 *   exactly its gross, fee and net, and its take-backs exactly what the range says was taken back;
 * - its ranges against what the broker holds: amounts match the indexes, the redeemer held the epoch, nothing
 *   kept passes the epoch's release, forced bound or the refund index, or starts before the epoch did, and a
 *   refund never passes the unspent remainder; a stored release says the index it is recorded at;
 * - kept ranges never overlap;
 * - its purchase and refund post to the payer: cash for a coin bought by card, the customer's balance account
 *   for a connection chain.
 * An entry that moves coins_outstanding but belongs to no chain is a discrepancy too, and so is a posting to a
 * customer's balance account by anything but that customer's top-ups and connection chains.
 */
export function chainDiscrepancies(rows: AuditRows): string[] {
  const out: string[] = [];
  const chains = new Map<string, ChainIndex>();
  for (const c of rows.chains) {
    chains.set(c.chain_id, {
      epochs: new Map(),
      ranges: [],
      purchases: 0,
      refunds: 0,
      purchasePostings: new Map(),
      refundPostings: new Map(),
      coinsOutstanding: 0,
    });
  }
  const unknownChains = new Set<string>();
  const indexOf = (chainId: string): ChainIndex | undefined => {
    const index = chains.get(chainId);
    if (!index) unknownChains.add(chainId);
    return index;
  };
  for (const e of rows.epochs) indexOf(e.chain_id)?.epochs.set(e.epoch, e);
  const rangeById = new Map<string, AuditRange>();
  for (const r of rows.ranges) {
    rangeById.set(r.id, r);
    indexOf(r.chain_id)?.ranges.push(r);
  }
  for (const chainId of [...unknownChains].sort()) {
    out.push(`chain ${chainId}: has epochs or ranges but the broker does not know the chain`);
  }

  const topUps = new Map(rows.topUps.map((t) => [t.id, t]));
  const postingsOf = new Map<string, Amounts>();
  for (const p of rows.postings) {
    const amounts = postingsOf.get(p.entry_id) ?? new Map<string, number>();
    postingsOf.set(p.entry_id, amounts);
    amounts.set(p.account_id, (amounts.get(p.account_id) ?? 0) + p.amount);
  }

  // Which chain each entry belongs to, and each range's redemption and take-back postings.
  const redemptionsOf = new Map<string, Amounts[]>();
  const takeBacksOf = new Map<string, Amounts>();
  for (const entry of rows.entries) {
    const amounts = postingsOf.get(entry.id);
    let chainId: string | undefined;
    if (entry.kind === 'purchase' || entry.kind === 'refund') {
      const chain = chains.get(entry.reference);
      if (chain) {
        chainId = entry.reference;
        if (entry.kind === 'purchase') {
          chain.purchases++;
          add(chain.purchasePostings, amounts);
        } else {
          chain.refunds++;
          add(chain.refundPostings, amounts);
        }
      }
    } else if (entry.kind === 'redemption' || entry.kind === 'take_back') {
      const range = rangeById.get(entry.reference);
      if (range) {
        chainId = range.chain_id;
        if (entry.kind === 'redemption') {
          const list = redemptionsOf.get(range.id) ?? [];
          list.push(amounts ?? new Map());
          redemptionsOf.set(range.id, list);
        } else {
          const sum = takeBacksOf.get(range.id) ?? new Map();
          add(sum, amounts);
          takeBacksOf.set(range.id, sum);
        }
      } else {
        out.push(`entry ${entry.id} (${entry.kind}) refers to ${entry.reference}, which is no redeemed range`);
      }
    } else if (entry.kind === 'top_up') {
      out.push(...topUpDiscrepancies(entry, amounts, topUps));
    } else if (entry.kind !== 'payout') {
      out.push(`entry ${entry.id} has an unknown kind ${entry.kind}`);
    }
    const coins = amounts?.get(COINS_OUTSTANDING) ?? 0;
    const chain = chainId === undefined ? undefined : chains.get(chainId);
    if (chain) chain.coinsOutstanding += coins;
    else if (coins !== 0) {
      out.push(
        `entry ${entry.id} (${entry.kind} ${entry.reference}) posts ${coins} to ${COINS_OUTSTANDING} but belongs to no chain`,
      );
    }
  }

  for (const chain of [...rows.chains].sort((a, b) => (a.chain_id < b.chain_id ? -1 : 1))) {
    const index = chains.get(chain.chain_id) as ChainIndex;
    for (const message of oneChain(chain, index, redemptionsOf, takeBacksOf)) {
      out.push(`chain ${chain.chain_id}: ${message}`);
    }
  }
  out.push(...customerAccountDiscrepancies(rows, chains, postingsOf, topUps));
  return out;
}

/** A top-up entry posts exactly its completed top-up's amount: cash +amount, the customer's account −amount. */
function topUpDiscrepancies(
  entry: AuditEntry,
  amounts: Amounts | undefined,
  topUps: Map<string, AuditTopUp>,
): string[] {
  const topUp = topUps.get(entry.reference);
  if (!topUp) return [`entry ${entry.id} (top_up) refers to ${entry.reference}, which is no top-up`];
  const out: string[] = [];
  if (topUp.status !== 'completed') out.push(`top-up ${topUp.id} has an entry but is ${topUp.status}`);
  const expected: Amounts = new Map([
    [CASH, topUp.amount],
    [customerAccount(topUp.customer_id), -topUp.amount],
  ]);
  const wrong = differences(amounts ?? new Map(), expected);
  if (wrong.length > 0) out.push(`top-up ${topUp.id}'s entry posts ${wrong.join('; ')}`);
  return out;
}

/**
 * Every customer's balance account (§7 v1.1) moves only by its own top-ups and its own connection chains'
 * purchases and refunds (checked entry by entry above and in `oneChain`); nothing else may post to it. Its floor
 * (never below 0) is checked with every account's in `ledgerDiscrepancies`; completed top-ups each have one entry.
 */
function customerAccountDiscrepancies(
  rows: AuditRows,
  chains: Map<string, ChainIndex>,
  postingsOf: Map<string, Amounts>,
  topUps: Map<string, AuditTopUp>,
): string[] {
  const out: string[] = [];
  const entryCount = new Map<string, number>();
  for (const entry of rows.entries) {
    if (entry.kind === 'top_up') entryCount.set(entry.reference, (entryCount.get(entry.reference) ?? 0) + 1);
    const touches = [...(postingsOf.get(entry.id)?.keys() ?? [])].filter((a) => a.startsWith('customer:'));
    if (touches.length === 0) continue;
    const legit =
      entry.kind === 'top_up' ||
      ((entry.kind === 'purchase' || entry.kind === 'refund') && chains.has(entry.reference));
    if (!legit) out.push(`entry ${entry.id} (${entry.kind} ${entry.reference}) posts to ${touches.join(', ')}`);
  }
  for (const topUp of topUps.values()) {
    const n = entryCount.get(topUp.id) ?? 0;
    if (topUp.status === 'completed' && n !== 1) out.push(`top-up ${topUp.id} is completed with ${n} entries, not 1`);
  }
  return out;
}

/** The discrepancies of one chain, without the `chain <id>: ` prefix. */
function oneChain(
  chain: AuditChain,
  index: ChainIndex,
  redemptionsOf: Map<string, Amounts[]>,
  takeBacksOf: Map<string, Amounts>,
): string[] {
  const out: string[] = [];
  const { unit } = chain;
  const value = chain.length * unit;
  if (chain.amount !== value) out.push(`was bought for ${chain.amount}, not its length × unit ${value}`);

  let kept = 0;
  for (const r of index.ranges) kept += r.gross - r.taken_back_gross;
  const refunded = chain.refunded_amount;
  if (refunded < 0) out.push(`refunded ${refunded}, below 0`);
  if (kept + refunded > value) {
    out.push(`vendors keep ${kept} and ${refunded} was refunded: ${kept + refunded} out of a value of ${value}`);
  }

  const refundIndex = chain.status === 'refunding' || chain.status === 'refunded' ? chain.refund_index : null;
  if ((chain.status === 'refunding' || chain.status === 'refunded') && chain.refund_index === null) {
    out.push(`is ${chain.status} without a refund index`);
  }
  if (refundIndex !== null && refunded > (chain.length - refundIndex) * unit) {
    out.push(
      `refunded ${refunded}, more than the unspent remainder ${(chain.length - refundIndex) * unit} past its refund index ${refundIndex}`,
    );
  }

  if (index.purchases !== 1) out.push(`has ${index.purchases} purchase entries, not 1`);
  // Who paid for it and where its remainder went: a card (cash) for a coin, the customer's balance for a
  // connection chain (§7 v1.1), and nothing else.
  const payer = chain.connection_id === null ? CASH : customerAccount(chain.customer_id);
  if (index.purchases === 1) {
    const wrong = differences(
      index.purchasePostings,
      new Map([
        [payer, value],
        [COINS_OUTSTANDING, -value],
      ]),
    );
    if (wrong.length > 0) out.push(`its purchase entry posts ${wrong.join('; ')}`);
  }
  if (index.refunds > 0) {
    const wrong = differences(
      index.refundPostings,
      new Map([
        [payer, -refunded],
        [COINS_OUTSTANDING, refunded],
      ]),
    );
    if (wrong.length > 0) out.push(`its refund entry posts ${wrong.join('; ')}`);
  }
  // A connection chain may give its unallowed tail back before it ends: several refund entries, one account.
  if (index.refunds > 1 && chain.connection_id === null) out.push(`has ${index.refunds} refund entries`);
  if (index.purchases > 0) {
    const expected = -(value - kept - refunded);
    if (index.coinsOutstanding !== expected) {
      out.push(
        `its entries post ${index.coinsOutstanding} to ${COINS_OUTSTANDING}, not ${expected} (value ${value} − kept gross ${kept} − refunded ${refunded})`,
      );
    }
  }

  out.push(...epochSummaries(index));

  for (const e of index.epochs.values()) {
    if (e.release === null) continue;
    let release: { chainId?: unknown; epoch?: unknown; vendorId?: unknown; index?: unknown };
    try {
      release = JSON.parse(e.release);
    } catch {
      out.push(`epoch ${e.epoch} stores a release that is not JSON`);
      continue;
    }
    if (release.index !== e.release_index) {
      out.push(
        `epoch ${e.epoch} stores a release at ${String(release.index)} but records its end at ${e.release_index}`,
      );
    }
    if (release.chainId !== chain.chain_id || release.epoch !== e.epoch || release.vendorId !== e.vendor_id) {
      out.push(`epoch ${e.epoch} stores a release of another chain, epoch or vendor`);
    }
  }

  for (const r of index.ranges) {
    const found = oneRange(chain, index, refundIndex, r, redemptionsOf.get(r.id) ?? [], takeBacksOf.get(r.id));
    for (const message of found) {
      out.push(`range ${r.id} (epoch ${r.epoch}, [${r.from_index},${r.to_index}) kept to ${r.kept_to}) ${message}`);
    }
  }

  const keptRanges = index.ranges.filter((r) => r.kept_to > r.from_index).sort((a, b) => a.from_index - b.from_index);
  for (let i = 1; i < keptRanges.length; i++) {
    const prev = keptRanges[i - 1] as AuditRange;
    const cur = keptRanges[i] as AuditRange;
    if (cur.from_index < prev.kept_to) {
      out.push(`ranges [${prev.from_index},${prev.kept_to}) and [${cur.from_index},${cur.kept_to}) overlap`);
    }
  }
  return out;
}

/**
 * Each epoch's summary of its ranges (what a redemption reads instead of the ranges, redeemed-ranges.ts) against the
 * ranges themselves: the gross they keep, and their highest end with its payword.
 */
function epochSummaries(index: ChainIndex): string[] {
  const out: string[] = [];
  const kept = new Map<number, number>();
  const highest = new Map<number, AuditRange>();
  for (const r of index.ranges) {
    kept.set(r.epoch, (kept.get(r.epoch) ?? 0) + r.gross - r.taken_back_gross);
    const top = highest.get(r.epoch);
    if (!top || r.to_index > top.to_index) highest.set(r.epoch, r);
  }
  for (const e of index.epochs.values()) {
    const sum = kept.get(e.epoch) ?? 0;
    if (e.kept_gross !== sum)
      out.push(`epoch ${e.epoch} records a kept gross of ${e.kept_gross}; its ranges keep ${sum}`);
    const top = highest.get(e.epoch);
    if ((top?.to_index ?? null) !== e.redeemed_index || (top && top.to_payword !== e.redeemed_payword)) {
      out.push(
        `epoch ${e.epoch} records its highest redeemed end at ${e.redeemed_index}; its ranges reach ${top?.to_index ?? 'nothing'}`,
      );
    }
  }
  return out;
}

/** The highest index the holders of epochs before `epoch` showed they had been paid to (chain-state.ts heldBefore). */
function shownBefore(index: ChainIndex, epoch: number): number {
  let floor = 0;
  for (const e of index.epochs.values()) {
    if (e.epoch >= epoch) continue;
    floor = Math.max(floor, e.claim_index ?? 0, e.checkpoint_index ?? 0, e.start_index ?? 0);
    const nextClaim = index.epochs.get(e.epoch + 1)?.claim_index ?? null;
    if (nextClaim === null || (e.redeemed_index ?? 0) < nextClaim) floor = Math.max(floor, e.redeemed_index ?? 0);
    else {
      // Its highest end reaches the next claim: the highest one below it counts (redeemed-ranges.ts).
      for (const r of index.ranges) {
        if (r.epoch === e.epoch && r.to_index < nextClaim) floor = Math.max(floor, r.to_index);
      }
    }
  }
  return floor;
}

/** The lowest start of an epoch after `epoch`, or null: no range keeps past it (redemption.ts, take-back.ts). */
function laterStart(index: ChainIndex, epoch: number): number | null {
  let lowest: number | null = null;
  for (const e of index.epochs.values()) {
    if (e.epoch > epoch && e.start_index !== null && (lowest === null || e.start_index < lowest))
      lowest = e.start_index;
  }
  return lowest;
}

/** The discrepancies of one range, each to follow "range <id> (…) ". */
function oneRange(
  chain: AuditChain,
  index: ChainIndex,
  refundIndex: number | null,
  r: AuditRange,
  redemptions: Amounts[],
  takeBacks: Amounts | undefined,
): string[] {
  const out: string[] = [];
  const { unit } = chain;
  if (r.from_index < 0 || r.to_index <= r.from_index || r.to_index > chain.length) out.push('lies outside the chain');
  if (r.kept_to < r.from_index || r.kept_to > r.to_index) out.push('keeps an end outside the range');
  if (r.gross !== (r.to_index - r.from_index) * unit) {
    out.push(`has gross ${r.gross}, not ${(r.to_index - r.from_index) * unit}`);
  }
  const keptGross = r.gross - r.taken_back_gross;
  const keptFee = r.fee - r.taken_back_fee;
  if (keptGross !== (r.kept_to - r.from_index) * unit) {
    out.push(`keeps gross ${keptGross}, not ${(r.kept_to - r.from_index) * unit}`);
  }
  if (r.fee < 0 || r.taken_back_fee < 0 || r.taken_back_gross < 0 || keptFee < 0 || keptFee > keptGross) {
    out.push(`keeps a fee ${keptFee} outside 0..${keptGross}`);
  }

  // Bounds apply to what the range still keeps: a range taken back whole keeps kept_to = from_index.
  const keeps = r.kept_to > r.from_index;
  if (keeps && refundIndex !== null && r.kept_to > refundIndex) out.push(`keeps past the refund index ${refundIndex}`);
  const epoch = index.epochs.get(r.epoch);
  if (!epoch) out.push('was redeemed in an epoch the chain never had');
  else {
    if (r.vendor_id !== epoch.vendor_id)
      out.push(`was redeemed by ${r.vendor_id}, not the epoch's holder ${epoch.vendor_id}`);
    if (keeps) {
      if (epoch.release_index !== null && r.kept_to > epoch.release_index) {
        out.push(`keeps past the epoch's release at ${epoch.release_index}`);
      }
      if (epoch.forced_bound !== null && r.kept_to > epoch.forced_bound) {
        out.push(`keeps past the epoch's forced bound ${epoch.forced_bound}`);
      }
      // Epochs hold the chain in order: past a later epoch's start the units are its holder's.
      const later = laterStart(index, r.epoch);
      if (later !== null && r.kept_to > later) out.push(`keeps past a later epoch's start at ${later}`);
      if (epoch.start_index !== null && r.from_index < epoch.start_index) {
        out.push(`starts before the epoch's start ${epoch.start_index}`);
      }
      // Units the holders before had shown they were paid for (a claim's proof, a checkpoint, a redeemed end) are
      // theirs, whatever release came later.
      const floor = shownBefore(index, r.epoch);
      if (r.from_index < floor)
        out.push(`starts below ${floor}, which the holders before it had shown they were paid to`);
    }
  }

  const vendor = vendorAccount(r.vendor_id);
  if (redemptions.length !== 1) out.push(`has ${redemptions.length} redemption entries, not 1`);
  else {
    const expected: Amounts = new Map([
      [COINS_OUTSTANDING, r.gross],
      [FEES, -r.fee],
      [vendor, -(r.gross - r.fee)],
    ]);
    const wrong = differences(redemptions[0] as Amounts, expected);
    if (wrong.length > 0) out.push(`has a redemption entry that posts ${wrong.join('; ')}`);
  }
  const back: Amounts = new Map([
    [COINS_OUTSTANDING, -r.taken_back_gross],
    [FEES, r.taken_back_fee],
    [vendor, r.taken_back_gross - r.taken_back_fee],
  ]);
  const wrongBack = differences(takeBacks ?? new Map(), back);
  if (wrongBack.length > 0) out.push(`has take-back entries that post ${wrongBack.join('; ')}`);
  return out;
}
