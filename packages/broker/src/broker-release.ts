import { b64uDecode, type HolderCertificate, ProtocolError, verifyHolderCertificate } from '@netpay/protocol';
import type { BrokerDeps } from './deps.ts';
import { publishedKeys } from './signing-keys.ts';
import { BROKER_VENDOR_ID } from './vendor-registry.ts';

/**
 * §6 at the broker's own release URL. The broker holds an epoch only to refund the chain, and from that moment
 * no vendor can claim it (claims answer `chain_refunding`), so a release is never owed: the answer is a clear
 * problem instead of a 404, and a vendor that still asks stops retrying.
 */
export async function brokerRelease(deps: BrokerDeps, holder: HolderCertificate): Promise<never> {
  const keys = await publishedKeys(deps.db);
  const key = keys.find((k) => k.keyId === holder.keyId);
  if (!key || !verifyHolderCertificate(holder, b64uDecode(key.publicKey, 32))) {
    throw new ProtocolError('invalid_signature', 'the holder certificate is not signed by this broker', undefined, 403);
  }
  if (holder.prevVendorId !== BROKER_VENDOR_ID) {
    throw new ProtocolError('forbidden', 'the certificate does not name the broker as the previous holder');
  }
  const chain = await deps.db
    .selectFrom('chains')
    .select(['status'])
    .where('chain_id', '=', holder.chainId)
    .executeTakeFirst();
  if (!chain) throw new ProtocolError('unknown_chain', 'the broker does not know this chain', undefined, 404);
  throw new ProtocolError(
    'chain_refunding',
    `the broker holds this chain to refund it (${chain.status.replace('_', ' ')}); it is not released`,
  );
}
