/**
 * What `netpay vendor`, `netpay vendor redeem|account` and `netpay bench` accept: each option declared once, for
 * both the parser and `--help`.
 */
import { type CliCommand, METRICS_OPTIONS } from '@netpay/service-kit';

const SITE = {
  name: 'site',
  value: 'ID',
  description: 'the site: daily-planet, the-bugle or a path to a site .json file (required)',
} as const;
const DATA = {
  name: 'data',
  value: 'DIR',
  default: './data',
  description: "the data folder: demo.json and vendors/<id>/ (the vendor's keys and spend store)",
} as const;
const DB = {
  name: 'db',
  value: 'URL',
  defaultText: 'sqlite:<data>/vendors/<id>/spend.db',
  description: 'the spend store: sqlite:PATH or postgres://…',
} as const;
const BROKER_URL = {
  name: 'broker-url',
  value: 'URL',
  kind: 'url',
  defaultText: 'the broker in <data>/demo.json, else http://127.0.0.1:4000',
  description: 'the broker',
} as const;
const PUBLIC_URL = {
  name: 'public-url',
  value: 'URL',
  kind: 'url',
  defaultText: "the site's URL in <data>/demo.json, else http://HOST:PORT",
  description: 'the URL readers reach the site at (its release URL is under it)',
} as const;

export const VENDOR_COMMAND = {
  name: 'netpay vendor',
  summary: 'serve one demo newspaper site until SIGINT or SIGTERM',
  more:
    "It redeems what was spent every 30 s and renews its holds on coins every 10 s. Its API key is the site's " +
    'apiKeyFile in <data>/demo.json, else <data>/vendors/<id>/api-key (netpay start writes it). Also: ' +
    "'netpay vendor redeem' and 'netpay vendor account' (see their --help).",
  options: [
    SITE,
    { name: 'host', value: 'HOST', default: '127.0.0.1', description: 'the address to listen on' },
    { name: 'port', value: 'PORT', kind: 'port', defaultText: "the site's port", description: 'the port to listen on' },
    DATA,
    DB,
    BROKER_URL,
    PUBLIC_URL,
    ...METRICS_OPTIONS,
  ],
} as const satisfies CliCommand;

export const VENDOR_REDEEM_COMMAND = {
  name: 'netpay vendor redeem',
  summary: 'redeem everything spent and not yet redeemed, now',
  more: 'Prints a line per batch, then a JSON summary.',
  options: [SITE, DATA, DB, BROKER_URL, PUBLIC_URL],
} as const satisfies CliCommand;

export const VENDOR_ACCOUNT_COMMAND = {
  name: 'netpay vendor account',
  summary: "print the vendor's account at the broker as JSON",
  options: [SITE, DATA, DB, BROKER_URL, PUBLIC_URL],
} as const satisfies CliCommand;

/** `netpay vendor`, `netpay vendor redeem`, `netpay vendor account`. */
export const VENDOR_COMMANDS = [VENDOR_COMMAND, VENDOR_REDEEM_COMMAND, VENDOR_ACCOUNT_COMMAND] as const;

export const BENCH_COMMAND = {
  name: 'netpay bench',
  summary: 'measure what a payment costs: paid against free, SQLite and PostgreSQL, signatures, fleets, the broker',
  more:
    'Starts a bank and a broker in this process and each measured vendor as a process of its own on loopback; the ' +
    'load comes from one more process. Rows: sqlite, sqlite-threadpool, sqlite-full, pg, ed25519, eip712, nginx (the HTTP rows alternate in the ' +
    'same rounds), first-payment, memory, broker, cpu. Every figure is a median with its min-max spread, printed ' +
    'with /proc/loadavg at the start and end of each row, then a table of ratios.',
  options: [
    { name: 'only', value: 'ROWS', description: 'run only these rows, comma-separated (e.g. sqlite,pg)' },
    { name: 'json', description: 'print one JSON object with every figure instead of the tables' },
    { name: 'quick', description: 'one short round of everything (a smoke run; its figures mean little)' },
    {
      name: 'pg',
      value: 'URL',
      defaultText: 'a fresh schema on the test server (NETPAY_TEST_PG_URL)',
      description: "the PostgreSQL database of the PostgreSQL vendors' spend stores",
    },
    { name: 'connections', value: 'N', kind: 'integer', defaultText: '50', description: 'concurrent connections' },
    { name: 'duration', value: 'SECONDS', kind: 'integer', defaultText: '5', description: 'length of each load run' },
    { name: 'rounds', value: 'N', kind: 'integer', defaultText: '3', description: 'rounds of each row; medians count' },
    {
      name: 'chain-length',
      value: 'N',
      kind: 'integer',
      defaultText: '20000',
      description: 'units of each coin the load pays with',
    },
    {
      name: 'chains',
      value: 'N',
      kind: 'integer',
      defaultText: '1000',
      description: 'new chains paid once each (first payments and vendor memory)',
    },
    {
      name: 'broker-chains',
      value: 'N',
      kind: 'integer',
      defaultText: '200',
      description: 'chains bought, claimed and redeemed per broker round',
    },
    { name: 'cpu-ms', value: 'N', kind: 'integer', defaultText: '900', description: 'length of each CPU measurement' },
    { name: 'skip-http', description: 'only the CPU row (as --only cpu)' },
    {
      name: 'pin',
      description: 'run the load generator on the last CPU and the servers on the others (Linux, taskset)',
    },
  ],
} as const satisfies CliCommand;
