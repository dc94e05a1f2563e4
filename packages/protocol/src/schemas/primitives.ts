import { type Static, Type } from '@sinclair/typebox';
import { ERROR_CODES, type ErrorCode } from '../error-codes.ts';
import { MAX_CHAIN_LENGTH } from '../payword-chain.ts';

// Base64url patterns pin the exact length and the canonical last character (unused trailing bits zero),
// so a schema-valid value always decodes and has exactly one text form.

/** 16 bytes in base64url (a chainId). */
export const B64u16Schema = Type.String({ pattern: '^[A-Za-z0-9_-]{21}[AQgw]$', description: '16 bytes, base64url' });
/** 32 bytes in base64url (a payword, anchor, seed or public key). */
export const B64u32Schema = Type.String({
  pattern: '^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$',
  description: '32 bytes, base64url',
});
/** 64 bytes in base64url (an Ed25519 signature). */
export const B64uSigSchema = Type.String({ pattern: '^[A-Za-z0-9_-]{85}[AQgw]$', description: 'Ed25519 signature' });

export const ChainIdSchema = B64u16Schema;
export const PaywordSchema = B64u32Schema;

/** A vendor identifier: a slug. */
export const VendorIdSchema = Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,63}$', maxLength: 64 });
export type VendorId = Static<typeof VendorIdSchema>;

/** A previous vendor: a slug, or "" for the first holder. */
export const PrevVendorIdSchema = Type.String({ pattern: '^([a-z0-9][a-z0-9-]{0,63})?$', maxLength: 64 });

/** A key identifier within a key set. */
export const KeyIdSchema = Type.String({ pattern: '^[A-Za-z0-9._-]{1,64}$' });

/** RFC 3339 UTC with seconds and Z, e.g. 2026-11-24T00:00:00Z. */
export const TimestampSchema = Type.String({
  pattern: '^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]Z$',
});
export type Timestamp = Static<typeof TimestampSchema>;

/** An absolute http(s) URL without whitespace, quotes or backslashes (it may travel in a quoted header value). */
export const UrlSchema = Type.String({ pattern: '^https?://[^\\s"\\\\]+$', maxLength: 2048 });

/** A non-negative amount in minor units. */
export const MinorUnitsSchema = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
/** A signed amount in minor units (a vendor balance may go negative after a clawback, §5). */
export const SignedMinorUnitsSchema = Type.Integer({
  minimum: -Number.MAX_SAFE_INTEGER,
  maximum: Number.MAX_SAFE_INTEGER,
});
/** The value of one payword in minor units. */
export const UnitSchema = Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER });
/** A position on a chain. */
export const IndexSchema = Type.Integer({ minimum: 0, maximum: MAX_CHAIN_LENGTH });
/** A chain length n. */
export const ChainLengthSchema = Type.Integer({ minimum: 1, maximum: MAX_CHAIN_LENGTH });
/** A holder epoch (1, 2, …). */
export const EpochSchema = Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER });
/** A previous epoch: 0 when there was none. */
export const PrevEpochSchema = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
/** ISO 4217 currency code. */
export const CurrencySchema = Type.String({ pattern: '^[A-Z]{3}$' });

/** Any registered error code. */
export const ErrorCodeSchema = Type.Unsafe<ErrorCode>(
  Type.Union((Object.keys(ERROR_CODES) as ErrorCode[]).map((code) => Type.Literal(code))),
);

/** A point on a chain on the wire. */
export const ChainPointSchema = Type.Object(
  { index: IndexSchema, payword: PaywordSchema },
  { additionalProperties: false },
);
export type ChainPointWire = Static<typeof ChainPointSchema>;
