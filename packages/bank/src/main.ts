import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  createLogger,
  hashToken,
  listenUntilSignal,
  makePrivateDir,
  metricsPort,
  newSecret,
  openDatabase,
  parseCommandLine,
  restrictUmask,
  serveMetrics,
} from '@netpay/service-kit';
import { createBankApp } from './app.ts';
import { BANK_COMMAND } from './cli-commands.ts';
import type { BankSchema } from './store.ts';

/** Where the broker's bank API key lives; the bank and the broker's start command both read it. */
export function bankApiKeyPath(dataDir: string): string {
  return join(dataDir, 'bank-api-key');
}

/**
 * The broker's API key at the bank, made on first use (`bk_…`, file mode 0600) so that one `netpay start`
 * needs no setup. Both sides call this with the same data folder and so agree on the key.
 *
 * @example
 * const key = readOrCreateBankApiKey('./data'); // 'bk_…'
 */
export function readOrCreateBankApiKey(dataDir: string): string {
  const path = bankApiKeyPath(dataDir);
  const existing = readKey(path);
  if (existing !== undefined) return existing;
  mkdirSync(dataDir, { recursive: true });
  try {
    // `wx` fails if another process created the file first; then its key wins.
    writeFileSync(path, `${newSecret('bk_')}\n`, { mode: 0o600, flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const created = readKey(path);
  if (created === undefined) throw new Error(`${path} is empty`);
  return created;
}

function readKey(path: string): string | undefined {
  try {
    const key = readFileSync(path, 'utf8').trim();
    return key === '' ? undefined : key;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * `netpay bank [options]` (BANK_COMMAND lists them): runs the sandbox bank until a signal, with the broker
 * registered as a merchant under the key in `<data>/bank-api-key`, and Prometheus metrics on the admin listener.
 */
export async function runBank(argv: string[]): Promise<void> {
  const { values } = parseCommandLine(BANK_COMMAND, argv);
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new Error(`invalid --port: ${values.port}`);
  // The API key file and the database are the owner's only: the folder 0700, every file made from here 0600.
  restrictUmask();
  const dataDir = resolve(values.data);
  makePrivateDir(dataDir);
  const url = values.db ?? `sqlite:${join(dataDir, 'bank.db')}`;
  const logger = createLogger('bank');
  const database = openDatabase<BankSchema>(url);
  const apiKey = readOrCreateBankApiKey(dataDir);
  const app = createBankApp({ db: database.db, engine: database.engine, logger, apiKeyHash: hashToken(apiKey) });
  app.addHook('onClose', async () => database.close());
  await serveMetrics(app, { host: values['metrics-host'], port: metricsPort(values['metrics-port'], port) });
  const address = await listenUntilSignal(app, values.host, port);
  logger.info({ address, engine: database.engine, keyFile: bankApiKeyPath(dataDir) }, 'bank listening');
}
