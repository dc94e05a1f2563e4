import { type CheckpointRequest, type HolderCertificate, ProtocolError } from '@netpay/protocol';
import { loadChainState, pointOnChain, updateEpoch } from './chain-state.ts';
import type { BrokerDeps } from './deps.ts';
import { holderCertificate, leaseTimes } from './holder-lease.ts';
import { activeSigningKey } from './signing-keys.ts';

/**
 * §5 checkpoint: the holder reports how far the chain has been spent and gets a renewed certificate.
 * Refused for an epoch a later claim superseded, so an unreachable holder loses its lease on time.
 */
export async function checkpoint(
  deps: BrokerDeps,
  chainId: string,
  vendorId: string,
  request: CheckpointRequest,
): Promise<{ holder: HolderCertificate }> {
  return deps.db.transaction().execute(async (trx) => {
    const state = await loadChainState(trx, deps.engine, chainId);
    if (state?.chain.status !== 'active') {
      throw new ProtocolError('unknown_chain', 'the broker does not know this chain', undefined, 404);
    }
    const now = deps.clock.now();
    if (now.getTime() >= Date.parse(state.chain.expires_at)) {
      throw new ProtocolError('chain_expired', `chain expired at ${state.chain.expires_at}`);
    }
    const epoch = state.epochs.get(request.epoch);
    if (!epoch || epoch.vendor_id !== vendorId) {
      throw new ProtocolError('not_holder', `the caller does not hold epoch ${request.epoch}`);
    }
    if (epoch.superseded_by !== null) {
      throw new ProtocolError(
        'lease_superseded',
        `epoch ${epoch.epoch} was superseded by epoch ${epoch.superseded_by}`,
      );
    }
    if (request.index > state.chain.length) {
      throw new ProtocolError('bad_request', `index ${request.index} is past the chain length ${state.chain.length}`);
    }
    const last = epoch.checkpoint_index ?? epoch.start_index;
    if (last !== null && request.index < last) {
      throw new ProtocolError('conflict', `index ${request.index} is below the epoch's last known index ${last}`, {
        lastIndex: last,
      });
    }
    if (!pointOnChain(state, { index: request.index, payword: request.payword })) {
      throw new ProtocolError('invalid_payword', 'the payword does not verify against the chain');
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
  });
}
