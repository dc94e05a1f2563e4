import { CurrencySchema } from '@netpay/protocol';
import { type Static, Type } from '@sinclair/typebox';

// The bank's own wire messages. They live here, not in the protocol package, because the bank stands in for a
// card gateway that the protocol does not specify. Card fields are only typed and bounded here: their format
// is checked by `card.ts`, so a malformed card is `invalid_card` naming the field rather than `bad_request`.

/** One charge, refund or payout: at least one cent, at most a billion dollars. */
export const AmountSchema = Type.Integer({ minimum: 1, maximum: 100_000_000_000 });
/** An account a payout lands in, e.g. `vendor:daily-planet`. */
export const DestinationSchema = Type.String({ pattern: '^[a-z0-9:_-]{1,100}$' });
export const ObjectIdSchema = Type.String({ pattern: '^[a-z]{2}_[A-Za-z0-9_-]{1,64}$' });

export const CardSchema = Type.Object(
  {
    number: Type.String({ maxLength: 32 }),
    expiry: Type.String({ maxLength: 16 }),
    cvc: Type.String({ maxLength: 8 }),
  },
  { additionalProperties: false },
);

/** A saved card's token as `POST /v1/cards` issues it; the bank keeps only its hash. */
export const CardTokenSchema = Type.String({ pattern: '^ct_[A-Za-z0-9_-]{43}$' });

/**
 * A charge names the card by its details (`card`) or by a saved card's token (`cardToken`): exactly one of them,
 * which `charges.ts` checks (a union here would give worse error messages).
 */
export const ChargeRequestSchema = Type.Object(
  {
    amount: AmountSchema,
    currency: CurrencySchema,
    card: Type.Optional(CardSchema),
    cardToken: Type.Optional(Type.String({ maxLength: 64 })),
    description: Type.Optional(Type.String({ maxLength: 200 })),
  },
  { additionalProperties: false },
);
export type ChargeRequest = Static<typeof ChargeRequestSchema>;

/** `POST /v1/cards`: save a card for later charges by token. */
export const SaveCardRequestSchema = Type.Object({ card: CardSchema }, { additionalProperties: false });
export type SaveCardRequest = Static<typeof SaveCardRequestSchema>;

export const RefundRequestSchema = Type.Object(
  { chargeId: ObjectIdSchema, amount: AmountSchema },
  { additionalProperties: false },
);
export type RefundRequest = Static<typeof RefundRequestSchema>;

export const PayoutRequestSchema = Type.Object(
  { amount: AmountSchema, currency: CurrencySchema, destination: DestinationSchema },
  { additionalProperties: false },
);
export type PayoutRequest = Static<typeof PayoutRequestSchema>;

export const FaultsRequestSchema = Type.Object(
  {
    latencyMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 60_000 })),
    failNext: Type.Optional(Type.Integer({ minimum: 0, maximum: 100 })),
  },
  { additionalProperties: false },
);
export type FaultsRequest = Static<typeof FaultsRequestSchema>;

export const CurrencyQuerySchema = Type.Object(
  { currency: Type.Optional(CurrencySchema) },
  { additionalProperties: false },
);

export const DestinationParamsSchema = Type.Object({ destination: DestinationSchema }, { additionalProperties: false });

/** `Idempotency-Key`: opaque, 1-200 visible ASCII characters. */
export const IdempotencyKeySchema = Type.String({ pattern: '^[\\x21-\\x7e]{1,200}$' });
