import { type Static, Type } from '@sinclair/typebox';
import {
  B64u32Schema,
  B64uSigSchema,
  ChainIdSchema,
  ChainLengthSchema,
  CurrencySchema,
  EpochSchema,
  IndexSchema,
  KeyIdSchema,
  PaywordSchema,
  PrevEpochSchema,
  PrevVendorIdSchema,
  TimestampSchema,
  UnitSchema,
  UrlSchema,
  VendorIdSchema,
} from './primitives.ts';

const strict = { additionalProperties: false } as const;

/** §2: the broker's statement that a chain was sold. */
export const TouchstoneSchema = Type.Object(
  {
    chainId: ChainIdSchema,
    anchor: B64u32Schema,
    length: ChainLengthSchema,
    unit: UnitSchema,
    currency: CurrencySchema,
    broker: UrlSchema,
    keyId: KeyIdSchema,
    issuedAt: TimestampSchema,
    expiresAt: TimestampSchema,
    sig: B64uSigSchema,
  },
  strict,
);
export type Touchstone = Static<typeof TouchstoneSchema>;

/** §2: the broker's statement that a vendor holds a chain for an epoch, until expiresAt. */
export const HolderCertificateSchema = Type.Object(
  {
    chainId: ChainIdSchema,
    epoch: EpochSchema,
    vendorId: VendorIdSchema,
    prevVendorId: PrevVendorIdSchema,
    prevEpoch: PrevEpochSchema,
    broker: UrlSchema,
    keyId: KeyIdSchema,
    issuedAt: TimestampSchema,
    expiresAt: TimestampSchema,
    sig: B64uSigSchema,
  },
  strict,
);
export type HolderCertificate = Static<typeof HolderCertificateSchema>;

/** §2: the previous holder's statement that it stopped accepting a chain at index. */
export const ReleaseStatementSchema = Type.Object(
  {
    chainId: ChainIdSchema,
    epoch: EpochSchema,
    vendorId: VendorIdSchema,
    index: IndexSchema,
    payword: PaywordSchema,
    toVendorId: VendorIdSchema,
    toEpoch: EpochSchema,
    keyId: KeyIdSchema,
    releasedAt: TimestampSchema,
    sig: B64uSigSchema,
  },
  strict,
);
export type ReleaseStatement = Static<typeof ReleaseStatementSchema>;

/** The fields of a touchstone before it is signed. */
export type TouchstoneFields = Omit<Touchstone, 'sig'>;
/** The fields of a holder certificate before it is signed. */
export type HolderCertificateFields = Omit<HolderCertificate, 'sig'>;
/** The fields of a release statement before it is signed. */
export type ReleaseStatementFields = Omit<ReleaseStatement, 'sig'>;
