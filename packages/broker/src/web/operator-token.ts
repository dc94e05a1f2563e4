import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { newSecret } from '@netpay/service-kit';

/** Where the operator token comes from; see `loadOperatorToken`. */
export interface OperatorTokenOptions {
  /** The token itself (tests, or an operator who manages it in a secret store). */
  operatorToken?: string;
  /** A file holding the token, created with a fresh random token (mode 0600) when missing: `<data>/operator-token`. */
  operatorTokenFile?: string;
}

/** The name of the token file in the broker's data folder. */
export const OPERATOR_TOKEN_FILE = 'operator-token';

/**
 * The operator view's token: `options.operatorToken`, else `$NETPAY_OPERATOR_TOKEN`, else the file
 * `options.operatorTokenFile` or `$NETPAY_OPERATOR_TOKEN_FILE` (made on first start). Undefined when none is
 * configured: the operator view then stays closed, never open.
 */
export function loadOperatorToken(
  options: OperatorTokenOptions,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  const direct = options.operatorToken ?? env.NETPAY_OPERATOR_TOKEN;
  if (direct !== undefined && direct !== '') {
    if (direct.length < 16) throw new Error('the operator token must be at least 16 characters');
    return direct;
  }
  const file = options.operatorTokenFile ?? env.NETPAY_OPERATOR_TOKEN_FILE;
  if (!file) return undefined;
  try {
    const existing = readFileSync(file, 'utf8').trim();
    if (existing.length >= 16) return existing;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  mkdirSync(dirname(file), { recursive: true });
  const token = newSecret('np_op_');
  try {
    writeFileSync(file, `${token}\n`, { mode: 0o600, flag: 'wx' });
    return token;
  } catch (error) {
    // Another process wrote it between our read and our write: use theirs.
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return readFileSync(file, 'utf8').trim();
  }
}
