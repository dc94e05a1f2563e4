import { readDemoFile } from '@netpay/service-kit';

/** The wallet's boolean options; every other `--name` it knows takes a value (see the wallet's cli-help.ts). */
const WALLET_FLAGS = new Set(['--json', '--help', '-h']);

/** The commands that are told which broker to use; the others use the one the wallet logged in to. */
const TAKE_BROKER = new Set(['register', 'login']);

/**
 * `netpay wallet login|register` without `--broker`: the broker that `netpay start` wrote in the data folder's
 * demo.json (`--data DIR`, default ./data, an option of this command line and not of the wallet). Other commands,
 * and a folder without demo.json, are passed on as they are, and the wallet says what is missing.
 *
 * @example
 * brokerFromDataFolder(['login', '--email', 'e@x']); // ['login', '--email', 'e@x', '--broker', 'http://127.0.0.2:4000']
 */
export function brokerFromDataFolder(argv: readonly string[]): string[] {
  const command = firstPositional(argv);
  if (command === undefined || !TAKE_BROKER.has(command)) return [...argv];
  const args: string[] = [];
  let data = './data';
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--data' && i + 1 < argv.length) data = argv[++i] as string;
    else if (arg.startsWith('--data=')) data = arg.slice('--data='.length);
    else args.push(arg);
  }
  const given = args.some((a) => a === '--broker' || a.startsWith('--broker='));
  if (given || args.includes('--help') || args.includes('-h')) return args;
  const broker = readDemoFile(data)?.broker?.url;
  return broker === undefined ? args : [...args, '--broker', broker];
}

/** The wallet command named in `argv`: its first argument that is neither an option nor an option's value. */
function firstPositional(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') return argv[i + 1];
    if (!arg.startsWith('-')) return arg;
    if (arg.startsWith('--') && !arg.includes('=') && !WALLET_FLAGS.has(arg)) i++;
  }
  return undefined;
}
