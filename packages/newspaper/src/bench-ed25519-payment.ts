/**
 * The benchmark's first anchor: a payment scheme that signs every payment. Each request carries a small payment
 * message (payer key, payee, amount, validity, nonce) and its Ed25519 signature; the server checks the fields and
 * verifies the signature natively (node:crypto, OpenSSL), with each payer's key imported once and cached, the best
 * case for such a scheme. Replay tracking is left out, so this is the least such a vendor pays per request.
 */
import { createPublicKey, generateKeyPairSync, type KeyObject, randomBytes, sign, verify } from 'node:crypto';

/** The header the signed payment travels in: `<base64url message>.<base64url signature>`. */
export const ED25519_PAYMENT_HEADER = 'x-signed-payment';

/** What the route asks for. */
export interface Ed25519Requirements {
  payTo: string;
  amountMinor: number;
}

export const ED25519_REQUIREMENTS: Ed25519Requirements = { payTo: 'daily-planet', amountMinor: 1 };

interface PaymentMessage {
  /** The payer's raw public key, base64url. */
  payer: string;
  payTo: string;
  amountMinor: number;
  /** Unix seconds. */
  validBefore: number;
  nonce: string;
}

const MAX_HEADER_LENGTH = 1024;
const MAX_CACHED_KEYS = 10_000;

/**
 * `count` signed payment headers from a few payers, made ahead so the load generator does no cryptography.
 *
 * @example
 * const headers = makeEd25519Payments(1000);
 */
export function makeEd25519Payments(count: number, req: Ed25519Requirements = ED25519_REQUIREMENTS): string[] {
  const payers = Array.from({ length: 8 }, () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const jwk = publicKey.export({ format: 'jwk' });
    return { privateKey, payer: String(jwk.x) };
  });
  const validBefore = Math.floor(Date.now() / 1000) + 86_400;
  const headers: string[] = [];
  for (let i = 0; i < count; i++) {
    const { privateKey, payer } = payers[i % payers.length] as (typeof payers)[number];
    const message: PaymentMessage = {
      payer,
      payTo: req.payTo,
      amountMinor: req.amountMinor,
      validBefore,
      nonce: randomBytes(16).toString('base64url'),
    };
    const bytes = Buffer.from(JSON.stringify(message));
    headers.push(`${bytes.toString('base64url')}.${sign(null, bytes, privateKey).toString('base64url')}`);
  }
  return headers;
}

/** Why a signed payment was refused, or `ok`. */
export type Ed25519Verdict = 'ok' | 'malformed' | 'wrong_payment' | 'expired' | 'bad_signature';

/**
 * A verifier with its own cache of imported payer keys (oldest dropped first beyond a bound).
 *
 * @example
 * const verify = ed25519PaymentVerifier();
 * verify(request.headers['x-signed-payment']); // 'ok'
 */
export function ed25519PaymentVerifier(
  req: Ed25519Requirements = ED25519_REQUIREMENTS,
  nowSeconds: () => number = () => Date.now() / 1000,
): (header: string | undefined) => Ed25519Verdict {
  const keys = new Map<string, KeyObject>();
  const keyOf = (payer: string): KeyObject => {
    let key = keys.get(payer);
    if (!key) {
      key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: payer }, format: 'jwk' });
      if (keys.size >= MAX_CACHED_KEYS) keys.delete(keys.keys().next().value as string);
      keys.set(payer, key);
    }
    return key;
  };
  return (header) => {
    if (header === undefined || header.length > MAX_HEADER_LENGTH) return 'malformed';
    const dot = header.indexOf('.');
    if (dot < 0) return 'malformed';
    const bytes = Buffer.from(header.slice(0, dot), 'base64url');
    const signature = Buffer.from(header.slice(dot + 1), 'base64url');
    let message: PaymentMessage;
    try {
      message = JSON.parse(bytes.toString('utf8')) as PaymentMessage;
    } catch {
      return 'malformed';
    }
    if (typeof message?.payer !== 'string' || message.payer.length !== 43 || signature.length !== 64) {
      return 'malformed';
    }
    if (message.payTo !== req.payTo || !(message.amountMinor >= req.amountMinor)) return 'wrong_payment';
    if (!(message.validBefore > nowSeconds())) return 'expired';
    try {
      return verify(null, bytes, keyOf(message.payer), signature) ? 'ok' : 'bad_signature';
    } catch {
      return 'bad_signature';
    }
  };
}
