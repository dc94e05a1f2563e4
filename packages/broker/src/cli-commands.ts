/**
 * What `netpay broker` and `netpay admin …` accept: each option declared once, for both the parser and `--help`.
 */
import { type CliCommand, type CliOption, METRICS_OPTIONS } from '@netpay/service-kit';
import { DEFAULT_CONFIG } from './config.ts';
import { DEFAULT_RECONCILE_GRACE_MS } from './reconcile.ts';

/** Where the sandbox bank is when neither `--bank-url` nor the data folder's demo.json says. */
export const DEFAULT_BANK_URL = 'http://127.0.0.1:4100';

const DATA = {
  name: 'data',
  value: 'DIR',
  default: './data',
  description: "the data folder: master key, the bank's API key (bank-api-key), broker.db, demo.json",
} as const;
const DB = {
  name: 'db',
  value: 'URL',
  defaultText: 'sqlite:<data>/broker.db',
  description: "the broker's store: sqlite:PATH or postgres://…",
} as const;
const BANK_URL = {
  name: 'bank-url',
  value: 'URL',
  kind: 'url',
  defaultText: `the bank in <data>/demo.json, else ${DEFAULT_BANK_URL}`,
  description: 'the sandbox bank',
} as const;

export const BROKER_COMMAND = {
  name: 'netpay broker',
  summary: 'run the broker until SIGINT or SIGTERM',
  more:
    'Every reconcile interval it settles coin purchases left charged without a coin for longer than the grace ' +
    "(keep the grace above the bank timeout). Prometheus metrics are served at /metrics on the admin listener's own port.",
  options: [
    { name: 'host', value: 'HOST', default: '127.0.0.1', description: 'the address to listen on' },
    { name: 'port', value: 'PORT', kind: 'port', default: '4000', description: 'the port to listen on' },
    DATA,
    DB,
    BANK_URL,
    {
      name: 'public-url',
      value: 'URL',
      kind: 'url',
      defaultText: 'http://HOST:PORT',
      description: 'the URL customers and vendors reach the broker at',
    },
    {
      name: 'fee-bps',
      value: 'N',
      kind: 'integer',
      defaultText: String(DEFAULT_CONFIG.feeBps),
      description: 'the fee on redemptions, in hundredths of a percent',
    },
    {
      name: 'lease-ttl-seconds',
      value: 'N',
      kind: 'integer',
      defaultText: String(DEFAULT_CONFIG.leaseTtlSeconds),
      description: "how long a vendor's hold on a coin lasts without renewal",
    },
    {
      name: 'bank-timeout-ms',
      value: 'N',
      kind: 'integer',
      defaultText: '5000',
      description: 'how long to wait for the bank',
    },
    {
      name: 'max-chain-length',
      value: 'N',
      kind: 'integer',
      defaultText: String(DEFAULT_CONFIG.maxChainLength),
      description: 'the longest coin (in units) the broker sells',
    },
    {
      name: 'hash-workers',
      value: 'N',
      kind: 'integer',
      defaultText: 'the cores less one, at least 1',
      description: 'worker threads for long hash loops (coins it makes, long ranges and proofs)',
    },
    {
      name: 'reconcile-interval-ms',
      value: 'N',
      kind: 'integer',
      defaultText: '60000',
      description: 'how often to settle purchases charged without a coin; 0 turns it off',
    },
    {
      name: 'reconcile-grace-ms',
      value: 'N',
      kind: 'integer',
      defaultText: String(DEFAULT_RECONCILE_GRACE_MS),
      description: 'how old such a purchase must be before it is settled',
    },
    {
      name: 'coin-purchases-per-customer',
      value: 'N/SECONDS',
      defaultText: '120/24',
      description: 'each customer may buy N coins at once, refilled N every SECONDS (one budget in the store)',
    },
    ...METRICS_OPTIONS,
  ],
} as const satisfies CliCommand;

/** Every admin command takes these: the deployment's data folder, store and bank. */
const ADMIN_COMMON = [DATA, DB, { ...BANK_URL, description: 'the sandbox bank, for payouts and reconcile' }] as const;

const ADMIN_VENDOR_ADD = {
  name: 'netpay admin vendor add',
  summary: 'register a vendor and print {"vendorId","apiKey","keyId","rotated"}',
  more:
    'Adding an existing id again updates its name and URLs, adds the key if new, and issues a fresh API key ' +
    '(the old one stops working).',
  options: [
    ...ADMIN_COMMON,
    { name: 'id', value: 'ID', description: "the vendor's id (required)" },
    { name: 'name', value: 'NAME', description: "the vendor's name as customers see it (required)" },
    { name: 'url', value: 'URL', kind: 'url', description: "the vendor's site (required)" },
    { name: 'release-url', value: 'URL', kind: 'url', description: 'where the broker asks for releases (required)' },
    {
      name: 'public-key',
      value: 'B64U',
      description: "the vendor's Ed25519 public key, base64url (required; may start with '-')",
    },
    { name: 'key-id', value: 'K', defaultText: 'derived from the key', description: "the key's id" },
  ],
} as const satisfies CliCommand;

const ADMIN_VENDOR_LIST = {
  name: 'netpay admin vendor list',
  summary: 'print every vendor with its keys',
  options: ADMIN_COMMON,
} as const satisfies CliCommand;

const ADMIN_AUDIT = {
  name: 'netpay admin audit',
  summary: 'check the ledger, and every chain on its own',
  more: 'Exit 1 listing the first 20 discrepancies (each naming its chain) on stderr when it does not hold.',
  options: ADMIN_COMMON,
} as const satisfies CliCommand;

const ADMIN_PAYOUTS = {
  name: 'netpay admin payouts',
  summary: 'pay every vendor its settled credit through the bank',
  more:
    'Credit on an epoch whose end is unknown is held for the settlement window in case a take-back claims it. ' +
    'Safe to run from several hosts at once. Exit 1 when a payout failed.',
  options: [
    ...ADMIN_COMMON,
    {
      name: 'settlement-window-seconds',
      value: 'N',
      kind: 'integer',
      defaultText: String(DEFAULT_CONFIG.settlementWindowSeconds),
      description: 'how long credit on an epoch of unknown end is held',
    },
  ],
} as const satisfies CliCommand;

const ADMIN_ROTATE_KEY = {
  name: 'netpay admin rotate-key',
  summary: 'make a new active broker signing key (old keys stay published)',
  options: ADMIN_COMMON,
} as const satisfies CliCommand;

const ADMIN_RECONCILE = {
  name: 'netpay admin reconcile',
  summary: 'settle coin purchases charged at the bank without a coin',
  more:
    'Makes the coin, or refunds the charge when it cannot be made, and prints what it did. Safe while the broker ' +
    'runs. Exit 1 when a purchase was left for later or held for an operator.',
  options: [
    ...ADMIN_COMMON,
    {
      name: 'grace-ms',
      value: 'N',
      kind: 'integer',
      default: String(DEFAULT_RECONCILE_GRACE_MS),
      description: 'settle only purchases older than this',
    },
    {
      name: 'public-url',
      value: 'URL',
      kind: 'url',
      defaultText: 'the URL the broker last started with',
      description: 'the broker URL the touchstones of coins made here name',
    },
  ],
} as const satisfies CliCommand;

export const ADMIN_SUMMARY = "operator commands on the broker's store";

/** `netpay admin <command>`, in the order help lists them. */
export const ADMIN_COMMANDS = [
  ADMIN_VENDOR_ADD,
  ADMIN_VENDOR_LIST,
  ADMIN_AUDIT,
  ADMIN_PAYOUTS,
  ADMIN_ROTATE_KEY,
  ADMIN_RECONCILE,
] as const satisfies readonly CliCommand[];

export type AdminCommand = (typeof ADMIN_COMMANDS)[number];

/** The options of `vendor add` that must be given. */
export const VENDOR_ADD_REQUIRED: readonly CliOption['name'][] = ['id', 'name', 'url', 'release-url', 'public-key'];
