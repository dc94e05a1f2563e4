/**
 * What a `netpay` command accepts, declared once: the same table parses its arguments and writes its `--help`, so
 * the help can never list an option the parser refuses, nor miss one it takes.
 */

/** One `--name [VALUE]` a command takes. */
export interface CliOption {
  /** The long name without its dashes: `bank-url`. */
  readonly name: string;
  /** What the value is, as help shows it (`URL`, `N`, `DIR`); absent for a flag that takes no value. */
  readonly value?: string;
  /** How the value is checked before the command runs: any text (the default), a whole number, a port, a URL. */
  readonly kind?: 'text' | 'integer' | 'port' | 'url';
  /** The value when the option is not given. */
  readonly default?: string;
  /** What help says the default is when the command works it out (from the data folder, another option…). */
  readonly defaultText?: string;
  readonly description: string;
}

/** A command (`netpay broker`) or a subcommand (`netpay admin payouts`). */
export interface CliCommand {
  /** Its words: `netpay admin payouts`. */
  readonly name: string;
  /** One line for its help and for the list of commands. */
  readonly summary: string;
  /** Names of the arguments it takes after its words, in order (none unless listed). */
  readonly positionals?: readonly string[];
  readonly options: readonly CliOption[];
  /** A paragraph more for its help. */
  readonly more?: string;
}

/** Options every command takes besides its own; the parser answers them before anything else. */
export const STANDARD_OPTIONS: readonly CliOption[] = [
  { name: 'help', description: 'show this help' },
  { name: 'version', description: 'print the version of netpay' },
];

/** The admin listener (`/metrics`) every service takes, on loopback by default, 200 above its public port. */
export const METRICS_OPTIONS = [
  {
    name: 'metrics-host',
    value: 'HOST',
    default: '127.0.0.1',
    description: 'the address of the admin listener (/metrics)',
  },
  {
    name: 'metrics-port',
    value: 'PORT',
    kind: 'port',
    defaultText: 'PORT+200',
    description: 'the port of the admin listener',
  },
] as const satisfies readonly CliOption[];

/** A mistake in the command line: said in one line that points at the command's help, exit code 2. */
export class UsageError extends Error {
  readonly command: string;

  constructor(command: string, message: string) {
    super(message);
    this.name = 'UsageError';
    this.command = command;
  }

  /** `netpay broker: unknown option --foo (see netpay broker --help)` */
  line(): string {
    return `${this.command}: ${this.message} (see ${this.command} --help)`;
  }
}

type ValueOf<O> = O extends { readonly value: string }
  ? O extends { readonly default: string }
    ? string
    : string | undefined
  : boolean;

/** The parsed values of a command declared `as const`: a string where the option has a default, else maybe. */
export type CliValues<C extends CliCommand> = {
  -readonly [O in C['options'][number] as O['name']]: ValueOf<O>;
};

export interface ParsedCommandLine<C extends CliCommand> {
  values: CliValues<C>;
  positionals: string[];
  /** `--help` or `-h` was given: print the help and run nothing. */
  help: boolean;
  /** `--version` was given: print the version and run nothing. */
  version: boolean;
}

/**
 * Reads `argv` (what follows the command's words) against the command's table. A valued option takes the next
 * argument whatever it starts with (a base64url key may begin with `-`), or `--name=value`; `--` ends the options.
 *
 * @throws UsageError on an unknown option, a missing or malformed value, or an unexpected argument
 * @example
 * const { values } = parseCommandLine(BROKER_COMMAND, ['--port', '4000']); // values.port === '4000'
 */
export function parseCommandLine<C extends CliCommand>(command: C, argv: readonly string[]): ParsedCommandLine<C> {
  const fail = (message: string) => new UsageError(command.name, message);
  const byName = new Map(command.options.map((o) => [o.name, o]));
  const values: Record<string, string | boolean | undefined> = {};
  const positionals: string[] = [];
  let help = false;
  let version = false;
  let optionsEnded = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (optionsEnded || arg === '-' || !arg.startsWith('-')) {
      positionals.push(arg);
      continue;
    }
    if (arg === '--') {
      optionsEnded = true;
      continue;
    }
    if (arg === '-h' || arg === '--help') {
      help = true;
      continue;
    }
    if (arg === '--version') {
      version = true;
      continue;
    }
    const eq = arg.indexOf('=');
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const option = flag.startsWith('--') ? byName.get(flag.slice(2)) : undefined;
    if (option === undefined) throw fail(`unknown option ${flag}`);
    if (option.value === undefined) {
      if (eq > 0) throw fail(`${flag} takes no value`);
      values[option.name] = true;
      continue;
    }
    let value: string | undefined;
    if (eq > 0) value = arg.slice(eq + 1);
    else value = argv[++i];
    if (value === undefined) throw fail(`${flag} needs a value (${option.value})`);
    const problem = valueProblem(option, value);
    if (problem) throw fail(`${flag} ${problem} (got '${value}')`);
    values[option.name] = value;
  }
  const allowed = command.positionals ?? [];
  if (!help && !version && positionals.length > allowed.length) {
    throw fail(`unexpected argument '${positionals[allowed.length]}'`);
  }
  for (const option of command.options) {
    if (values[option.name] === undefined) values[option.name] = option.value === undefined ? false : option.default;
  }
  return { values: values as CliValues<C>, positionals, help, version };
}

/**
 * The subcommand of a group (`netpay admin`) named by the first words of `argv`, with the arguments after them.
 * A subcommand named as the group itself (`netpay vendor`, which runs the vendor) matches when no other does.
 *
 * @example
 * findSubcommand('netpay admin', ADMIN_COMMANDS, ['vendor', 'list'])?.command.name; // 'netpay admin vendor list'
 */
export function findSubcommand<C extends CliCommand>(
  group: string,
  commands: readonly C[],
  argv: readonly string[],
): { command: C; rest: string[] } | undefined {
  const words = (c: C) => c.name.slice(group.length).split(' ').filter(Boolean);
  const longestFirst = [...commands].sort((a, b) => words(b).length - words(a).length);
  for (const command of longestFirst) {
    const own = words(command);
    if (own.every((word, i) => argv[i] === word)) return { command, rest: argv.slice(own.length) };
  }
  return undefined;
}

function valueProblem(option: CliOption, value: string): string | undefined {
  switch (option.kind ?? 'text') {
    case 'integer':
      return /^[0-9]{1,15}$/.test(value) ? undefined : 'must be a whole number';
    case 'port':
      return /^[0-9]{1,5}$/.test(value) && Number(value) <= 65_535 ? undefined : 'must be a port number (0-65535)';
    case 'url':
      return /^https?:\/\/[^\s/]+\S*$/.test(value) ? undefined : 'must be an http(s) URL';
    default:
      return value === '' ? 'needs a value' : undefined;
  }
}

/** The left column of an option in help: `--bank-url URL`. */
function optionLabel(option: CliOption): string {
  if (option.name === 'help') return '-h, --help';
  return option.value === undefined ? `--${option.name}` : `--${option.name} ${option.value}`;
}

function optionText(option: CliOption): string {
  const shown = option.defaultText ?? option.default;
  return shown === undefined ? option.description : `${option.description} (default ${shown})`;
}

/** Two columns, the second starting where the widest first one ends and wrapped under itself. */
export function helpTable(rows: ReadonlyArray<readonly [string, string]>): string {
  const width = Math.max(0, ...rows.map(([left]) => left.length)) + 2;
  const indent = ' '.repeat(2 + width);
  return rows
    .map(([left, right]) => {
      const [first, ...more] = wrap(right, Math.max(40, LINE_WIDTH - indent.length)).split('\n');
      return [`  ${left.padEnd(width)}${first ?? ''}`.trimEnd(), ...more.map((line) => indent + line)].join('\n');
    })
    .join('\n');
}

/**
 * `--help` of a command: its summary, usage, paragraph, and every option it takes with its default.
 *
 * @example
 * process.stdout.write(commandHelp(BROKER_COMMAND));
 */
export function commandHelp(command: CliCommand): string {
  const args = (command.positionals ?? []).map((p) => ` ${p}`).join('');
  const options = [...command.options, ...STANDARD_OPTIONS].map((o) => [optionLabel(o), optionText(o)] as const);
  return [
    `${command.name}: ${command.summary}`,
    '',
    `Usage: ${command.name}${args} [options]`,
    '',
    ...(command.more ? [wrap(command.more), ''] : []),
    'Options:',
    helpTable(options),
    '',
  ].join('\n');
}

/**
 * `--help` of a command made of subcommands (`netpay admin`): the list of them, and where to find their options.
 *
 * @example
 * process.stdout.write(groupHelp('netpay admin', "operator commands on the broker's store", ADMIN_COMMANDS));
 */
export function groupHelp(name: string, summary: string, subcommands: readonly CliCommand[], more?: string): string {
  const rows = subcommands.map((c) => [c.name.slice(name.length + 1), c.summary] as const);
  return [
    `${name}: ${summary}`,
    '',
    `Usage: ${name} <command> [options]`,
    '',
    'Commands:',
    helpTable(rows),
    '',
    ...(more ? [wrap(more), ''] : []),
    `Run '${name} <command> --help' for a command's options.`,
    '',
  ].join('\n');
}

const LINE_WIDTH = 110;

/** Breaks a paragraph into lines of at most `width` characters. */
function wrap(text: string, width = LINE_WIDTH): string {
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
