/**
 * The benchmark's second anchor: what an x402-style payment costs the vendor that checks it. x402's "exact" scheme
 * on EVM chains sends, with every request, an EIP-3009 `TransferWithAuthorization` signed as EIP-712 typed data
 * with secp256k1; the server hashes the domain and the struct with Keccak-256, recovers the signer from the
 * signature and compares it with `from`, then checks the amount, the payee and the validity window. That is done
 * here the way x402's TypeScript packages do it (they recover through @noble/curves as well), with the domain
 * hashed per request as they do. Chain access (balance, nonce state, settlement) is left out, so the anchor is
 * the least such a vendor pays per request.
 */
import { randomBytes } from 'node:crypto';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { keccak_256 } from '@noble/hashes/sha3.js';

/** The asset and payee a route asks for: USDC on Base in x402's examples. */
export interface Eip712Requirements {
  /** EIP-712 domain of the token contract. */
  name: string;
  version: string;
  chainId: number;
  /** The token contract (`verifyingContract`), 0x-hex. */
  asset: string;
  /** The vendor's address, 0x-hex. */
  payTo: string;
  /** Atomic units of the token a request costs. */
  amount: bigint;
}

export const EIP712_REQUIREMENTS: Eip712Requirements = {
  name: 'USD Coin',
  version: '2',
  chainId: 8453,
  asset: '0x833589fcd6edb6e08f4c7c32d4f71b54bda02913',
  payTo: '0x209693bc6afc0c5328ba36faf03c514ef312287c',
  amount: 10_000n,
};

/** The header x402 sends its payment in. */
export const EIP712_PAYMENT_HEADER = 'x-payment';

interface Authorization {
  from: string;
  to: string;
  value: string;
  validAfter: string;
  validBefore: string;
  nonce: string;
}

interface PaymentPayload {
  x402Version: number;
  scheme: string;
  network: string;
  payload: { signature: string; authorization: Authorization };
}

const enc = new TextEncoder();
const DOMAIN_TYPE = keccak_256(
  enc.encode('EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)'),
);
const TRANSFER_TYPE = keccak_256(
  enc.encode(
    'TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)',
  ),
);
const HEX_ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const HEX_BYTES32 = /^0x[0-9a-fA-F]{64}$/;
const HEX_SIGNATURE = /^0x[0-9a-fA-F]{130}$/;
const DECIMAL = /^[0-9]{1,78}$/;
/** x402 refuses an authorization that expires within this many seconds (time to settle it). */
const SETTLE_MARGIN_SECONDS = 6n;
/** Bounds the header before any decoding, as every header of the project is. */
const MAX_HEADER_LENGTH = 2048;

function hexToBytes(hex: string): Uint8Array {
  return Uint8Array.from(Buffer.from(hex.slice(2), 'hex'));
}

function toHex(bytes: Uint8Array): string {
  return `0x${Buffer.from(bytes).toString('hex')}`;
}

/** One ABI word: an unsigned integer, big-endian in 32 bytes. */
function uint256(value: bigint): Uint8Array {
  if (value < 0n || value >= 1n << 256n) throw new Error('uint256 out of range');
  return Uint8Array.from(Buffer.from(value.toString(16).padStart(64, '0'), 'hex'));
}

/** One ABI word: an address, left-padded to 32 bytes. */
function address(hex: string): Uint8Array {
  const word = new Uint8Array(32);
  word.set(hexToBytes(hex), 12);
  return word;
}

function concat(parts: Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(parts));
}

/** The EIP-712 digest of a TransferWithAuthorization under the token's domain. */
export function transferDigest(req: Eip712Requirements, auth: Authorization): Uint8Array {
  const domain = keccak_256(
    concat([
      DOMAIN_TYPE,
      keccak_256(enc.encode(req.name)),
      keccak_256(enc.encode(req.version)),
      uint256(BigInt(req.chainId)),
      address(req.asset),
    ]),
  );
  const struct = keccak_256(
    concat([
      TRANSFER_TYPE,
      address(auth.from),
      address(auth.to),
      uint256(BigInt(auth.value)),
      uint256(BigInt(auth.validAfter)),
      uint256(BigInt(auth.validBefore)),
      hexToBytes(auth.nonce),
    ]),
  );
  return keccak_256(concat([Uint8Array.of(0x19, 0x01), domain, struct]));
}

/** An Ethereum address: the last 20 bytes of the Keccak-256 of the uncompressed public key without its 0x04. */
function addressOf(uncompressed: Uint8Array): string {
  return toHex(keccak_256(uncompressed.subarray(1)).subarray(12));
}

/**
 * `count` X-PAYMENT headers signed by a few payers, made ahead so the load generator does no cryptography.
 *
 * @example
 * const headers = makeEip712Payments(1000);
 */
export function makeEip712Payments(count: number, req: Eip712Requirements = EIP712_REQUIREMENTS): string[] {
  const payers = Array.from({ length: 8 }, () => {
    const secret = secp256k1.utils.randomSecretKey();
    return { secret, address: addressOf(secp256k1.getPublicKey(secret, false)) };
  });
  const now = BigInt(Math.floor(Date.now() / 1000));
  const headers: string[] = [];
  for (let i = 0; i < count; i++) {
    const payer = payers[i % payers.length] as (typeof payers)[number];
    const authorization: Authorization = {
      from: payer.address,
      to: req.payTo,
      value: req.amount.toString(),
      validAfter: (now - 600n).toString(),
      validBefore: (now + 86_400n).toString(),
      nonce: toHex(randomBytes(32)),
    };
    // 'recovered' is the recovery id then r and s; Ethereum writes r, s, then v = 27 + recovery id.
    const signed = secp256k1.sign(transferDigest(req, authorization), payer.secret, {
      prehash: false,
      format: 'recovered',
    });
    const signature = concat([signed.subarray(1), Uint8Array.of(27 + (signed[0] as number))]);
    const payload: PaymentPayload = {
      x402Version: 1,
      scheme: 'exact',
      network: 'base',
      payload: { signature: toHex(signature), authorization },
    };
    headers.push(Buffer.from(JSON.stringify(payload)).toString('base64'));
  }
  return headers;
}

/** Why an X-PAYMENT header was refused, or `ok`. */
export type Eip712Verdict = 'ok' | 'malformed' | 'wrong_payment' | 'expired' | 'bad_signature';

function isAuthorization(a: unknown): a is Authorization {
  if (typeof a !== 'object' || a === null) return false;
  const o = a as Record<string, unknown>;
  return (
    typeof o.from === 'string' &&
    HEX_ADDRESS.test(o.from) &&
    typeof o.to === 'string' &&
    HEX_ADDRESS.test(o.to) &&
    typeof o.nonce === 'string' &&
    HEX_BYTES32.test(o.nonce) &&
    [o.value, o.validAfter, o.validBefore].every((v) => typeof v === 'string' && DECIMAL.test(v))
  );
}

/**
 * Checks an X-PAYMENT header as an x402 server does before settling: shape, scheme, payee, amount, validity
 * window, then the EIP-712 signature recovered to `from`.
 *
 * @example
 * verifyEip712Payment(headers[0]); // 'ok'
 */
export function verifyEip712Payment(
  header: string | undefined,
  req: Eip712Requirements = EIP712_REQUIREMENTS,
  nowSeconds: bigint = BigInt(Math.floor(Date.now() / 1000)),
): Eip712Verdict {
  if (header === undefined || header.length > MAX_HEADER_LENGTH) return 'malformed';
  let payment: PaymentPayload;
  try {
    payment = JSON.parse(Buffer.from(header, 'base64').toString('utf8')) as PaymentPayload;
  } catch {
    return 'malformed';
  }
  const auth = payment?.payload?.authorization;
  const signature = payment?.payload?.signature;
  if (payment.scheme !== 'exact' || !isAuthorization(auth) || typeof signature !== 'string') return 'malformed';
  if (!HEX_SIGNATURE.test(signature)) return 'malformed';
  if (auth.to.toLowerCase() !== req.payTo.toLowerCase() || BigInt(auth.value) < req.amount) return 'wrong_payment';
  if (BigInt(auth.validAfter) > nowSeconds || BigInt(auth.validBefore) < nowSeconds + SETTLE_MARGIN_SECONDS) {
    return 'expired';
  }
  const bytes = hexToBytes(signature);
  const v = bytes[64] as number;
  if (v !== 27 && v !== 28) return 'bad_signature';
  try {
    const recovered = secp256k1.Signature.fromBytes(concat([Uint8Array.of(v - 27), bytes.subarray(0, 64)]), 'recovered')
      .recoverPublicKey(transferDigest(req, auth))
      .toBytes(false);
    return addressOf(recovered) === auth.from.toLowerCase() ? 'ok' : 'bad_signature';
  } catch {
    return 'bad_signature';
  }
}
