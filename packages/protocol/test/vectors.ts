import { readFileSync } from 'node:fs';
import type { HolderCertificate, ReleaseStatement, Touchstone } from '../src/index.ts';

interface KeyVector {
  keyId: string;
  privateSeed: string;
  publicKey: string;
}

type InvalidVector =
  | {
      what: string;
      index: number;
      payword: string;
      verifiesAgainst: { index: number; payword: string };
      valid: boolean;
    }
  | { what: string; doc: Touchstone | ReleaseStatement | HolderCertificate; valid: boolean };

export interface Vectors {
  chain: { chainId: string; seed: string; length: number; paywords: string[]; stepInputHexForIndex15: string };
  keys: { broker: KeyVector; 'daily-planet': KeyVector };
  touchstone: Touchstone;
  touchstoneSignedBytes: string;
  holderCerts: [HolderCertificate, HolderCertificate];
  release: ReleaseStatement;
  releaseSignedBytes: string;
  invalid: InvalidVector[];
}

/** The shared test vectors (/work/shared/test-vectors.json, beside the repo). */
export const vectors: Vectors = JSON.parse(
  readFileSync(new URL('../../../../shared/test-vectors.json', import.meta.url), 'utf8'),
);
