/**
 * What `netpay wallet` accepts and says about itself: one table of commands, from which both the help texts and
 * the check that a command was given only its own options are made.
 */

/** Options every command takes. */
const COMMON_OPTIONS: Readonly<Record<string, string>> = {
  '--file PATH': 'the wallet file (default $NETPAY_WALLET_FILE or ~/.netpay/wallet.json), kept at mode 0600',
  '--json': 'machine-readable output',
  '-h, --help': 'this help',
};

export interface CommandSpec {
  /** What follows `netpay wallet` in the usage line. */
  usage: string;
  /** One line for the list of commands. */
  summary: string;
  /** Its own options (flag and value name → what it means), besides the common ones. */
  options: Readonly<Record<string, string>>;
  /** Positional arguments it takes. */
  positionals: readonly string[];
  /** More about it, one paragraph. */
  more?: string;
}

const PASSWORD = '--password P';
const ACCOUNT_OPTIONS = {
  '--broker URL':
    "the broker's base URL, e.g. http://127.0.0.1:4000 (default: the one netpay start wrote in ./data/demo.json; " +
    '--data DIR for another folder)',
  '--email E': 'your email address (required)',
  [PASSWORD]: 'your password (or set NETPAY_PASSWORD, which keeps it out of the process list)',
};

export const COMMANDS: Readonly<Record<string, CommandSpec>> = {
  register: {
    usage: 'register [--broker URL] --email E [--password P]',
    summary: 'create an account at the broker and log in',
    options: ACCOUNT_OPTIONS,
    positionals: [],
  },
  login: {
    usage: 'login [--broker URL] --email E [--password P]',
    summary: 'log in (the session token is kept in the wallet file)',
    options: ACCOUNT_OPTIONS,
    positionals: [],
  },
  logout: { usage: 'logout', summary: 'forget the session token (coins stay)', options: {}, positionals: [] },
  buy: {
    usage: 'buy --amount CENTS [--unit CENTS] [--card N --expiry MM/YY --cvc C]',
    summary: 'buy a coin (the chain is made here; its seed never leaves the wallet file)',
    options: {
      '--amount CENTS': "the coin's value in cents, e.g. 200 for NZ$2.00 (required)",
      '--unit CENTS': 'the value of one payword in cents (default 1, NZ$0.01); the amount is a multiple of it',
      '--card N': "the card number (default the sandbox bank's test card 4242424242424242)",
      '--expiry MM/YY': 'the card expiry (default 12/30)',
      '--cvc C': 'the card security code (default 123)',
    },
    positionals: [],
    more: 'If the answer is lost, run the same buy again: it resends the same request, so the card is charged once.',
  },
  balance: { usage: 'balance', summary: 'what is left on usable coins, per currency', options: {}, positionals: [] },
  coins: { usage: 'coins', summary: "the wallet's coins and what is left on each", options: {}, positionals: [] },
  history: {
    usage: 'history',
    summary: 'the local log of purchases, payments and refunds',
    options: {},
    positionals: [],
  },
  sync: {
    usage: 'sync',
    summary: 'learn from the broker what it knows of your coins (spends elsewhere, refunds)',
    options: {},
    positionals: [],
  },
  refund: {
    usage: 'refund CHAIN_ID',
    summary: "refund a coin's unspent remainder to the card",
    more: "CHAIN_ID is as `coins` prints it; one that starts with '-' is taken as typed (or put it after `--`).",
    options: {},
    positionals: ['CHAIN_ID'],
  },
  get: {
    usage: 'get URL [--max-price CENTS] [--budget CENTS]',
    summary: 'fetch URL, paying a NetPay 402 (body to stdout, payment to stderr)',
    options: {
      '--max-price CENTS': 'pay at most this per request, e.g. 10 for NZ$0.10 (default no limit)',
      '--budget CENTS': 'pay at most this in total in this run, e.g. 100 for NZ$1.00 (default no limit)',
    },
    positionals: ['URL'],
    more:
      'A URL this wallet bought before is read again free: the wallet presents the payment that bought it, and ' +
      'pays only if the vendor answers 402.',
  },
};

function table(rows: Readonly<Record<string, string>>): string {
  const width = Math.max(...Object.keys(rows).map((k) => k.length)) + 2;
  return Object.entries(rows)
    .map(([flag, what]) => `  ${flag.padEnd(width)}${what}`)
    .join('\n');
}

/** `netpay wallet --help`: every command. */
export const WALLET_HELP = `netpay wallet: a client-side NetPay wallet kept in a file

Usage: netpay wallet [--file PATH] <command> [options]

Commands:
${table(Object.fromEntries(Object.entries(COMMANDS).map(([name, c]) => [name, c.summary])))}

Options:
${table(COMMON_OPTIONS)}

Run 'netpay wallet <command> --help' for a command's options. Amounts are whole numbers of cents
(200 is NZ$2.00). Exit codes: 0 ok, 1 failed, 2 usage error.
`;

/** `netpay wallet <command> --help`. */
export function commandHelp(name: string): string {
  const spec = COMMANDS[name] as CommandSpec;
  return (
    `netpay wallet ${name}: ${spec.summary}\n\n` +
    `Usage: netpay wallet [--file PATH] ${spec.usage}\n\n` +
    (spec.more ? `${wrap(spec.more)}\n\n` : '') +
    `Options:\n${table({ ...spec.options, ...COMMON_OPTIONS })}\n`
  );
}

/** Breaks a paragraph into lines of at most `width` characters. */
function wrap(text: string, width = 100): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines.join('\n');
}

/** The long option names (`amount`, `max-price`) a command takes, besides the common ones. */
export function optionNames(name: string): Set<string> {
  const spec = COMMANDS[name] as CommandSpec;
  return new Set(Object.keys(spec.options).map((flag) => (/^--([a-z-]+)/.exec(flag) as RegExpExecArray)[1] as string));
}
