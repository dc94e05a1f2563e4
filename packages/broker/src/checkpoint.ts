import { type CheckpointRequest, type HolderCertificate, ProtocolError } from '@netpay/protocol';
import { rfc3339 } from '@netpay/service-kit';
import { loadChainState, pointOnChain, updateEpoch } from './chain-state.ts';
import type { BrokerDeps } from './deps.ts';
import { withHashWork } from './hash-work.ts';
import { holderCertificate, leaseTimes } from './holder-lease.ts';
import { activeSigningKey } from './signing-keys.ts';
import { checkRelease, learnRelease } from './take-back.ts';

/**
 * §5 checkpoint: the holder reports how far the chain has been spent and gets a renewed certificate.
 * Refused for an epoch a later claim superseded, so an unreachable holder loses its lease on time.
 * v1.1: a new holder reports the release it started from in its first checkpoint; the broker records it as the
 * end of the previous epoch (taking back anything its signer redeemed beyond it). That evidence is kept even when
 * the renewal itself is refused, because it bounds what the previous holder may redeem.
 */
export async function checkpoint(
  deps: BrokerDeps,
  chainId: string,
  vendorId: string,
  request: CheckpointRequest,
): Promise<{ holder: HolderCertificate }> {
  const outcome = await withHashWork(deps.hasher, (work) =>
    deps.db.transaction().execute(async (trx): Promise<ProtocolError | { holder: HolderCertificate }> => {
      const state = await loadChainState(trx, deps.engine, chainId);
      if (!state) return new ProtocolError('unknown_chain', 'the broker does not know this chain', undefined, 404);
      const now = deps.clock.now();
      const epoch = state.epochs.get(request.epoch);
      if (!epoch || epoch.vendor_id !== vendorId) {
        return new ProtocolError('not_holder', `the caller does not hold epoch ${request.epoch}`);
      }
      if (request.release) {
        const problem = await checkRelease(work, trx, state, request.release, vendorId, request.epoch);
        if (problem) return new ProtocolError(problem, 'the release does not hand the previous epoch to this one');
        const previous = state.epochs.get(request.epoch - 1);
        if (previous) await learnRelease(trx, state, previous, request.release, rfc3339(now), 'next holder');
      }
      if (state.chain.status !== 'active') {
        return new ProtocolError('chain_refunding', `the chain is ${state.chain.status.replace('_', ' ')}`);
      }
      if (now.getTime() >= Date.parse(state.chain.expires_at)) {
        return new ProtocolError('chain_expired', `chain expired at ${state.chain.expires_at}`);
      }
      if (epoch.superseded_by !== null) {
        return new ProtocolError(
          'lease_superseded',
          `epoch ${epoch.epoch} was superseded by epoch ${epoch.superseded_by}`,
        );
      }
      if (request.index > state.chain.length) {
        return new ProtocolError(
          'bad_request',
          `index ${request.index} is past the chain length ${state.chain.length}`,
        );
      }
      const last = epoch.checkpoint_index ?? epoch.start_index;
      if (last !== null && request.index < last) {
        return new ProtocolError('conflict', `index ${request.index} is below the epoch's last known index ${last}`, {
          lastIndex: last,
        });
      }
      if (!pointOnChain(work, state, { index: request.index, payword: request.payword })) {
        return new ProtocolError('invalid_payword', 'the payword does not verify against the chain');
      }
      const { issuedAt, expiresAt } = leaseTimes(now, deps.config.leaseTtlSeconds);
      const holder = holderCertificate(
        {
          chainId,
          epoch: epoch.epoch,
          vendorId,
          prevVendorId: epoch.prev_vendor_id,
          prevEpoch: epoch.prev_epoch,
          issuedAt,
          expiresAt,
        },
        deps.config.publicUrl,
        await activeSigningKey(trx),
      );
      await updateEpoch(trx, state, epoch, {
        checkpoint_index: request.index,
        checkpoint_payword: request.payword,
        issued_at: issuedAt,
        lease_expires_at: expiresAt,
        holder: JSON.stringify(holder),
      });
      return { holder };
    }),
  );
  if (outcome instanceof ProtocolError) throw outcome;
  return outcome;
}
