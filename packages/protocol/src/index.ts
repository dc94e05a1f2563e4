/** Version of the wire protocol this package implements (PROTOCOL.md). */
export const PROTOCOL_VERSION = 1;

export * from './auth-challenges.ts';
export * from './ed25519.ts';
export * from './ed25519-bench.ts';
export * from './encoding.ts';
export * from './error-codes.ts';
export * from './headers.ts';
export * from './key-id.ts';
export * from './money.ts';
export * from './payword-chain.ts';
export { sha256, sha256BackendName } from './sha256.ts';
export * from './schemas/index.ts';
export * from './signed-document.ts';
export * from './wire.ts';
