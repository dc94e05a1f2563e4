import { readFileSync } from 'node:fs';

/** The shared test vectors (/work/shared/test-vectors.json, beside the repo). */
export const vectors = JSON.parse(
  readFileSync(new URL('../../../../shared/test-vectors.json', import.meta.url), 'utf8'),
);
