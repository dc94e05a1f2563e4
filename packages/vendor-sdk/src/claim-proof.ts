/**
 * §5 v1.1 proof of payment: a claim that would open a new epoch carries the payword the customer presented, and the
 * broker opens the epoch only when that payword lies on the chain above every point it knows. A forged header, or
 * a vendor holding no fresh payword of the customer's, moves nothing. This file turns a claim and its refusals
 * into values the payment path answers with.
 */
import type { ClaimResponse, ErrorCode } from '@netpay/protocol';
import { type BrokerClient, RemoteError } from './broker-client.ts';
import { type ChallengeFacts, type ProblemDecision, paymentProblem } from './challenge.ts';

/** The point a claim presents as proof (wire form): w_index, as the customer presented it or a wallet derived it. */
export interface ClaimProof {
  index: number;
  payword: string;
}

/**
 * Where a claim's proof comes from: a fixed payword the customer presented, or (a server-side wallet, which can
 * derive paywords) a function of the highest index the broker says it knows, undefined before the first try.
 */
export type ProofSource = ClaimProof | ((brokerLastIndex: number | undefined) => ClaimProof | undefined) | undefined;

/** What a claim came to: the broker's answer, or the §4 problem to give the customer (nothing was charged). */
export type ClaimOutcome =
  | { kind: 'claimed'; claim: ClaimResponse }
  | { kind: 'refused'; problem: ProblemDecision; cause: string };

/** Broker refusals that are already §4 payment codes, passed on as they are. */
const PAYMENT_CODES: ReadonlySet<ErrorCode> = new Set([
  'chain_expired',
  'chain_exhausted',
  'currency_mismatch',
  'unknown_chain',
]);

/**
 * Claims a chain with the proof, if any. The current holder renewing its own lease may send none; every other
 * claim needs one, and the SDK always has one when a customer presented a payword, so it always sends it. A
 * derived proof the broker finds too low (it names the highest index it knows as `lastIndex`) is derived again
 * above that point, once: the reader of a server-side wallet spent further at another site meanwhile.
 *
 * @example
 * const outcome = await claimWithProof(broker, chainId, { index: 7, payword: w7 }, facts);
 * if (outcome.kind === 'refused') return outcome.problem;
 */
export async function claimWithProof(
  broker: Pick<BrokerClient, 'claim'>,
  chainId: string,
  source: ProofSource,
  facts: ChallengeFacts | undefined,
): Promise<ClaimOutcome> {
  let proof = typeof source === 'function' ? source(undefined) : source;
  for (let attempt = 0; ; attempt++) {
    try {
      return { kind: 'claimed', claim: await broker.claim(chainId, proof ? { proof } : {}) };
    } catch (error) {
      const known = attempt === 0 && typeof source === 'function' ? brokerLastIndex(error) : undefined;
      if (known !== undefined && typeof source === 'function') {
        const higher = source(known);
        if (higher && higher.index > known && higher.index > (proof?.index ?? 0)) {
          proof = higher;
          continue;
        }
      }
      return { kind: 'refused', problem: claimRefusal(facts, error), cause: messageOf(error) };
    }
  }
}

/** The highest index the broker knows, from its `invalid_payword` refusal of a proof, if it says. */
function brokerLastIndex(error: unknown): number | undefined {
  if (!(error instanceof RemoteError) || error.code !== 'invalid_payword') return undefined;
  const body = error.body as { lastIndex?: unknown } | undefined;
  const index = body?.lastIndex;
  return typeof index === 'number' && Number.isSafeInteger(index) && index >= 0 ? index : undefined;
}

/**
 * The §4 answer for a claim the broker refused or could not answer.
 * - `invalid_payword`: the proof is not above what the broker knows (forged, or spent elsewhere already): the
 *   customer's payment is refused as `invalid_payword`, as if the vendor had checked it itself.
 * - `chain_refunding` (v1.1, 409 at the broker) becomes 402 `unknown_chain`: the coin is on its way back to the
 *   customer's card and will never pay again, and `unknown_chain` is the §4 code that makes a wallet drop the coin
 *   and pay with another one. A 503 would make it retry a coin that is going away.
 * - anything else the broker says no to with a §4 code is passed on; a 404 is `unknown_chain`; the rest (network,
 *   5xx, an answer that does not parse) is 503 `broker_unavailable`, which a wallet may retry.
 */
export function claimRefusal(facts: ChallengeFacts | undefined, error: unknown): ProblemDecision {
  if (error instanceof RemoteError && error.kind === 'refused') {
    if (error.code === 'invalid_payword') {
      return paymentProblem(
        facts,
        'invalid_payword',
        'the broker did not accept the payword as proof of payment; nothing was charged',
      );
    }
    if (error.code === 'chain_refunding') {
      return paymentProblem(facts, 'unknown_chain', 'the chain is being refunded; pay with another coin');
    }
    if (error.code && PAYMENT_CODES.has(error.code)) return paymentProblem(facts, error.code, 'refused by the broker');
    if (error.status === 404 || error.code === 'not_found') {
      return paymentProblem(facts, 'unknown_chain', 'the broker does not know this chain');
    }
  }
  return paymentProblem(facts, 'broker_unavailable', `claim failed: ${messageOf(error)}`);
}

/**
 * The proofs a server-side wallet presents when it must claim its chain again: w_k for the very index it is about
 * to pay, k = this vendor's last index + the price in units; if the broker knows a higher point, k = that point +
 * the price in units. Derived from the allowance only (§7 v1.1: the vendor holds w_a, never the seed), so never
 * above it: undefined past the allowance, where the wallet must ask the broker for the next one instead.
 *
 * @example
 * walletProofs({ allowanceIndex: 20, payword: (i) => paywordBelow(chainId, allowance, i) }, 15, 2)(undefined); // { index: 17, … }
 */
export function walletProofs(
  wallet: { allowanceIndex: number; payword(index: number): string | undefined },
  lastIndex: number,
  units: number,
): (brokerLastIndex: number | undefined) => ClaimProof | undefined {
  return (brokerLastIndex) => {
    const index = Math.max(lastIndex, brokerLastIndex ?? 0) + units;
    if (units < 1 || index > wallet.allowanceIndex) return undefined;
    const payword = wallet.payword(index);
    return payword === undefined ? undefined : { index, payword };
  };
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
