/**
 * `netpay <command>`: each command lives in the package it administers and is loaded only when asked for, so
 * `netpay wallet` never loads the broker's server code. Every command reads its arguments from its one declaration
 * (`--help` is made from the same), and every failure is one line and an exit code, never a stack trace.
 */
import {
  type CliCommand,
  commandHelp,
  findSubcommand,
  groupHelp,
  helpTable,
  parseCommandLine,
  UsageError,
} from '@netpay/service-kit';
import { failure } from './failure.ts';
import { versionLine } from './version.ts';

export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
}

const processIo: Io = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

/** The commands, in the order help lists them; each one's options are in its own declaration. */
const SUMMARIES: ReadonlyArray<readonly [string, string]> = [
  ['start', 'the whole demo system on this machine: bank, broker and two newspapers, each its own process'],
  ['bank', 'run the sandbox bank'],
  ['broker', 'run the broker'],
  [
    'admin <command>',
    "operator commands on the broker's store: vendor add|list, audit, payouts, rotate-key, reconcile",
  ],
  ['vendor', 'run a demo newspaper; vendor redeem, vendor account'],
  ['wallet <command>', 'the client-side wallet: register, login, buy, balance, coins, history, sync, refund, get'],
  ['bench', 'measure paid against free throughput, and PayWord against Ed25519 verification'],
];

const HELP = `netpay: micro-payments for the web

Usage: netpay <command> [options]

Commands:
${helpTable(SUMMARIES)}

Options:
${helpTable([
  ['-h, --help', 'this help; netpay <command> --help for a command'],
  ['--version', 'print the version of netpay'],
])}

Commands that talk to a service find it in the data folder (--data, default ./data), in the demo.json that
netpay start writes. Exit codes: 0 ok, 1 failed, 2 usage error. NETPAY_DEBUG=1 adds the stack to a failure.
`;

/** Help, the version, or the command itself, as its one declaration reads the arguments. */
async function runDeclared(command: CliCommand, argv: string[], io: Io, run: () => Promise<unknown>): Promise<number> {
  const parsed = parseCommandLine(command, argv);
  if (parsed.help) {
    io.out(commandHelp(command));
    return 0;
  }
  if (parsed.version) {
    io.out(versionLine());
    return 0;
  }
  // Services answer nothing and keep running; one-shot commands answer their exit code.
  const code = await run();
  return typeof code === 'number' ? code : 0;
}

/**
 * Runs one `netpay` command and returns its exit code: 0 ok, 1 failed, 2 a mistake in the command line.
 *
 * @example
 * process.exitCode = await main(process.argv.slice(2));
 */
export async function main(argv: string[], io: Io = processIo, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const [command, ...rest] = argv;
  // The command as far as it is known, to name it in a failure.
  let name = command === undefined || command.startsWith('-') ? 'netpay' : `netpay ${command}`;
  try {
    switch (command) {
      case 'start': {
        const { runStart, START_COMMAND } = await import('./start.ts');
        return await runDeclared(START_COMMAND, rest, io, () => runStart(rest));
      }
      case 'bank': {
        const { runBank, BANK_COMMAND } = await import('@netpay/bank');
        return await runDeclared(BANK_COMMAND, rest, io, () => runBank(rest));
      }
      case 'broker': {
        const { runBroker, BROKER_COMMAND } = await import('@netpay/broker');
        return await runDeclared(BROKER_COMMAND, rest, io, () => runBroker(rest));
      }
      case 'admin': {
        const { runAdmin, ADMIN_COMMANDS, ADMIN_SUMMARY } = await import('@netpay/broker');
        const found = findSubcommand('netpay admin', ADMIN_COMMANDS, rest);
        if (found === undefined) {
          const first = rest[0];
          if (first === '--version') {
            io.out(versionLine());
            return 0;
          }
          if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
            io.out(groupHelp('netpay admin', ADMIN_SUMMARY, ADMIN_COMMANDS));
            return 0;
          }
          throw new UsageError('netpay admin', `unknown command '${first}'`);
        }
        name = found.command.name;
        return await runDeclared(found.command, found.rest, io, () => runAdmin(rest));
      }
      case 'vendor': {
        const newspaper = await import('@netpay/newspaper');
        const [vendorCommand, redeemCommand] = newspaper.VENDOR_COMMANDS;
        // `netpay vendor` itself runs a site; its help names the two subcommands.
        const found = findSubcommand('netpay vendor', newspaper.VENDOR_COMMANDS, rest) ?? {
          command: vendorCommand,
          rest,
        };
        name = found.command.name;
        return await runDeclared(found.command, found.rest, io, async () => {
          if (found.command === vendorCommand) await newspaper.runVendor(found.rest);
          else if (found.command === redeemCommand) await newspaper.runVendorRedeem(found.rest);
          else await newspaper.runVendorAccount(found.rest);
          return 0;
        });
      }
      case 'wallet':
        return await runWalletCommand(rest, io);
      case 'bench': {
        const [{ runBench }, { BENCH_COMMAND }] = await Promise.all([
          import('@netpay/newspaper/bench'),
          import('@netpay/newspaper'),
        ]);
        return await runDeclared(BENCH_COMMAND, rest, io, () => runBench(rest));
      }
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        io.out(HELP);
        return 0;
      case '--version':
        io.out(versionLine());
        return 0;
      default:
        throw new UsageError('netpay', `unknown command '${command}'`);
    }
  } catch (error) {
    const failed = failure(name, error, env);
    io.err(failed.text);
    return failed.exitCode;
  }
}

/**
 * `netpay wallet …`: the wallet has its own help per command and its own one-line errors. `login` and `register`
 * without `--broker` use the broker of the data folder (`--data DIR`, default ./data) when `netpay start` wrote one.
 */
async function runWalletCommand(argv: string[], io: Io): Promise<number> {
  const [{ runWallet }, { brokerFromDataFolder }] = await Promise.all([
    import('@netpay/wallet'),
    import('./wallet-broker.ts'),
  ]);
  if (argv.includes('--version')) {
    io.out(versionLine());
    return 0;
  }
  return runWallet(brokerFromDataFolder(argv), process.env, {
    ...io,
    writeBody: (bytes) =>
      new Promise((resolve, reject) => process.stdout.write(bytes, (err) => (err ? reject(err) : resolve()))),
  });
}

/**
 * Crashes of a command still running (a service's error outside any request): one line and exit code 1.
 *
 * @example
 * process.on('uncaughtException', (error) => reportUncaught(process.argv.slice(2), error));
 */
export function reportUncaught(argv: string[], error: unknown): never {
  const words = argv.slice(0, argv[0] === 'admin' || argv[0] === 'vendor' ? 2 : 1).filter((w) => !w.startsWith('-'));
  process.stderr.write(failure(['netpay', ...words].join(' '), error, process.env).text);
  process.exit(1);
}
