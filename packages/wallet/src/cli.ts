import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { COMMANDS, type CommandSpec, WALLET_HELP, commandHelp, optionNames } from './cli-help.ts';
import { coinLine, entitlementLine, historyLine, paymentLine } from './cli-lines.ts';
import { FileCoinStore } from './file-store.ts';
import { moneyText } from './money-text.ts';
import { createWallet } from './wallet.ts';
import { WalletError } from './wallet-error.ts';
import type { WalletResult } from './wallet-result.ts';

export { WALLET_HELP } from './cli-help.ts';

const OPTIONS = {
  file: { type: 'string' },
  broker: { type: 'string' },
  email: { type: 'string' },
  password: { type: 'string' },
  amount: { type: 'string' },
  unit: { type: 'string' },
  card: { type: 'string' },
  expiry: { type: 'string' },
  cvc: { type: 'string' },
  'max-price': { type: 'string' },
  budget: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

const COMMON = new Set(['file', 'json', 'help']);

/** Where a wallet given no --file lives. */
export function defaultWalletFile(env: NodeJS.ProcessEnv = process.env): string {
  return env.NETPAY_WALLET_FILE || join(homedir(), '.netpay', 'wallet.json');
}

/**
 * A chain id is 22 base64url characters, and one in 32 starts with '-': as an argument it reads like an option. A
 * token of that exact shape that is not the value of an option is moved past a `--`, where Node's parser takes it as
 * a positional (so `refund -Rk…` works as typed, copied from `coins`; `refund -- -Rk…` works too).
 */
const CHAIN_ID_LIKE = /^-[A-Za-z0-9_-]{21}$/;

function chainIdsAsPositionals(argv: readonly string[]): string[] {
  const end = argv.indexOf('--');
  const head = end === -1 ? argv : argv.slice(0, end);
  const options: string[] = [];
  const ids: string[] = [];
  for (let i = 0; i < head.length; i++) {
    const token = head[i] as string;
    const previous = head[i - 1];
    const takesValue =
      previous?.startsWith('--') === true &&
      !previous.includes('=') &&
      OPTIONS[previous.slice(2) as keyof typeof OPTIONS]?.type === 'string';
    if (CHAIN_ID_LIKE.test(token) && !takesValue) ids.push(token);
    else options.push(token);
  }
  if (ids.length === 0) return [...argv];
  return [...options, '--', ...ids, ...(end === -1 ? [] : argv.slice(end + 1))];
}

/** A mistake in the command line: said in one line, exit code 2. */
class UsageError extends Error {}

/** An amount argument in cents, with an example of what it means when it is not one. */
function centsArg(name: string, value: string | undefined, min: number, example: number): number | undefined {
  if (value === undefined) return undefined;
  if (!/^(0|[1-9][0-9]{0,15})$/.test(value) || !Number.isSafeInteger(Number(value))) {
    throw new UsageError(
      `--${name} must be a whole number of cents, e.g. ${example} for ${moneyText(example, 'NZD')} (got '${value}')`,
    );
  }
  if (Number(value) < min) throw new UsageError(`--${name} must be at least ${min} cent (${moneyText(min, 'NZD')})`);
  return Number(value);
}

function required(name: string, value: string | undefined): string {
  if (value === undefined || value === '') throw new UsageError(`--${name} is required`);
  return value;
}

/** Node's parseArgs failures, said the way the rest of the command says things. */
function parseFailure(err: { code: string; message: string }): UsageError {
  const option = /'(-[^' ]+)/.exec(err.message)?.[1];
  if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && option) return new UsageError(`unknown option ${option}`);
  if (err.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && option) return new UsageError(`${option} needs a value`);
  return new UsageError(err.message.split('\n')[0] as string);
}

/** What to do next, for failures whose library text names library options rather than commands. */
const CLI_HINTS: Partial<Record<string, string>> = {
  no_broker: 'no broker yet: log in first (netpay wallet login --broker URL --email E)',
  not_logged_in: 'not logged in: log in first (netpay wallet login --broker URL --email E)',
};

/** One line, whatever the message holds (a broker's detail may span lines). */
function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
  writeBody: (bytes: Uint8Array) => Promise<void>;
}

const defaultIo: Io = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  writeBody: (bytes) =>
    new Promise((resolve, reject) => process.stdout.write(bytes, (err) => (err ? reject(err) : resolve()))),
};

/** The value of a wallet operation; its failure goes to the catch below as the WalletError it carries. */
function value<T>(result: WalletResult<T>): T {
  if (!result.ok) throw result.error;
  return result.value;
}

/**
 * `netpay wallet …`: runs one wallet command and returns the exit code (0 ok, 1 failed, 2 usage). The wallet lives in
 * a `FileCoinStore`. Every error is one line on stderr (never a stack trace); `--help` works on every command.
 *
 * @example
 * process.exitCode = await runWallet(['--file', '/tmp/w.json', 'balance', '--json']);
 */
export async function runWallet(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
  io: Io = defaultIo,
): Promise<number> {
  let json = false;
  let command: string | undefined;
  try {
    let parsed: ReturnType<typeof parseArgs<{ args: string[]; options: typeof OPTIONS; allowPositionals: true }>>;
    try {
      parsed = parseArgs({ args: chainIdsAsPositionals(argv), options: OPTIONS, allowPositionals: true, strict: true });
    } catch (err) {
      const code = (err as { code?: unknown })?.code;
      if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) {
        command = argv.find((a) => Object.hasOwn(COMMANDS, a));
        throw parseFailure(err as { code: string; message: string });
      }
      throw err;
    }
    const { values, positionals } = parsed;
    json = values.json === true;
    const [first, ...rest] = positionals;
    if (first === undefined || first === 'help') {
      const topic = first === 'help' ? rest[0] : undefined;
      if (topic !== undefined) {
        if (!Object.hasOwn(COMMANDS, topic)) throw new UsageError(`unknown command '${topic}'`);
        io.out(commandHelp(topic));
        return 0;
      }
      io.out(WALLET_HELP);
      return first === undefined && !values.help ? 2 : 0;
    }
    if (!Object.hasOwn(COMMANDS, first)) throw new UsageError(`unknown command '${first}'`);
    command = first;
    if (values.help) {
      io.out(commandHelp(command));
      return 0;
    }
    const spec = COMMANDS[command] as CommandSpec;
    const allowed = optionNames(command);
    for (const name of Object.keys(values)) {
      if (!COMMON.has(name) && !allowed.has(name)) throw new UsageError(`${command} takes no --${name}`);
    }
    if (rest.length < spec.positionals.length) {
      throw new UsageError(`${command} needs ${spec.positionals.slice(rest.length).join(' ')}`);
    }
    if (rest.length > spec.positionals.length)
      throw new UsageError(`unexpected argument '${rest[spec.positionals.length]}'`);

    const options: Parameters<typeof createWallet>[0] = {
      store: new FileCoinStore(values.file ?? defaultWalletFile(env)),
    };
    if (values.broker !== undefined) options.brokerUrl = values.broker;
    const wallet = createWallet(options).results;
    const print = (human: string, data: unknown) => io.out(json ? `${JSON.stringify(data, null, 2)}\n` : `${human}\n`);

    switch (command) {
      case 'register':
      case 'login': {
        const broker = required('broker', values.broker);
        const email = required('email', values.email);
        const password = values.password ?? env.NETPAY_PASSWORD;
        if (!password) throw new UsageError('--password or NETPAY_PASSWORD is required');
        if (command === 'register') value(await wallet.register(email, password));
        value(await wallet.login(email, password));
        print(`${command === 'register' ? 'registered and logged in' : 'logged in'} as ${email} at ${broker}`, {
          ok: true,
          email,
          broker,
        });
        return 0;
      }
      case 'logout': {
        value(await wallet.logout());
        print('logged out', { ok: true });
        return 0;
      }
      case 'buy': {
        const amountMinor = centsArg('amount', required('amount', values.amount), 1, 200) as number;
        const unitMinor = centsArg('unit', values.unit, 1, 1) ?? 1;
        const card = {
          number: values.card ?? '4242424242424242',
          expiry: values.expiry ?? '12/30',
          cvc: values.cvc ?? '123',
        };
        const coin = value(await wallet.buy({ amountMinor, unitMinor, card }));
        print(`bought ${coinLine(coin)}`, coin);
        return 0;
      }
      case 'balance': {
        const balance = value(await wallet.balance());
        const lines = Object.entries(balance).map(([currency, amount]) => moneyText(amount, currency));
        print(lines.length ? lines.join('\n') : 'no coins (buy one: netpay wallet buy --amount 200)', balance);
        return 0;
      }
      case 'coins':
      case 'sync': {
        const coins = value(await (command === 'sync' ? wallet.sync() : wallet.coins()));
        print(coins.length ? coins.map(coinLine).join('\n') : 'no coins', coins);
        return 0;
      }
      case 'history': {
        const history = value(await wallet.history());
        print(history.length ? history.map(historyLine).join('\n') : 'no history', history);
        return 0;
      }
      case 'refund': {
        const chainId = rest[0] as string;
        const result = value(await wallet.refund(chainId));
        print(
          `refunded ${moneyText(result.refundedMinor, result.currency)} of chain ${chainId} (released at index ${result.releasedIndex})`,
          result,
        );
        return 0;
      }
      case 'get': {
        const url = rest[0] as string;
        if (!/^https?:\/\//.test(url)) throw new UsageError(`not an http(s) URL: ${url}`);
        const pay: { maxPriceMinor?: number; budgetMinor?: number } = {};
        const maxPrice = centsArg('max-price', values['max-price'], 0, 10);
        const budget = centsArg('budget', values.budget, 0, 100);
        if (maxPrice !== undefined) pay.maxPriceMinor = maxPrice;
        if (budget !== undefined) pay.budgetMinor = budget;
        const { response, payments, entitlement } = value(
          await wallet.fetchWithPayment(url, { headers: { accept: 'application/json' } }, pay),
        );
        const body = new Uint8Array(await response.arrayBuffer());
        await io.writeBody(body);
        if (json) {
          io.err(`${JSON.stringify({ status: response.status, payments, ...(entitlement ? { entitlement } : {}) })}\n`);
        } else {
          if (entitlement) io.err(`${entitlementLine(entitlement)}\n`);
          for (const p of payments) io.err(`${paymentLine(p)}\n`);
          if (!response.ok) io.err(`netpay wallet: HTTP ${response.status} from ${url}\n`);
        }
        return response.ok ? 0 : 1;
      }
    }
    throw new UsageError(`unknown command '${command}'`);
  } catch (err) {
    if (err instanceof UsageError) {
      const help = command === undefined ? 'netpay wallet --help' : `netpay wallet ${command} --help`;
      io.err(`netpay wallet: ${oneLine(err.message)} (see ${help})\n`);
      return 2;
    }
    if (err instanceof WalletError) {
      if (json) io.err(`${JSON.stringify({ error: err.code, message: err.detail, status: err.status })}\n`);
      else io.err(`netpay wallet: ${oneLine(CLI_HINTS[err.code] ?? err.detail)} (${err.code})\n`);
      return 1;
    }
    // A bug or a broken file system: still one line, the message without its stack.
    const message = err instanceof Error ? err.message : String(err);
    io.err(`netpay wallet: unexpected error: ${oneLine(message)}\n`);
    return 1;
  }
}
