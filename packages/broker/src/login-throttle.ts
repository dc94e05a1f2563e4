import { isIP } from 'node:net';
import { ProtocolError } from '@netpay/protocol';
import { hashToken, rfc3339 } from '@netpay/service-kit';
import type { BrokerDeps } from './deps.ts';
import { newId } from './ids.ts';
import type { Queryable } from './schema.ts';

/**
 * How many failed logins are tolerated within one sliding window.
 *
 * The rule, one limiter for the web form and the JSON API alike (both call {@link throttledLogin}), counting
 * only wrong passwords (and unknown emails) of the last `windowSeconds`:
 * 1. An address that has failed `perAddress` times, on any accounts, is refused whatever it sends, the right
 *    password included: it is guessing (or spraying one password over many accounts).
 * 2. An address that has failed `perAccountFromAddress` times on one account is refused for that account. This
 *    is what slows a guesser down, and it only ever slows addresses that have failures of their own: the owner
 *    logging in from any other address is not refused, so a guesser cannot lock the owner out.
 * 3. An account that has failed `perAccount` times, from all addresses together, is refused to everyone. The
 *    ceiling is far above what rules 1 and 2 let one address do, so only a distributed attack (many addresses)
 *    reaches it; then the owner waits too, which is the price of bounding such an attack.
 * Refused attempts are not failures (they check no password), so hammering a refused address does not push
 * an account towards the ceiling. A correct password forgets the failures of that account from that address
 * (the owner's own typos), and nothing else.
 */
export interface LoginFailureLimits {
  windowSeconds: number;
  perAddress: number;
  perAccountFromAddress: number;
  perAccount: number;
}

export const DEFAULT_LOGIN_FAILURE_LIMITS: LoginFailureLimits = {
  windowSeconds: 15 * 60,
  // Higher than one account's budget: one office behind one address may hold several mistyping people.
  perAddress: 30,
  perAccountFromAddress: 10,
  perAccount: 1000,
};

/** Failures in the window, each count taken before the attempt being judged. */
export interface FailureCounts {
  fromAddress: number;
  onAccountFromAddress: number;
  onAccount: number;
}

export type ThrottleRule = 'address' | 'account_from_address' | 'account';

/** The pure rule: which limit, if any, refuses an attempt with these counts. */
export function loginRefusal(counts: FailureCounts, limits: LoginFailureLimits): ThrottleRule | undefined {
  if (counts.fromAddress >= limits.perAddress) return 'address';
  if (counts.onAccountFromAddress >= limits.perAccountFromAddress) return 'account_from_address';
  if (counts.onAccount >= limits.perAccount) return 'account';
  return undefined;
}

/**
 * The address a request's failures are counted under. IPv6 clients usually hold a whole /64, so they are
 * counted per /64 (otherwise one host would have 2^64 budgets); IPv4-mapped IPv6 is plain IPv4.
 */
export function addressKey(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped?.[1]) return mapped[1];
  if (isIP(ip) !== 6) return ip;
  const [head = '', tail] = ip.toLowerCase().split('%')[0]?.split('::') ?? [''];
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}

/** The account a login names, hashed: the email field sometimes holds a mistyped password, not kept in clear. */
function accountKey(email: string): string {
  return hashToken(`login:${email.trim().toLowerCase()}`);
}

export type ThrottledLogin<T> = { ok: true; value: T } | { ok: false; retryAfterSeconds: number };

/**
 * Runs `login` (which throws `invalid_credentials` on a wrong email or password) unless the failure limits
 * refuse the attempt. The attempt is recorded as a failure before the password is checked and forgotten if it
 * turns out right, so concurrent guesses from one address see each other and cannot overrun the budget.
 * State is in the broker's database, so every broker process sharing it shares the limits.
 */
export async function throttledLogin<T>(
  deps: Pick<BrokerDeps, 'db' | 'clock' | 'config'>,
  attempt: { email: string; ip: string },
  login: () => Promise<T>,
): Promise<ThrottledLogin<T>> {
  const limits = { ...DEFAULT_LOGIN_FAILURE_LIMITS, ...(deps.config.loginFailures ?? {}) };
  const account = accountKey(attempt.email);
  const address = addressKey(attempt.ip);
  const now = deps.clock.now();
  const since = rfc3339(new Date(now.getTime() - limits.windowSeconds * 1000));
  const id = newId('lgf');
  // Old rows are never counted again; dropping them keeps the table as small as one window.
  await deps.db.deleteFrom('login_failures').where('failed_at', '<=', since).execute();
  await deps.db
    .insertInto('login_failures')
    .values({ id, account_key: account, address, failed_at: rfc3339(now) })
    .execute();
  const forget = () => deps.db.deleteFrom('login_failures').where('id', '=', id).execute();
  try {
    const counts = await countFailures(deps.db, account, address, since);
    const rule = loginRefusal(counts, limits);
    if (rule) {
      await forget();
      const oldest = await oldestFailure(deps.db, rule, account, address, since);
      const freeAtMs = (oldest ? Date.parse(oldest) : now.getTime()) + limits.windowSeconds * 1000;
      return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((freeAtMs - now.getTime()) / 1000)) };
    }
  } catch (error) {
    await forget();
    throw error;
  }
  let value: T;
  try {
    value = await login();
  } catch (error) {
    // A wrong password stays recorded; anything else (a database error) was not a guess.
    if (!(error instanceof ProtocolError && error.code === 'invalid_credentials')) await forget();
    throw error;
  }
  await deps.db
    .deleteFrom('login_failures')
    .where('account_key', '=', account)
    .where('address', '=', address)
    .execute();
  return { ok: true, value };
}

/** The attempt being judged is already recorded, so each count is one less than the rows found. */
async function countFailures(db: Queryable, account: string, address: string, since: string): Promise<FailureCounts> {
  const count = async (byAccount: boolean, byAddress: boolean) => {
    let q = db
      .selectFrom('login_failures')
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .where('failed_at', '>', since);
    if (byAccount) q = q.where('account_key', '=', account);
    if (byAddress) q = q.where('address', '=', address);
    const row = await q.executeTakeFirstOrThrow();
    return Math.max(0, Number(row.n) - 1);
  };
  return {
    fromAddress: await count(false, true),
    onAccountFromAddress: await count(true, true),
    onAccount: await count(true, false),
  };
}

/** When the refusing rule's oldest failure leaves the window, the count drops below its limit (Retry-After). */
async function oldestFailure(
  db: Queryable,
  rule: ThrottleRule,
  account: string,
  address: string,
  since: string,
): Promise<string | undefined> {
  let q = db
    .selectFrom('login_failures')
    .select((eb) => eb.fn.min('failed_at').as('oldest'))
    .where('failed_at', '>', since);
  if (rule !== 'address') q = q.where('account_key', '=', account);
  if (rule !== 'account') q = q.where('address', '=', address);
  const row = await q.executeTakeFirst();
  return (row?.oldest as string | null | undefined) ?? undefined;
}
