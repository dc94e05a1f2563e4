// Generates packages/protocol/test/vectors.json: exact values for every computation of docs/PROTOCOL.md, made by
// this package's own code from fixed inputs, so any implementation (and this one after a change) can be checked
// against them without anything outside the repository.
//
//   npx tsx packages/protocol/scripts/generate-vectors.ts          writes the file
//   npx tsx packages/protocol/scripts/generate-vectors.ts --check  exits 1 when the committed file differs
//
// The inputs are derived from fixed labels (SHA-256 of a text), not from randomness, so regenerating gives the
// same bytes: Ed25519 signatures are deterministic. The test suite checks that it does (vectors.test.ts).
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { sha256 } from '@noble/hashes/sha2.js';
import {
  b64uEncode,
  feeFor,
  formatAuthorization,
  formatReceipt,
  formatWwwAuthenticate,
  generateChain,
  type HolderCertificateFields,
  hexEncode,
  holderSignedBytes,
  keyIdForPublicKey,
  MAX_CHAIN_LENGTH,
  MAX_HEADER_LENGTH,
  PROBLEM_CONTENT_TYPE,
  problemDetails,
  publicKeyFromSeed,
  type ReleaseStatementFields,
  releaseSignedBytes,
  signHolderCertificate,
  signRelease,
  signTouchstone,
  stepInput,
  type TouchstoneFields,
  touchstoneSignedBytes,
  utf8,
} from '../src/index.ts';

/** Where the vectors live, relative to this script. */
export const VECTORS_FILE = fileURLToPath(new URL('../test/vectors.json', import.meta.url));

/** 32 bytes fixed by a label: the same on every run and every machine. */
function fixedBytes(label: string): Uint8Array {
  return sha256(utf8(`netpay test vectors: ${label}`));
}

interface KeyVector {
  keyId: string;
  privateSeed: string;
  publicKey: string;
}

function key(label: string, keyId: string): { vector: KeyVector; seed: Uint8Array } {
  const seed = fixedBytes(`${label} signing key`);
  return {
    seed,
    vector: { keyId, privateSeed: b64uEncode(seed), publicKey: b64uEncode(publicKeyFromSeed(seed)) },
  };
}

/** A copy of `doc` with one field changed, keeping its (now wrong) signature. */
function tampered<T extends object>(doc: T, field: keyof T, value: unknown): T {
  return { ...doc, [field]: value };
}

/**
 * Every vector, built with this package's functions. The sections shared with the contract's own vector file
 * (chain, keys, touchstone, holderCerts, release, invalid) keep its shape, so one checker reads both.
 */
export function buildVectors(): Record<string, unknown> {
  const chainIdBytes = fixedBytes('chainId').slice(0, 16);
  const seedBytes = fixedBytes('seed');
  const length = 16;
  const words = generateChain(chainIdBytes, seedBytes, length);
  const paywords = words.map(b64uEncode);
  const chainId = b64uEncode(chainIdBytes);
  const at = (i: number) => paywords[i] as string;

  const broker = key('broker', 'bk1');
  const dailyPlanet = key('daily-planet', 'dp1');
  const theBugle = key('the-bugle', 'tb1');
  const brokerUrl = 'https://broker.example';

  const touchstoneFields: TouchstoneFields = {
    chainId,
    anchor: at(0),
    length,
    unit: 1,
    currency: 'NZD',
    broker: brokerUrl,
    keyId: 'bk1',
    issuedAt: '2026-11-24T00:00:00Z',
    expiresAt: '2027-11-24T00:00:00Z',
  };
  const touchstone = signTouchstone(touchstoneFields, broker.seed);

  const holderFields: HolderCertificateFields[] = [
    {
      chainId,
      epoch: 1,
      vendorId: 'daily-planet',
      prevVendorId: '',
      prevEpoch: 0,
      broker: brokerUrl,
      keyId: 'bk1',
      issuedAt: '2026-11-24T00:01:00Z',
      expiresAt: '2026-11-25T00:01:00Z',
    },
    {
      chainId,
      epoch: 2,
      vendorId: 'the-bugle',
      prevVendorId: 'daily-planet',
      prevEpoch: 1,
      broker: brokerUrl,
      keyId: 'bk1',
      issuedAt: '2026-11-24T00:05:00Z',
      expiresAt: '2026-11-25T00:05:00Z',
    },
  ];
  const holderCerts = holderFields.map((fields) => signHolderCertificate(fields, broker.seed));

  const releaseFields: ReleaseStatementFields = {
    chainId,
    epoch: 1,
    vendorId: 'daily-planet',
    index: 7,
    payword: at(7),
    toVendorId: 'the-bugle',
    toEpoch: 2,
    keyId: 'dp1',
    releasedAt: '2026-11-24T00:05:01Z',
  };
  const release = signRelease(releaseFields, dailyPlanet.seed);

  // A chain of another id with the same seed: its paywords must never verify on this chain.
  const otherChainId = fixedBytes('other chainId').slice(0, 16);
  const otherWords = generateChain(otherChainId, seedBytes, length).map(b64uEncode);

  const authorization = { chain: chainId, index: 3, payword: at(3) };
  const authorizationValue = formatAuthorization(authorization);
  const challenge = { realm: 'daily-planet', price: 5, currency: 'NZD', broker: brokerUrl };
  const receipt = { chain: chainId, index: 3, balance: 13 };

  const feeBps = 250;
  let runningGross = 0;
  const redemptions = [99, 1, 40, 400, 3].map((gross) => {
    const fee = feeFor(runningGross + gross, feeBps) - feeFor(runningGross, feeBps);
    runningGross += gross;
    return { gross, fee, totalGross: runningGross, totalFee: feeFor(runningGross, feeBps) };
  });

  return {
    description:
      'NetPay v1.1 test vectors, generated by packages/protocol/scripts/generate-vectors.ts from fixed inputs. ' +
      'Binary values are base64url without padding; Ed25519 private keys are their 32-byte seeds. ' +
      'See docs/PROTOCOL.md for the rules each section exercises.',
    protocolVersion: '1.1',
    encoding: {
      base64url: [
        { hex: '', b64u: '' },
        { hex: 'fb', b64u: '-w' },
        { hex: 'fbff', b64u: '-_8' },
        { hex: 'fbffbf', b64u: '-_-_' },
        { hex: hexEncode(chainIdBytes), b64u: chainId },
      ],
      invalidBase64url: [
        { what: 'padding', text: '-w==' },
        { what: 'standard alphabet instead of the url-safe one', text: '+/8' },
        { what: 'non-zero trailing bits (not canonical)', text: '-x' },
        { what: 'impossible length', text: 'AAAAA' },
      ],
    },
    chain: {
      chainId,
      seed: b64uEncode(seedBytes),
      length,
      paywords,
      stepInputHexForIndex15: hexEncode(stepInput(chainIdBytes, 15, seedBytes)),
      stepInputs: Array.from({ length }, (_, i) => ({
        index: i,
        hex: hexEncode(stepInput(chainIdBytes, i, words[i + 1] as Uint8Array)),
      })),
      maxChainLength: MAX_CHAIN_LENGTH,
    },
    keys: {
      broker: broker.vector,
      'daily-planet': dailyPlanet.vector,
      'the-bugle': theBugle.vector,
    },
    derivedKeyIds: [
      { publicKey: dailyPlanet.vector.publicKey, keyId: keyIdForPublicKey(publicKeyFromSeed(dailyPlanet.seed)) },
      { publicKey: theBugle.vector.publicKey, keyId: keyIdForPublicKey(publicKeyFromSeed(theBugle.seed)) },
    ],
    touchstone,
    touchstoneSignedBytes: touchstoneSignedBytes(touchstoneFields),
    holderCerts,
    holderCertsSignedBytes: holderFields.map(holderSignedBytes),
    release,
    releaseSignedBytes: releaseSignedBytes(releaseFields),
    invalid: [
      {
        what: 'payword at index 8 presented as index 7',
        index: 7,
        payword: at(8),
        verifiesAgainst: { index: 0, payword: at(0) },
        valid: false,
      },
      {
        what: 'payword index equal to the known index',
        index: 3,
        payword: at(3),
        verifiesAgainst: { index: 3, payword: at(3) },
        valid: false,
      },
      {
        what: 'payword index below the known index',
        index: 2,
        payword: at(2),
        verifiesAgainst: { index: 5, payword: at(5) },
        valid: false,
      },
      {
        what: 'payword of another chain with the same seed',
        index: 4,
        payword: otherWords[4] as string,
        verifiesAgainst: { index: 0, payword: at(0) },
        valid: false,
      },
      { what: 'touchstone with length changed to 17', doc: tampered(touchstone, 'length', 17), valid: false },
      { what: 'touchstone with unit changed to 2', doc: tampered(touchstone, 'unit', 2), valid: false },
      {
        what: 'holder certificate naming another vendor',
        doc: tampered(holderCerts[0] as (typeof holderCerts)[0], 'vendorId', 'the-bugle'),
        valid: false,
      },
      { what: 'release with index changed to 9', doc: tampered(release, 'index', 9), valid: false },
      {
        what: "release signed with another vendor's key",
        doc: signRelease(releaseFields, theBugle.seed),
        valid: false,
      },
    ],
    unsignable: [
      {
        what: 'a touchstone field containing a newline',
        kind: 'touchstone',
        fields: { ...touchstoneFields, currency: 'NZD\nUSD' },
      },
      {
        what: 'a release with a negative index',
        kind: 'release',
        fields: { ...releaseFields, index: -1 },
      },
    ],
    headers: {
      maxLength: MAX_HEADER_LENGTH,
      authorization: { params: authorization, value: authorizationValue },
      wwwAuthenticate: { params: challenge, value: formatWwwAuthenticate(challenge) },
      receipt: { params: receipt, value: formatReceipt(receipt) },
      badAuthorization: [
        {
          what: 'longer than the limit',
          value: `${authorizationValue}, padding="${'a'.repeat(MAX_HEADER_LENGTH - authorizationValue.length)}"`,
        },
        { what: 'another scheme', value: authorizationValue.replace('NetPay', 'Bearer') },
        { what: 'a duplicate parameter', value: `${authorizationValue}, index="4"` },
        { what: 'a missing payword', value: `NetPay chain="${chainId}", index="3"` },
        { what: 'an index with a leading zero', value: authorizationValue.replace('index="3"', 'index="03"') },
        {
          what: 'an index past the longest chain',
          value: authorizationValue.replace('index="3"', `index="${MAX_CHAIN_LENGTH + 1}"`),
        },
        { what: 'a payword of 31 bytes', value: authorizationValue.replace(at(3), b64uEncode(words[3]!.slice(1))) },
      ],
    },
    fees: {
      feeBps,
      rule: "the fee on a vendor's redemptions is floor(total gross × feeBps / 10000) over its running total",
      redemptions,
    },
    problems: {
      contentType: PROBLEM_CONTENT_TYPE,
      examples: [
        problemDetails('already_spent', 'index 3 is not above 5', { lastIndex: 5 }),
        problemDetails('too_far_ahead', 'index 2000 is 1995 steps beyond the last index', {
          lastIndex: 5,
        }),
        problemDetails('chain_refunding', 'the chain is being refunded'),
        problemDetails('unknown_chain', 'the broker does not know this chain', undefined, 404),
      ],
    },
  };
}

/** The file's exact text: two-space JSON and a final newline. */
export function renderVectors(): string {
  return `${JSON.stringify(buildVectors(), null, 2)}\n`;
}

function main(args: readonly string[]): void {
  const text = renderVectors();
  if (args.includes('--check')) {
    const committed = readFileSync(VECTORS_FILE, 'utf8');
    if (committed !== text) {
      console.error(`${VECTORS_FILE} is out of date: run this script without --check and commit the result`);
      process.exit(1);
    }
    console.log(`${VECTORS_FILE} is up to date`);
    return;
  }
  writeFileSync(VECTORS_FILE, text);
  console.log(`wrote ${VECTORS_FILE}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) main(process.argv.slice(2));
