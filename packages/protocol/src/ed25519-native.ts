import { type Ed25519Backend, verifiableShape } from './ed25519-backend.ts';
import { acceptedPublicKeyPoint } from './ed25519-noble.ts';
import { b64uDecode, b64uEncode } from './encoding.ts';
import { LruCache } from './lru-cache.ts';

/** An OpenSSL key held by Node (a `KeyObject`); only exported back to JWK here. */
interface NodeKey {
  export(options: { format: 'jwk' }): { x?: string };
}

/**
 * The slice of `node:crypto` this backend uses, typed here so that the protocol package names no Node module (it is
 * bundled for browsers) and the dependency stays this narrow.
 */
interface NodeCrypto {
  createPrivateKey(options: { key: Uint8Array; format: 'der'; type: 'pkcs8' }): NodeKey;
  createPublicKey(options: { key: { kty: 'OKP'; crv: 'Ed25519'; x: string }; format: 'jwk' } | NodeKey): NodeKey;
  sign(algorithm: null, data: Uint8Array, key: NodeKey): Uint8Array;
  verify(algorithm: null, data: Uint8Array, key: NodeKey, signature: Uint8Array): boolean;
}

/** PKCS#8 DER header of an Ed25519 private key (RFC 8410: 302e020100300506032b657004220420); the seed follows. */
const PKCS8_ED25519_PREFIX = b64uDecode('MC4CAQAwBQYDK2VwBCIEIA', 16);

/** Public keys whose OpenSSL form is kept: a service verifies with a handful (its broker's, its vendors'). */
const PUBLIC_KEY_CACHE_SIZE = 256;

/** RFC 8032 §7.1 TEST 1, signed once at load: a runtime whose node:crypto lacks Ed25519 keeps the JavaScript one. */
const KNOWN_ANSWER = {
  seed: 'nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A',
  publicKey: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo',
  signature: '5VZDAMNgrHKQhuLMgG6CioSHfx645dl02HPgZSJJAVVfuIIVkKM7rMYeOXAc-bRr0lv18FlbviRlUUFDjnoQCw',
};

function loadNodeCrypto(): NodeCrypto | undefined {
  // process.getBuiltinModule (Node 20.16+, 22.3+) loads a built-in without an import statement, so bundlers see
  // nothing to resolve and browsers (no `process`) fall through to undefined.
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  if (typeof proc?.getBuiltinModule !== 'function') return undefined;
  const mod = proc.getBuiltinModule('node:crypto') as Partial<NodeCrypto> | undefined;
  if (
    typeof mod?.createPrivateKey !== 'function' ||
    typeof mod.createPublicKey !== 'function' ||
    typeof mod.sign !== 'function' ||
    typeof mod.verify !== 'function'
  ) {
    return undefined;
  }
  return mod as NodeCrypto;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] as number) ^ (b[i] as number);
  return diff === 0;
}

function backendOver(crypto: NodeCrypto): Ed25519Backend {
  // Keyed by the seed's array (a service holds its seed in one array for its lifetime); the copy notices a seed
  // changed in place. A WeakMap holds no seed longer than its owner does.
  const privateKeys = new WeakMap<Uint8Array, { seed: Uint8Array; key: NodeKey }>();
  // undefined = not seen; null = refused by the verification rule.
  const publicKeys = new LruCache<string, NodeKey | null>(PUBLIC_KEY_CACHE_SIZE);

  function privateKey(seed: Uint8Array): NodeKey {
    const cached = privateKeys.get(seed);
    if (cached !== undefined && sameBytes(cached.seed, seed)) return cached.key;
    const der = new Uint8Array(PKCS8_ED25519_PREFIX.length + seed.length);
    der.set(PKCS8_ED25519_PREFIX, 0);
    der.set(seed, PKCS8_ED25519_PREFIX.length);
    const key = crypto.createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
    privateKeys.set(seed, { seed: seed.slice(), key });
    return key;
  }

  function publicKey(bytes: Uint8Array): NodeKey | null {
    const x = b64uEncode(bytes);
    const cached = publicKeys.get(x);
    if (cached !== undefined) return cached;
    // OpenSSL takes any 32 bytes (the identity point verifies every message): refuse what the rule refuses first.
    const key =
      acceptedPublicKeyPoint(bytes) === undefined
        ? null
        : crypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x }, format: 'jwk' });
    publicKeys.set(x, key);
    return key;
  }

  return {
    name: 'node',
    publicKey(privateSeed) {
      const { x } = crypto.createPublicKey(privateKey(privateSeed)).export({ format: 'jwk' });
      return b64uDecode(x as string, 32);
    },
    sign(message, privateSeed) {
      // A copy, so callers get a plain Uint8Array (not a Buffer) exactly as from the JavaScript backend.
      return new Uint8Array(crypto.sign(null, message, privateKey(privateSeed)));
    },
    verify(signature, message, bytes) {
      if (!verifiableShape(signature, message, bytes)) return false;
      try {
        const key = publicKey(bytes);
        return key !== null && crypto.verify(null, message, key, signature);
      } catch {
        return false;
      }
    },
  };
}

/**
 * Ed25519 through Node's OpenSSL (about twenty times faster than JavaScript), or undefined where there is no
 * node:crypto with Ed25519 (browsers, older runtimes). OpenSSL keys are cached: private ones per seed array, public
 * ones in a small LRU, so verifying again with the broker's key costs only the verification.
 *
 * @example
 * const backend = nativeEd25519() ?? nobleEd25519;
 */
export function nativeEd25519(): Ed25519Backend | undefined {
  const crypto = loadNodeCrypto();
  if (crypto === undefined) return undefined;
  try {
    const backend = backendOver(crypto);
    const seed = b64uDecode(KNOWN_ANSWER.seed, 32);
    const signature = b64uDecode(KNOWN_ANSWER.signature, 64);
    const ok =
      sameBytes(backend.publicKey(seed), b64uDecode(KNOWN_ANSWER.publicKey, 32)) &&
      sameBytes(backend.sign(new Uint8Array(0), seed), signature) &&
      backend.verify(signature, new Uint8Array(0), b64uDecode(KNOWN_ANSWER.publicKey, 32));
    return ok ? backend : undefined;
  } catch {
    return undefined;
  }
}
