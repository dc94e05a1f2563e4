/**
 * What `netpay vendor`, `netpay vendor redeem|account` and `netpay bench` accept: each option declared once, for
 * both the parser and `--help`.
 */
import type { CliCommand } from '@netpay/service-kit';

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
  summary: 'measure paid against free throughput, and PayWord against Ed25519 verification',
  more:
    'Starts a bank, a broker and one newspaper in this process on loopback, loads a free and a paid article from ' +
    'a separate process, then times both verifications.',
  options: [
    { name: 'connections', value: 'N', kind: 'integer', default: '10', description: 'concurrent connections' },
    { name: 'duration', value: 'SECONDS', kind: 'integer', default: '5', description: 'length of each load run' },
    {
      name: 'chain-length',
      value: 'N',
      kind: 'integer',
      default: '20000',
      description: 'units of each coin the load pays with',
    },
    { name: 'cpu-ms', value: 'N', kind: 'integer', default: '1000', description: 'length of each CPU measurement' },
    { name: 'rounds', value: 'N', kind: 'integer', default: '3', description: 'free and paid runs; the median counts' },
    { name: 'skip-http', description: 'only the CPU measurements' },
    {
      name: 'pin',
      description: 'run the load generator on the last CPU and the servers on the others (Linux, taskset)',
    },
  ],
} as const satisfies CliCommand;
