/**
 * §5 v1.1 "report the release at once". A new holder that started from the previous holder's release tells the
 * broker in a checkpoint carrying that release, right after obtaining it and before its first payment, so the
 * broker knows where the previous epoch ends (and never pays its holder beyond). Until the broker has answered, every
 * checkpoint of the epoch carries the release, so the lease renewal job retries it, after a restart too (the spend
 * store remembers `releaseReported`).
 */
import type { CheckpointRequest, HolderCertificate } from '@netpay/protocol';
import { type BrokerClient, RemoteError } from './broker-client.ts';
import type { EpochRecord, SpendStore } from './spend-store.ts';

/** True when the epoch started from a release the broker has not been told about yet. */
export function releaseUnreported(epoch: EpochRecord): boolean {
  return epoch.startRelease !== null && !epoch.releaseReported;
}

/**
 * The checkpoint body for an epoch: its durable last point (the start index if it took no payment yet), and the
 * start release while it is unreported. Undefined while the epoch's start is unknown.
 *
 * @example
 * checkpointRequest(epoch); // { epoch: 2, index: 13, payword: 'w13…', release: { …A's release at 13… } }
 */
export function checkpointRequest(epoch: EpochRecord): CheckpointRequest | undefined {
  if (!epoch.last) return undefined;
  const body: CheckpointRequest = { epoch: epoch.epoch, index: epoch.last.index, payword: epoch.last.payword };
  if (epoch.startRelease && !epoch.releaseReported) body.release = epoch.startRelease;
  return body;
}

/** What a checkpoint came to. */
export type CheckpointOutcome =
  /** The lease is renewed (and the release, if carried, recorded by the broker). */
  | { kind: 'renewed'; holder: HolderCertificate; reported: boolean }
  /** A later claim took the chain: stop taking payments on this epoch. */
  | { kind: 'superseded'; detail: string }
  /** The broker said no for another reason; a carried release is not sent again (the redemption still carries it). */
  | { kind: 'refused'; detail: string }
  /** Not answered (network, 5xx, a certificate that does not verify): everything is retried on the next pass. */
  | { kind: 'unreachable'; detail: string };

/** What a checkpoint needs: the broker, the store, and a check of the renewed certificate's signature. */
export interface CheckpointPort {
  broker: Pick<BrokerClient, 'checkpoint'>;
  store: Pick<SpendStore, 'markReleaseReported' | 'markSuperseded'>;
  /** True when the certificate is the broker's, for this chain and epoch, naming this vendor. */
  holderVerifies(holder: HolderCertificate, epoch: EpochRecord): Promise<boolean>;
}

/**
 * Sends the §5 checkpoint of an epoch from its durable record and writes down what follows from the answer: the
 * release reported, or the epoch superseded. The caller updates its memory from the outcome.
 *
 * @example
 * const outcome = await checkpointEpoch(port, await store.getEpoch(chainId, 2));
 */
export async function checkpointEpoch(port: CheckpointPort, epoch: EpochRecord): Promise<CheckpointOutcome> {
  const body = checkpointRequest(epoch);
  if (!body) return { kind: 'unreachable', detail: 'the epoch has no start yet' };
  const carried = body.release !== undefined;
  let holder: HolderCertificate;
  try {
    holder = (await port.broker.checkpoint(epoch.chainId, body)).holder;
  } catch (error) {
    if (!(error instanceof RemoteError) || error.kind !== 'refused') {
      return { kind: 'unreachable', detail: error instanceof Error ? error.message : String(error) };
    }
    if (error.code === 'lease_superseded' || error.code === 'not_holder' || error.status === 409) {
      await port.store.markSuperseded(epoch.chainId, epoch.epoch);
      return { kind: 'superseded', detail: error.message };
    }
    // Refused for good (the broker will not take this body): a carried release must not keep the lease from
    // renewing, so it is not sent again; the epoch's first redemption carries it as `from.release` all the same.
    if (carried) await port.store.markReleaseReported(epoch.chainId, epoch.epoch);
    return { kind: 'refused', detail: error.message };
  }
  if (!(await port.holderVerifies(holder, epoch))) {
    return { kind: 'unreachable', detail: 'the renewed holder certificate does not verify' };
  }
  if (carried) await port.store.markReleaseReported(epoch.chainId, epoch.epoch);
  return { kind: 'renewed', holder, reported: carried };
}
