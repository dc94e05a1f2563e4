import { type Static, Type } from '@sinclair/typebox';
import { MAX_CHAIN_LENGTH } from '../payword-chain.ts';
import { B64u32Schema, CurrencySchema, KeyIdSchema, UrlSchema, VendorIdSchema } from './primitives.ts';

const strict = { additionalProperties: false } as const;

/** A published Ed25519 public key (broker key set and vendor directory). */
export const PublicKeySchema = Type.Object(
  { keyId: KeyIdSchema, alg: Type.Literal('Ed25519'), publicKey: B64u32Schema },
  strict,
);
export type PublicKey = Static<typeof PublicKeySchema>;

/** §3: an entry of the broker's key set. */
export const BrokerKeySchema = PublicKeySchema;
export type BrokerKey = Static<typeof BrokerKeySchema>;

/** §3: `GET /.well-known/netpay`. */
export const DiscoverySchema = Type.Object(
  {
    broker: UrlSchema,
    currency: CurrencySchema,
    keys: Type.Array(BrokerKeySchema, { minItems: 1, maxItems: 32 }),
    feeBps: Type.Integer({ minimum: 0, maximum: 10_000 }),
    maxChainLength: Type.Integer({ minimum: 1, maximum: MAX_CHAIN_LENGTH }),
    api: UrlSchema,
  },
  strict,
);
export type Discovery = Static<typeof DiscoverySchema>;

/** §3: `GET {api}/vendors/{vendorId}`. */
export const VendorDirectoryEntrySchema = Type.Object(
  {
    vendorId: VendorIdSchema,
    name: Type.String({ minLength: 1, maxLength: 200 }),
    url: UrlSchema,
    releaseUrl: UrlSchema,
    keys: Type.Array(PublicKeySchema, { maxItems: 32 }),
  },
  strict,
);
export type VendorDirectoryEntry = Static<typeof VendorDirectoryEntrySchema>;
