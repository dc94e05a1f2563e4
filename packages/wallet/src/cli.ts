import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { formatMinor } from '@netpay/protocol';
import type { HistoryEntry } from './coin-store.ts';
import { FileCoinStore } from './file-store.ts';
import { type CoinView, type PaymentAttempt, createWallet } from './wallet.ts';
import { WalletError } from './wallet-error.ts';

export const WALLET_HELP = `netpay wallet: a client-side NetPay wallet kept in a file

Usage: netpay wallet [--file PATH] <command> [options]

Commands:
  register --broker URL --email E [--password P]   create an account at the broker and log in
  login    --broker URL --email E [--password P]   log in (the session token is kept in the wallet file)
  logout                                          forget the session token
  buy --amount MINOR [--unit MINOR] [--card N --expiry MM/YY --cvc C]
                                                  buy a coin (the chain is made here; the seed stays here)
  balance                                         what is left, per currency
  coins                                           the wallet's coins
  history                                         local log of purchases, payments and refunds
  refund CHAIN_ID                                 refund a coin's unspent remainder to the card
  get URL [--max-price MINOR] [--budget MINOR]    fetch URL, paying a NetPay 402; body to stdout,
                                                  payment to stderr

Options:
  --file PATH     wallet file (default $NETPAY_WALLET_FILE or ~/.netpay/wallet.json), mode 0600
  --password P    or set NETPAY_PASSWORD
  --card/--expiry/--cvc   default to the sandbox bank's test card 4242424242424242 12/30 123
  --json          machine-readable output
  -h, --help      this help

Amounts are integers of the currency's minor unit (cents). Exit codes: 0 ok, 1 failed, 2 usage error.
`;

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

/** Where a wallet given no --file lives. */
export function defaultWalletFile(env: NodeJS.ProcessEnv = process.env): string {
  return env.NETPAY_WALLET_FILE || join(homedir(), '.netpay', 'wallet.json');
}

class UsageError extends Error {}

function minorArg(name: string, value: string | undefined, min: number): number | undefined {
  if (value === undefined) return undefined;
  if (!/^(0|[1-9][0-9]{0,15})$/.test(value) || !Number.isSafeInteger(Number(value)) || Number(value) < min) {
    throw new UsageError(`--${name} must be an integer ≥ ${min} of minor units, got '${value}'`);
  }
  return Number(value);
}

function required(name: string, value: string | undefined): string {
  if (value === undefined || value === '') throw new UsageError(`--${name} is required`);
  return value;
}

function money(amount: number, currency: string): string {
  return currency ? formatMinor(amount, currency) : String(amount);
}

function short(chainId: string): string {
  return chainId.slice(0, 8);
}

function coinLine(c: CoinView): string {
  return (
    `${c.chainId}  ${c.status.padEnd(9)} ${money(c.remainingMinor, c.currency)} left of ${money(c.valueMinor, c.currency)}` +
    `  (unit ${c.unitMinor}, ${c.spentIndex}/${c.length} spent, expires ${c.expiresAt}` +
    (c.lastRealm ? `, last at ${c.lastRealm})` : ')')
  );
}

function historyLine(e: HistoryEntry): string {
  switch (e.kind) {
    case 'purchase':
      return `${e.at}  bought    ${money(e.amountMinor, e.currency)}  chain ${short(e.chainId)}`;
    case 'refund':
      return `${e.at}  refunded  ${money(e.amountMinor, e.currency)}  chain ${short(e.chainId)} (released at ${e.releasedIndex})`;
    case 'payment':
      return (
        `${e.at}  paid      ${money(e.amountMinor, e.currency)}  to ${e.realm}  chain ${short(e.chainId)} index ${e.index}` +
        `  ${e.status}${e.code ? ` (${e.code})` : ''}  ${e.url}`
      );
  }
}

function paymentLine(p: PaymentAttempt): string {
  const receipt = p.receipt ? `, ${money(p.receipt.balanceMinor, p.currency)} left on the coin` : '';
  const code = p.code ? ` (${p.code})` : '';
  return `netpay: ${p.status} ${money(p.amountMinor, p.currency)} to ${p.realm} with chain ${short(p.chainId)} index ${p.index}${code}${receipt}`;
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

/**
 * `netpay wallet …`: runs one wallet command and returns the exit code (0 ok, 1 failed, 2 usage). The wallet lives in
 * a `FileCoinStore`.
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
  try {
    const { values, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
    json = values.json === true;
    const [command, ...rest] = positionals;
    if (values.help || command === undefined || command === 'help') {
      io.out(WALLET_HELP);
      return command === undefined && !values.help ? 2 : 0;
    }
    const store = new FileCoinStore(values.file ?? defaultWalletFile(env));
    const options: Parameters<typeof createWallet>[0] = { store };
    if (values.broker !== undefined) options.brokerUrl = values.broker;
    const wallet = createWallet(options);
    const print = (human: string, data: unknown) => io.out(json ? `${JSON.stringify(data, null, 2)}\n` : `${human}\n`);
    const noExtra = () => {
      if (rest.length > 0) throw new UsageError(`unexpected argument '${rest[0]}'`);
    };

    switch (command) {
      case 'register':
      case 'login': {
        noExtra();
        required('broker', values.broker);
        const email = required('email', values.email);
        const password = values.password ?? env.NETPAY_PASSWORD;
        if (!password) throw new UsageError('--password or NETPAY_PASSWORD is required');
        if (command === 'register') await wallet.register(email, password);
        await wallet.login(email, password);
        print(`${command === 'register' ? 'registered and logged in' : 'logged in'} as ${email} at ${values.broker}`, {
          ok: true,
          email,
          broker: values.broker,
        });
        return 0;
      }
      case 'logout': {
        noExtra();
        await wallet.logout();
        print('logged out', { ok: true });
        return 0;
      }
      case 'buy': {
        noExtra();
        const amountMinor = minorArg('amount', required('amount', values.amount), 1) as number;
        const unitMinor = minorArg('unit', values.unit, 1) ?? 1;
        const card = {
          number: values.card ?? '4242424242424242',
          expiry: values.expiry ?? '12/30',
          cvc: values.cvc ?? '123',
        };
        const coin = await wallet.buy({ amountMinor, unitMinor, card });
        print(`bought ${coinLine(coin)}`, coin);
        return 0;
      }
      case 'balance': {
        noExtra();
        const balance = await wallet.balance();
        const lines = Object.entries(balance).map(([currency, amount]) => money(amount, currency));
        print(lines.length ? lines.join('\n') : 'no coins (netpay wallet buy --amount MINOR)', balance);
        return 0;
      }
      case 'coins': {
        noExtra();
        const coins = await wallet.coins();
        print(coins.length ? coins.map(coinLine).join('\n') : 'no coins', coins);
        return 0;
      }
      case 'history': {
        noExtra();
        const history = await wallet.history();
        print(history.length ? history.map(historyLine).join('\n') : 'no history', history);
        return 0;
      }
      case 'refund': {
        const [chainId, ...more] = rest;
        if (chainId === undefined) throw new UsageError('refund needs a CHAIN_ID');
        if (more.length > 0) throw new UsageError(`unexpected argument '${more[0]}'`);
        const result = await wallet.refund(chainId);
        const coin = (await wallet.coins()).find((c) => c.chainId === chainId);
        print(
          `refunded ${money(result.refundedMinor, coin?.currency ?? '')} of chain ${chainId} (released at index ${result.releasedIndex})`,
          result,
        );
        return 0;
      }
      case 'get': {
        const [url, ...more] = rest;
        if (url === undefined) throw new UsageError('get needs a URL');
        if (more.length > 0) throw new UsageError(`unexpected argument '${more[0]}'`);
        if (!/^https?:\/\//.test(url)) throw new UsageError(`not an http(s) URL: ${url}`);
        const pay: { maxPriceMinor?: number; budgetMinor?: number } = {};
        const maxPrice = minorArg('max-price', values['max-price'], 0);
        const budget = minorArg('budget', values.budget, 0);
        if (maxPrice !== undefined) pay.maxPriceMinor = maxPrice;
        if (budget !== undefined) pay.budgetMinor = budget;
        const { response, payments } = await wallet.fetchWithPayment(
          url,
          { headers: { accept: 'application/json' } },
          pay,
        );
        const body = new Uint8Array(await response.arrayBuffer());
        await io.writeBody(body);
        if (json) {
          io.err(`${JSON.stringify({ status: response.status, payments })}\n`);
        } else {
          for (const p of payments) io.err(`${paymentLine(p)}\n`);
          if (!response.ok) io.err(`netpay wallet: HTTP ${response.status} from ${url}\n`);
        }
        return response.ok ? 0 : 1;
      }
      default:
        throw new UsageError(`unknown command '${command}'`);
    }
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string })?.code?.startsWith?.('ERR_PARSE_ARGS')) {
      io.err(`netpay wallet: ${(err as Error).message}\n(see netpay wallet --help)\n`);
      return 2;
    }
    if (err instanceof WalletError) {
      if (json) io.err(`${JSON.stringify({ error: err.code, message: err.message, status: err.status })}\n`);
      else io.err(`netpay wallet: ${err.message}\n`);
      return 1;
    }
    io.err(`netpay wallet: unexpected error: ${(err as Error)?.stack ?? String(err)}\n`);
    return 1;
  }
}
