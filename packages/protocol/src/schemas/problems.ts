import { type Static, Type } from '@sinclair/typebox';
import { CurrencySchema, IndexSchema, MinorUnitsSchema, UrlSchema, VendorIdSchema } from './primitives.ts';

// Problem bodies stay open (RFC 9457 extension members are the point), unlike every other message.

/** RFC 9457 problem details as NetPay sends them. */
export const ProblemSchema = Type.Object({
  type: Type.String({ maxLength: 200 }),
  title: Type.String({ maxLength: 500 }),
  status: Type.Integer({ minimum: 100, maximum: 599 }),
  code: Type.String({ pattern: '^[a-z][a-z0-9_]{0,63}$' }),
  detail: Type.Optional(Type.String({ maxLength: 2000 })),
  lastIndex: Type.Optional(IndexSchema),
});
export type ProblemBody = Static<typeof ProblemSchema>;

/** §4: the body of a 402 for an unpaid priced resource. */
export const PaymentRequiredProblemSchema = Type.Object({
  type: Type.Literal('urn:netpay:error:payment_required'),
  title: Type.String({ maxLength: 500 }),
  status: Type.Literal(402),
  code: Type.Literal('payment_required'),
  detail: Type.Optional(Type.String({ maxLength: 2000 })),
  price: MinorUnitsSchema,
  currency: CurrencySchema,
  vendor: VendorIdSchema,
  broker: UrlSchema,
  connect: UrlSchema,
});
export type PaymentRequiredProblem = Static<typeof PaymentRequiredProblemSchema>;
