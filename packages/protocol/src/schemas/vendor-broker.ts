import { type Static, Type } from '@sinclair/typebox';
import { HolderCertificateSchema, ReleaseStatementSchema, TouchstoneSchema } from './documents.ts';
import {
  ChainIdSchema,
  ChainPointSchema,
  CurrencySchema,
  EpochSchema,
  ErrorCodeSchema,
  IndexSchema,
  MinorUnitsSchema,
  PaywordSchema,
  SignedMinorUnitsSchema,
  UrlSchema,
  VendorIdSchema,
} from './primitives.ts';

const strict = { additionalProperties: false } as const;

/** The most items one redemption request may carry. */
export const MAX_REDEMPTION_ITEMS = 1000;

/** §5 claim: the holder a new holder must obtain a release from. */
export const PreviousHolderSchema = Type.Object(
  { vendorId: VendorIdSchema, releaseUrl: UrlSchema, epoch: EpochSchema },
  strict,
);
export type PreviousHolder = Static<typeof PreviousHolderSchema>;

/**
 * §5 v1.1: `POST {api}/chains/{chainId}/claim` body. `proof` is the payword the customer presented; the broker
 * opens a new epoch only when it lies on the chain strictly above every point the broker knows. The current
 * holder renewing its own lease may omit it.
 */
export const ClaimRequestSchema = Type.Object({ proof: Type.Optional(ChainPointSchema) }, strict);
export type ClaimRequest = Static<typeof ClaimRequestSchema>;

/** §5: `POST {api}/chains/{chainId}/claim` response. */
export const ClaimResponseSchema = Type.Object(
  {
    touchstone: TouchstoneSchema,
    holder: HolderCertificateSchema,
    previous: Type.Union([Type.Null(), PreviousHolderSchema]),
    start: Type.Union([Type.Null(), ChainPointSchema]),
  },
  strict,
);
export type ClaimResponse = Static<typeof ClaimResponseSchema>;

/** §5: `POST {api}/chains/{chainId}/checkpoint` body. */
export const CheckpointRequestSchema = Type.Object(
  {
    epoch: EpochSchema,
    index: IndexSchema,
    payword: PaywordSchema,
    /** v1.1: the previous holder's release this epoch started from, reported at once (§5). */
    release: Type.Optional(ReleaseStatementSchema),
  },
  strict,
);
export type CheckpointRequest = Static<typeof CheckpointRequestSchema>;

/** §5: checkpoint response. The renewed certificate is wrapped as `{ "holder": cert }`, like the claim response. */
export const CheckpointResponseSchema = Type.Object({ holder: HolderCertificateSchema }, strict);
export type CheckpointResponse = Static<typeof CheckpointResponseSchema>;

/** §5: one range a vendor redeems. */
export const RedemptionItemSchema = Type.Object(
  {
    chainId: ChainIdSchema,
    epoch: EpochSchema,
    from: Type.Object(
      { index: IndexSchema, payword: PaywordSchema, release: Type.Optional(ReleaseStatementSchema) },
      strict,
    ),
    /** v1.1: for a superseded epoch, the redeemer's own release may end it (`to` is then the release's point). */
    to: Type.Object(
      { index: IndexSchema, payword: PaywordSchema, release: Type.Optional(ReleaseStatementSchema) },
      strict,
    ),
  },
  strict,
);
export type RedemptionItem = Static<typeof RedemptionItemSchema>;

/** §5: `POST {api}/redemptions` body. */
export const RedemptionRequestSchema = Type.Object(
  { items: Type.Array(RedemptionItemSchema, { minItems: 1, maxItems: MAX_REDEMPTION_ITEMS }) },
  strict,
);
export type RedemptionRequest = Static<typeof RedemptionRequestSchema>;

/** §5: the outcome of one item. `code` is set when rejected (overlap, invalid_payword, not_holder, …). */
export const RedemptionItemResultSchema = Type.Object(
  {
    chainId: ChainIdSchema,
    epoch: EpochSchema,
    status: Type.Union([Type.Literal('accepted'), Type.Literal('rejected')]),
    amount: MinorUnitsSchema,
    fee: MinorUnitsSchema,
    code: Type.Optional(ErrorCodeSchema),
  },
  strict,
);
export type RedemptionItemResult = Static<typeof RedemptionItemResultSchema>;

/** §5: redemption response. */
export const RedemptionResponseSchema = Type.Object(
  {
    redemptionId: Type.String({ minLength: 1, maxLength: 128 }),
    items: Type.Array(RedemptionItemResultSchema, { maxItems: MAX_REDEMPTION_ITEMS }),
    credited: MinorUnitsSchema,
  },
  strict,
);
export type RedemptionResponse = Static<typeof RedemptionResponseSchema>;

/** §5: `GET {api}/vendor/account`. `balance` is signed: a clawback may take it below zero. */
export const VendorAccountSchema = Type.Object(
  {
    vendorId: VendorIdSchema,
    balance: SignedMinorUnitsSchema,
    pending: MinorUnitsSchema,
    paidOut: MinorUnitsSchema,
    currency: CurrencySchema,
  },
  strict,
);
export type VendorAccount = Static<typeof VendorAccountSchema>;

/** §6: `POST {releaseUrl}` body. */
export const ReleaseRequestSchema = Type.Object({ holder: HolderCertificateSchema }, strict);
export type ReleaseRequest = Static<typeof ReleaseRequestSchema>;

/** §6: release response. */
export const ReleaseResponseSchema = Type.Object({ release: ReleaseStatementSchema }, strict);
export type ReleaseResponse = Static<typeof ReleaseResponseSchema>;
