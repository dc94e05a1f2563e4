import { sha256 } from './sha256.ts';
import { b64uDecode, b64uEncode, randomBytes } from './encoding.ts';
import { ProtocolError } from './error-codes.ts';

/** The longest chain any party accepts; bounds the hashing work one verification can demand. */
export const MAX_CHAIN_LENGTH = 1_000_000;

/** Byte length of a chainId. */
export const CHAIN_ID_LENGTH = 16;
/** Byte length of a payword, anchor or seed. */
export const PAYWORD_LENGTH = 32;

const DOMAIN = new Uint8Array([0x4e, 0x50, 0x31]); // "NP1"
const STEP_INPUT_LENGTH = 3 + CHAIN_ID_LENGTH + 4 + PAYWORD_LENGTH;
const MAX_UINT32 = 0xffff_ffff;

function writeStepInput(buf: Uint8Array, chainId: Uint8Array, index: number, next: Uint8Array): void {
  buf.set(DOMAIN, 0);
  buf.set(chainId, 3);
  buf[19] = (index >>> 24) & 0xff;
  buf[20] = (index >>> 16) & 0xff;
  buf[21] = (index >>> 8) & 0xff;
  buf[22] = index & 0xff;
  buf.set(next, 23);
}

function checkStepArgs(chainId: Uint8Array, index: number, next: Uint8Array): void {
  if (!(chainId instanceof Uint8Array) || chainId.length !== CHAIN_ID_LENGTH) {
    throw new ProtocolError('bad_request', 'chainId must be 16 bytes');
  }
  if (!(next instanceof Uint8Array) || next.length !== PAYWORD_LENGTH) {
    throw new ProtocolError('bad_request', 'payword must be 32 bytes');
  }
  if (!Number.isInteger(index) || index < 0 || index > MAX_UINT32) {
    throw new ProtocolError('bad_request', 'index must be a uint32');
  }
}

/**
 * The 55 bytes hashed to make w_index: "NP1" ‖ chainId ‖ uint32be(index) ‖ w_{index+1}. Exposed for test vectors.
 *
 * @example
 * hexEncode(stepInput(chainId, 15, seed)); // '4e5031…'
 */
export function stepInput(chainId: Uint8Array, index: number, next: Uint8Array): Uint8Array {
  checkStepArgs(chainId, index, next);
  const buf = new Uint8Array(STEP_INPUT_LENGTH);
  writeStepInput(buf, chainId, index, next);
  return buf;
}

/**
 * One hash step down the chain: w_index = SHA-256("NP1" ‖ chainId ‖ uint32be(index) ‖ w_{index+1}).
 *
 * @throws ProtocolError('bad_request') on wrong byte lengths or an index that is not a uint32
 * @example
 * const w15 = stepPayword(chainId, 15, seed); // seed = w_16 for a chain of length 16
 */
export function stepPayword(chainId: Uint8Array, index: number, next: Uint8Array): Uint8Array {
  return sha256(stepInput(chainId, index, next));
}

function checkLength(length: number): void {
  if (!Number.isInteger(length) || length < 1 || length > MAX_CHAIN_LENGTH) {
    throw new ProtocolError('bad_request', `chain length must be an integer in 1..${MAX_CHAIN_LENGTH}`);
  }
}

/**
 * All paywords w_0 … w_length (length + 1 entries; w_0 is the anchor, w_length the seed).
 * The entries are views into one buffer, so a long chain costs 32 bytes a payword.
 *
 * @throws ProtocolError('bad_request') on bad lengths
 * @example
 * const words = generateChain(chainId, seed, 16);
 * const anchor = words[0];
 */
export function generateChain(chainId: Uint8Array, seed: Uint8Array, length: number): Uint8Array[] {
  checkLength(length);
  checkStepArgs(chainId, 0, seed);
  const flat = new Uint8Array((length + 1) * PAYWORD_LENGTH);
  flat.set(seed, length * PAYWORD_LENGTH);
  const input = new Uint8Array(STEP_INPUT_LENGTH);
  for (let i = length - 1; i >= 0; i--) {
    const next = flat.subarray((i + 1) * PAYWORD_LENGTH, (i + 2) * PAYWORD_LENGTH);
    writeStepInput(input, chainId, i, next);
    flat.set(sha256(input), i * PAYWORD_LENGTH);
  }
  const words: Uint8Array[] = new Array(length + 1);
  for (let i = 0; i <= length; i++) words[i] = flat.subarray(i * PAYWORD_LENGTH, (i + 1) * PAYWORD_LENGTH);
  return words;
}

/**
 * w_index of the chain, hashing down from the seed without keeping the rest (O(length − index) time, O(1) memory).
 *
 * @example
 * const anchor = paywordAt(chainId, seed, 16, 0);
 */
export function paywordAt(chainId: Uint8Array, seed: Uint8Array, length: number, index: number): Uint8Array {
  checkLength(length);
  checkStepArgs(chainId, 0, seed);
  if (!Number.isInteger(index) || index < 0 || index > length) {
    throw new ProtocolError('bad_request', `index must be an integer in 0..${length}`);
  }
  return hashDown(chainId, seed, length, index);
}

/** Hashes w_from down to w_to (from ≥ to); arguments already checked. */
function hashDown(chainId: Uint8Array, word: Uint8Array, from: number, to: number): Uint8Array {
  const input = new Uint8Array(STEP_INPUT_LENGTH);
  let current = word;
  for (let i = from - 1; i >= to; i--) {
    writeStepInput(input, chainId, i, current);
    current = sha256(input);
  }
  return current;
}

/**
 * Compares two byte arrays in time independent of where they differ, so a verifier leaks nothing about how
 * close a forged payword came. (Length is not secret here.)
 *
 * @example
 * constantTimeEqual(a, b); // true iff same bytes
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] as number) ^ (b[i] as number);
  return diff === 0;
}

/** A point on a chain: w_index. */
export interface ChainPoint {
  index: number;
  payword: Uint8Array;
}

/** A point on a chain with the payword in base64url. */
export interface ChainPointB64 {
  index: number;
  payword: string;
}

export interface VerifyPaywordInput {
  chainId: Uint8Array;
  known: ChainPoint;
  presented: ChainPoint;
  /** Refuse to hash more than this many steps (default MAX_CHAIN_LENGTH). */
  maxSteps?: number;
}

function isIndex(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= MAX_CHAIN_LENGTH;
}

/**
 * The only proof of payment (§1): true iff presented.index > known.index and hashing presented.payword down
 * (presented.index − known.index) steps gives known.payword. Never throws: any malformed input is simply false.
 *
 * @example
 * verifyPayword({ chainId, known: { index: 0, payword: anchor }, presented: { index: 3, payword: w3 } }); // true
 */
export function verifyPayword(input: VerifyPaywordInput): boolean {
  try {
    const { chainId, known, presented } = input;
    const maxSteps = input.maxSteps ?? MAX_CHAIN_LENGTH;
    if (!(chainId instanceof Uint8Array) || chainId.length !== CHAIN_ID_LENGTH) return false;
    if (!isIndex(known.index) || !isIndex(presented.index)) return false;
    if (!(known.payword instanceof Uint8Array) || known.payword.length !== PAYWORD_LENGTH) return false;
    if (!(presented.payword instanceof Uint8Array) || presented.payword.length !== PAYWORD_LENGTH) return false;
    if (presented.index <= known.index) return false;
    if (presented.index - known.index > maxSteps) return false;
    const derived = hashDown(chainId, presented.payword, presented.index, known.index);
    return constantTimeEqual(derived, known.payword);
  } catch {
    return false;
  }
}

/**
 * `verifyPayword` on base64url values straight from the wire; false on any decoding error.
 *
 * @example
 * verifyPaywordB64({ chainId: h.chain, known: { index: 0, payword: t.anchor }, presented: { index: h.index, payword: h.payword } });
 */
export function verifyPaywordB64(input: {
  chainId: string;
  known: ChainPointB64;
  presented: ChainPointB64;
  maxSteps?: number;
}): boolean {
  try {
    const decoded: VerifyPaywordInput = {
      chainId: b64uDecode(input.chainId, CHAIN_ID_LENGTH),
      known: { index: input.known.index, payword: b64uDecode(input.known.payword, PAYWORD_LENGTH) },
      presented: { index: input.presented.index, payword: b64uDecode(input.presented.payword, PAYWORD_LENGTH) },
    };
    if (input.maxSteps !== undefined) decoded.maxSteps = input.maxSteps;
    return verifyPayword(decoded);
  } catch {
    return false;
  }
}

/**
 * A whole chain held by whoever knows its seed (the broker for hosted wallets, or a client wallet).
 * All paywords are computed once at construction, so spending is a lookup.
 *
 * @example
 * const chain = PaywordChain.generate(100);
 * const header = { chain: chain.chainIdB64, index: 1, payword: chain.b64(1) };
 */
export class PaywordChain {
  readonly chainId: Uint8Array;
  readonly seed: Uint8Array;
  readonly length: number;
  readonly #words: Uint8Array[];

  constructor(chainId: Uint8Array, seed: Uint8Array, length: number) {
    checkLength(length);
    checkStepArgs(chainId, 0, seed);
    this.chainId = chainId.slice();
    this.seed = seed.slice();
    this.length = length;
    this.#words = generateChain(this.chainId, this.seed, length);
  }

  /**
   * A chain with a fresh random chainId (16 bytes) and seed (32 bytes).
   *
   * @example
   * const chain = PaywordChain.generate(1000);
   */
  static generate(length: number): PaywordChain {
    return new PaywordChain(randomBytes(CHAIN_ID_LENGTH), randomBytes(PAYWORD_LENGTH), length);
  }

  /**
   * Rebuilds a chain from its base64url chainId and seed.
   *
   * @example
   * const chain = PaywordChain.fromB64(res.chainId, res.seed, res.touchstone.length);
   */
  static fromB64(chainId: string, seed: string, length: number): PaywordChain {
    return new PaywordChain(b64uDecode(chainId, CHAIN_ID_LENGTH), b64uDecode(seed, PAYWORD_LENGTH), length);
  }

  /** w_0. */
  get anchor(): Uint8Array {
    return this.payword(0);
  }

  /** w_0 in base64url. */
  get anchorB64(): string {
    return this.b64(0);
  }

  /** chainId in base64url. */
  get chainIdB64(): string {
    return b64uEncode(this.chainId);
  }

  /** seed in base64url. */
  get seedB64(): string {
    return b64uEncode(this.seed);
  }

  /** w_i (a copy, so callers cannot corrupt the chain). */
  payword(i: number): Uint8Array {
    if (!Number.isInteger(i) || i < 0 || i > this.length) {
      throw new ProtocolError('bad_request', `index must be an integer in 0..${this.length}`);
    }
    return (this.#words[i] as Uint8Array).slice();
  }

  /** w_i in base64url. */
  b64(i: number): string {
    return b64uEncode(this.payword(i));
  }
}
