import { type CoinSummary, ProtocolError, type WalletGrantResponse } from '@netpay/protocol';
import { hashToken, newSecret, rfc3339 } from '@netpay/service-kit';
import type { Kysely, Transaction } from 'kysely';
import { loadChainState } from './chain-state.ts';
import { claimInTransaction } from './claim.ts';
import { listCoins } from './coins-view.ts';
import type { BrokerDeps } from './deps.ts';
import type { BrokerSchema, BrokerTx } from './schema.ts';
import { openChainSeed } from './store-secrets.ts';
import { BROKER_VENDOR_ID, findVendor } from './vendor-registry.ts';

/** One-time connect codes (§7), stored as SHA-256 hashes; `used_at` is set by the one exchange that wins. */
export interface WalletGrantTable {
  code_hash: string;
  vendor_id: string;
  chain_id: string;
  customer_id: string;
  created_at: string;
  expires_at: string;
  used_at: string | null;
}

type GrantSchema = BrokerSchema & { wallet_grants: WalletGrantTable };

function grantDb(deps: BrokerDeps): Kysely<GrantSchema> {
  return deps.db as unknown as Kysely<GrantSchema>;
}

const CODE_PREFIX = 'np_wg_';
const CODE_RE = /^np_wg_[A-Za-z0-9_-]{43}$/;

/**
 * The customer's coins a connect may hand to a vendor: only chains the broker made (it knows the seed),
 * active and with units left, newest first. Status and remaining come from the same view as `GET {api}/coins`.
 */
export async function connectableCoins(deps: BrokerDeps, customerId: string): Promise<CoinSummary[]> {
  const seeded = await deps.db
    .selectFrom('chains')
    .select('chain_id')
    .where('customer_id', '=', customerId)
    .where('seed', 'is not', null)
    .where('status', '=', 'active')
    .execute();
  const ids = new Set(seeded.map((r) => r.chain_id));
  const { coins } = await listCoins(deps.db, customerId, deps.clock.now());
  return coins.filter((c) => ids.has(c.chainId) && c.status === 'active' && c.remaining > 0);
}

/**
 * §7 consent: makes a one-time code that lets `vendorId` take over `chainId` within `grantTtlSeconds`.
 * The code is returned once and stored only as a hash, bound to the vendor and the chain.
 */
export async function issueWalletGrant(
  deps: BrokerDeps,
  customerId: string,
  vendorId: string,
  chainId: string,
): Promise<{ code: string; expiresAt: string }> {
  const vendor = vendorId === BROKER_VENDOR_ID ? undefined : await findVendor(deps.db, vendorId);
  if (!vendor) throw new ProtocolError('unknown_vendor', `no vendor ${vendorId}`);
  const coins = await connectableCoins(deps, customerId);
  if (!coins.some((c) => c.chainId === chainId)) {
    throw new ProtocolError('bad_request', 'that coin cannot be connected: it is not yours, not active, or empty');
  }
  const code = newSecret(CODE_PREFIX);
  const now = deps.clock.now();
  const expiresAt = rfc3339(new Date(now.getTime() + deps.config.grantTtlSeconds * 1000));
  const db = grantDb(deps);
  // Old codes are worthless after their minute; keep the table small.
  await db
    .deleteFrom('wallet_grants')
    .where('expires_at', '<', rfc3339(new Date(now.getTime() - 3600_000)))
    .execute();
  await db
    .insertInto('wallet_grants')
    .values({
      code_hash: hashToken(code),
      vendor_id: vendor.id,
      chain_id: chainId,
      customer_id: customerId,
      created_at: rfc3339(now),
      expires_at: expiresAt,
      used_at: null,
    })
    .execute();
  return { code, expiresAt };
}

const invalid = () => new ProtocolError('grant_invalid', 'the code is unknown, expired, already used or not yours');

/**
 * §7 `POST {api}/wallet-grants/{code}`: in one transaction, consumes the code (a conditional update, so of
 * concurrent exchanges exactly one wins) and claims the chain for the calling vendor with the same claim as
 * `POST {api}/chains/{id}/claim`, then returns the claim plus the seed. Nothing in the answer names the
 * customer. A wrong vendor, an expired, used or unknown code is `grant_invalid` and changes nothing.
 */
export async function exchangeWalletGrant(
  deps: BrokerDeps,
  vendorId: string,
  code: string,
): Promise<WalletGrantResponse> {
  if (!CODE_RE.test(code)) throw invalid();
  const codeHash = hashToken(code);
  return grantDb(deps)
    .transaction()
    .execute(async (gtrx: Transaction<GrantSchema>) => {
      const now = deps.clock.now();
      const at = rfc3339(now);
      const grant = await gtrx
        .selectFrom('wallet_grants')
        .selectAll()
        .where('code_hash', '=', codeHash)
        .executeTakeFirst();
      if (!grant || grant.used_at !== null || grant.vendor_id !== vendorId) throw invalid();
      if (now.getTime() >= Date.parse(grant.expires_at)) throw invalid();
      const consumed = await gtrx
        .updateTable('wallet_grants')
        .set({ used_at: at })
        .where('code_hash', '=', codeHash)
        .where('used_at', 'is', null)
        .executeTakeFirst();
      if (Number(consumed.numUpdatedRows) !== 1) throw invalid();

      const trx = gtrx as unknown as BrokerTx;
      const state = await loadChainState(trx, deps.engine, grant.chain_id);
      if (state?.chain.status !== 'active' || state.chain.seed === null) throw invalid();
      const { response } = await claimInTransaction(deps, trx, state, vendorId, { internal: true });
      return {
        chainId: state.chain.chain_id,
        touchstone: response.touchstone,
        seed: openChainSeed(state.chain.chain_id, state.chain.seed),
        holder: response.holder,
        previous: response.previous,
        start: response.start,
      };
    });
}
