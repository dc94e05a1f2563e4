import { type Static, Type } from '@sinclair/typebox';
import { HolderCertificateSchema, TouchstoneSchema } from './documents.ts';
import { PreviousHolderSchema } from './vendor-broker.ts';
import {
  B64u32Schema,
  ChainIdSchema,
  ChainLengthSchema,
  ChainPointSchema,
  EpochSchema,
  IndexSchema,
  MinorUnitsSchema,
  PaywordSchema,
  TimestampSchema,
  UnitSchema,
  VendorIdSchema,
} from './primitives.ts';

const strict = { additionalProperties: false } as const;

/** A deliberately loose email shape: something@something.tld, no whitespace, at most 254 characters. */
export const EmailSchema = Type.String({ maxLength: 254, pattern: '^[^\\s@]{1,64}@[^\\s@]+\\.[^\\s@]+$' });

/** §7: `POST {api}/customers`. */
export const CreateCustomerRequestSchema = Type.Object(
  { email: EmailSchema, password: Type.String({ minLength: 8, maxLength: 200 }) },
  strict,
);
export type CreateCustomerRequest = Static<typeof CreateCustomerRequestSchema>;

/** §7: `POST {api}/sessions`. The password is only bounded: login must not reveal the signup rules. */
export const CreateSessionRequestSchema = Type.Object(
  { email: EmailSchema, password: Type.String({ minLength: 1, maxLength: 200 }) },
  strict,
);
export type CreateSessionRequest = Static<typeof CreateSessionRequestSchema>;

/** §7: session response. */
export const SessionResponseSchema = Type.Object({ token: Type.String({ minLength: 1, maxLength: 512 }) }, strict);
export type SessionResponse = Static<typeof SessionResponseSchema>;

/** Card details as the sandbox bank takes them. */
export const CardSchema = Type.Object(
  {
    number: Type.String({ pattern: '^[0-9][0-9 ]{0,22}$', maxLength: 23 }),
    expiry: Type.String({ pattern: '^(0[1-9]|1[0-2])/[0-9]{2}$' }),
    cvc: Type.String({ pattern: '^[0-9]{3,4}$' }),
  },
  strict,
);
export type Card = Static<typeof CardSchema>;

/**
 * §7: `POST {api}/coins`. `chainId` and `anchor` come both or neither (checked by the broker, not expressible
 * here without a union that gives worse error messages).
 */
export const BuyCoinRequestSchema = Type.Object(
  {
    amount: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
    unit: Type.Optional(UnitSchema),
    chainId: Type.Optional(ChainIdSchema),
    anchor: Type.Optional(B64u32Schema),
    payment: Type.Object({ card: CardSchema }, strict),
  },
  strict,
);
export type BuyCoinRequest = Static<typeof BuyCoinRequestSchema>;

/** §7: buy response; `seed` only when the broker made the chain. */
export const BuyCoinResponseSchema = Type.Object(
  { chainId: ChainIdSchema, touchstone: TouchstoneSchema, seed: Type.Optional(B64u32Schema) },
  strict,
);
export type BuyCoinResponse = Static<typeof BuyCoinResponseSchema>;

export const CoinStatusSchema = Type.Union([
  Type.Literal('active'),
  Type.Literal('exhausted'),
  Type.Literal('expired'),
  Type.Literal('refunded'),
]);
export type CoinStatus = Static<typeof CoinStatusSchema>;

/** §7: one of the customer's chains as the broker knows it. */
export const CoinSummarySchema = Type.Object(
  {
    chainId: ChainIdSchema,
    value: MinorUnitsSchema,
    unit: UnitSchema,
    length: ChainLengthSchema,
    spentIndex: IndexSchema,
    holder: Type.Union([VendorIdSchema, Type.Null()]),
    status: CoinStatusSchema,
    issuedAt: TimestampSchema,
    expiresAt: TimestampSchema,
    remaining: MinorUnitsSchema,
  },
  strict,
);
export type CoinSummary = Static<typeof CoinSummarySchema>;

/** §7: `GET {api}/coins`. */
export const CoinListSchema = Type.Object({ coins: Type.Array(CoinSummarySchema) }, strict);
export type CoinList = Static<typeof CoinListSchema>;

/** §7: one entry of the customer's history. */
export const HistoryEventSchema = Type.Object(
  {
    kind: Type.Union([Type.Literal('purchase'), Type.Literal('spend'), Type.Literal('refund')]),
    at: TimestampSchema,
    chainId: ChainIdSchema,
    amount: MinorUnitsSchema,
    vendorId: Type.Optional(VendorIdSchema),
  },
  strict,
);
export type HistoryEvent = Static<typeof HistoryEventSchema>;

/** §7: `GET {api}/history`. */
export const HistorySchema = Type.Object({ events: Type.Array(HistoryEventSchema) }, strict);
export type History = Static<typeof HistorySchema>;

/** §7: `POST {api}/coins/{chainId}/refund`. */
export const RefundResponseSchema = Type.Object(
  { chainId: ChainIdSchema, refunded: MinorUnitsSchema, releasedIndex: IndexSchema },
  strict,
);
export type RefundResponse = Static<typeof RefundResponseSchema>;

/**
 * §7 v1.1: an allowance. The vendor may spend w_j for every j ≤ `index` (it derives them by hashing down from
 * `payword`), until `expiresAt`; it never holds the seed, so the most it can take is `index` − the chain's point.
 */
export const AllowanceSchema = Type.Object(
  { index: IndexSchema, payword: PaywordSchema, expiresAt: TimestampSchema },
  strict,
);
export type Allowance = Static<typeof AllowanceSchema>;

/**
 * Limits the customer set that the vendor applies itself (the broker enforces the caps through the allowances it
 * grants): pay without asking up to `autoPayMaxMinor` per article; above it the vendor asks first.
 */
export const ConnectionLimitsSchema = Type.Object({ autoPayMaxMinor: MinorUnitsSchema }, strict);
export type ConnectionLimits = Static<typeof ConnectionLimitsSchema>;

/** §7 v1.1: `POST {api}/wallet-grants/{code}` → a connection: a chain claimed for the vendor and an allowance on it. */
export const ConnectionGrantResponseSchema = Type.Object(
  {
    chainId: ChainIdSchema,
    touchstone: TouchstoneSchema,
    holder: HolderCertificateSchema,
    previous: Type.Union([Type.Null(), PreviousHolderSchema]),
    start: Type.Union([Type.Null(), ChainPointSchema]),
    allowance: AllowanceSchema,
    refreshToken: Type.String({ minLength: 16, maxLength: 128 }),
    /** The customer's NetPay balance, after this allowance. */
    balance: MinorUnitsSchema,
    limits: ConnectionLimitsSchema,
  },
  strict,
);
export type ConnectionGrantResponse = Static<typeof ConnectionGrantResponseSchema>;

/** What the vendor sold since its last report, for the customer's history (the vendor never learns who). */
export const SpendNoteSchema = Type.Object(
  {
    index: IndexSchema,
    amount: MinorUnitsSchema,
    description: Type.String({ minLength: 1, maxLength: 120 }),
  },
  strict,
);
export type SpendNote = Static<typeof SpendNoteSchema>;

/** §7 v1.1: `POST {api}/allowances` (vendor-authenticated): the next allowance of a connection. */
export const AllowanceRequestSchema = Type.Object(
  {
    refreshToken: Type.String({ minLength: 16, maxLength: 128 }),
    chainId: ChainIdSchema,
    epoch: EpochSchema,
    spent: ChainPointSchema,
    notes: Type.Optional(Type.Array(SpendNoteSchema, { maxItems: 100 })),
  },
  strict,
);
export type AllowanceRequest = Static<typeof AllowanceRequestSchema>;

/**
 * §7 v1.1: the next allowance, possibly on a new chain of the same connection (then `holder` is the vendor's
 * certificate for it and the old chain is finished at `spent`).
 */
export const AllowanceResponseSchema = Type.Object(
  {
    chainId: ChainIdSchema,
    touchstone: TouchstoneSchema,
    holder: Type.Optional(HolderCertificateSchema),
    allowance: AllowanceSchema,
    balance: MinorUnitsSchema,
    limits: ConnectionLimitsSchema,
  },
  strict,
);
export type AllowanceResponse = Static<typeof AllowanceResponseSchema>;
