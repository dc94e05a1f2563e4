import { b64uDecode, b64uEncode, utf8 } from './encoding.ts';
import { ED25519_SIGNATURE_LENGTH, signBytes, verifyBytes } from './ed25519.ts';
import { ProtocolError } from './error-codes.ts';
import type {
  HolderCertificate,
  HolderCertificateFields,
  ReleaseStatement,
  ReleaseStatementFields,
  Touchstone,
  TouchstoneFields,
} from './schemas/documents.ts';

type FieldKind = 'string' | 'integer';

/** How one kind of signed document is turned into bytes (§2). */
export interface DocumentLayout {
  readonly typeLine: string;
  readonly fields: readonly (readonly [name: string, kind: FieldKind])[];
}

/** §2 field order for each signed document; the order is part of the signature. */
export const TOUCHSTONE_LAYOUT: DocumentLayout = {
  typeLine: 'netpay/touchstone/v1',
  fields: [
    ['chainId', 'string'],
    ['anchor', 'string'],
    ['length', 'integer'],
    ['unit', 'integer'],
    ['currency', 'string'],
    ['broker', 'string'],
    ['keyId', 'string'],
    ['issuedAt', 'string'],
    ['expiresAt', 'string'],
  ],
};

export const HOLDER_LAYOUT: DocumentLayout = {
  typeLine: 'netpay/holder/v1',
  fields: [
    ['chainId', 'string'],
    ['epoch', 'integer'],
    ['vendorId', 'string'],
    ['prevVendorId', 'string'],
    ['prevEpoch', 'integer'],
    ['broker', 'string'],
    ['keyId', 'string'],
    ['issuedAt', 'string'],
    ['expiresAt', 'string'],
  ],
};

export const RELEASE_LAYOUT: DocumentLayout = {
  typeLine: 'netpay/release/v1',
  fields: [
    ['chainId', 'string'],
    ['epoch', 'integer'],
    ['vendorId', 'string'],
    ['index', 'integer'],
    ['payword', 'string'],
    ['toVendorId', 'string'],
    ['toEpoch', 'integer'],
    ['keyId', 'string'],
    ['releasedAt', 'string'],
  ],
};

/**
 * The text that is signed for a document: the type line and the fields in layout order, joined by "\n".
 * Throws rather than rendering anything ambiguous (a "\n" inside a field would let two documents share bytes).
 *
 * @throws ProtocolError('bad_request')
 * @example
 * signedText(TOUCHSTONE_LAYOUT, touchstone); // 'netpay/touchstone/v1\n-o29…'
 */
export function signedText(layout: DocumentLayout, doc: object): string {
  if (typeof doc !== 'object' || doc === null) throw new ProtocolError('bad_request', 'document must be an object');
  const record = doc as Record<string, unknown>;
  const lines = [layout.typeLine];
  for (const [name, kind] of layout.fields) {
    const value = record[name];
    if (kind === 'integer') {
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
        throw new ProtocolError('bad_request', `${name} must be a non-negative safe integer`);
      }
      lines.push(String(value));
    } else {
      if (typeof value !== 'string') throw new ProtocolError('bad_request', `${name} must be a string`);
      if (value.includes('\n')) throw new ProtocolError('bad_request', `${name} must not contain a newline`);
      lines.push(value);
    }
  }
  return lines.join('\n');
}

function sign<T extends object>(layout: DocumentLayout, fields: T, privateSeed: Uint8Array): T & { sig: string } {
  const sig = b64uEncode(signBytes(utf8(signedText(layout, fields)), privateSeed));
  const out: Record<string, unknown> = {};
  // Copy only the layout's fields so a stray property (or an old sig) never rides along with a fresh signature.
  for (const [name] of layout.fields) out[name] = (fields as Record<string, unknown>)[name];
  out.sig = sig;
  return out as T & { sig: string };
}

function verify(layout: DocumentLayout, doc: unknown, publicKey: Uint8Array): boolean {
  try {
    if (typeof doc !== 'object' || doc === null) return false;
    const sig = b64uDecode((doc as { sig?: unknown }).sig as string, ED25519_SIGNATURE_LENGTH);
    return verifyBytes(sig, utf8(signedText(layout, doc)), publicKey);
  } catch {
    return false;
  }
}

/**
 * The exact signed text of a touchstone (sig, if present, is ignored).
 *
 * @example
 * touchstoneSignedBytes(t); // 'netpay/touchstone/v1\n<chainId>\n<anchor>\n16\n1\nNZD\n…'
 */
export function touchstoneSignedBytes(doc: TouchstoneFields): string {
  return signedText(TOUCHSTONE_LAYOUT, doc);
}

/**
 * The exact signed text of a holder certificate.
 *
 * @example
 * holderSignedBytes(cert); // 'netpay/holder/v1\n…'
 */
export function holderSignedBytes(doc: HolderCertificateFields): string {
  return signedText(HOLDER_LAYOUT, doc);
}

/**
 * The exact signed text of a release statement.
 *
 * @example
 * releaseSignedBytes(release); // 'netpay/release/v1\n…'
 */
export function releaseSignedBytes(doc: ReleaseStatementFields): string {
  return signedText(RELEASE_LAYOUT, doc);
}

/**
 * Signs a touchstone with the broker's key.
 *
 * @throws ProtocolError('bad_request') if a field contains "\n" or has the wrong type
 * @example
 * const touchstone = signTouchstone({ chainId, anchor, length: 100, unit: 1, currency: 'NZD', broker, keyId: 'bk1', issuedAt, expiresAt }, seed);
 */
export function signTouchstone(fields: TouchstoneFields, privateSeed: Uint8Array): Touchstone {
  return sign(TOUCHSTONE_LAYOUT, fields, privateSeed);
}

/**
 * Checks a touchstone's signature. Never throws; false on any malformed field or signature.
 *
 * @example
 * verifyTouchstone(touchstone, findKey(discovery.keys, touchstone.keyId)!);
 */
export function verifyTouchstone(doc: Touchstone, publicKey: Uint8Array): boolean {
  return verify(TOUCHSTONE_LAYOUT, doc, publicKey);
}

/**
 * Signs a holder certificate with the broker's key.
 *
 * @throws ProtocolError('bad_request') if a field contains "\n" or has the wrong type
 * @example
 * const holder = signHolderCertificate({ chainId, epoch: 1, vendorId, prevVendorId: '', prevEpoch: 0, broker, keyId, issuedAt, expiresAt }, seed);
 */
export function signHolderCertificate(fields: HolderCertificateFields, privateSeed: Uint8Array): HolderCertificate {
  return sign(HOLDER_LAYOUT, fields, privateSeed);
}

/**
 * Checks a holder certificate's signature. Never throws.
 *
 * @example
 * verifyHolderCertificate(req.holder, brokerKey);
 */
export function verifyHolderCertificate(doc: HolderCertificate, publicKey: Uint8Array): boolean {
  return verify(HOLDER_LAYOUT, doc, publicKey);
}

/**
 * Signs a release statement with the releasing vendor's key.
 *
 * @throws ProtocolError('bad_request') if a field contains "\n" or has the wrong type
 * @example
 * const release = signRelease({ chainId, epoch, vendorId, index, payword, toVendorId, toEpoch, keyId, releasedAt }, seed);
 */
export function signRelease(fields: ReleaseStatementFields, privateSeed: Uint8Array): ReleaseStatement {
  return sign(RELEASE_LAYOUT, fields, privateSeed);
}

/**
 * Checks a release statement's signature with the releasing vendor's key. Never throws.
 *
 * @example
 * verifyRelease(res.release, findKey(directoryEntry.keys, res.release.keyId)!);
 */
export function verifyRelease(doc: ReleaseStatement, publicKey: Uint8Array): boolean {
  return verify(RELEASE_LAYOUT, doc, publicKey);
}
