/**
 * What `netpay bank` accepts: each option declared once, for both the parser and `--help`.
 */
import { type CliCommand, METRICS_OPTIONS } from '@netpay/service-kit';

export const BANK_COMMAND = {
  name: 'netpay bank',
  summary: 'run the sandbox bank until SIGINT or SIGTERM',
  more:
    'The broker is its merchant, under the API key in <data>/bank-api-key (made on first start). Prometheus ' +
    "metrics are served at /metrics on the admin listener's own port.",
  options: [
    { name: 'host', value: 'HOST', default: '127.0.0.1', description: 'the address to listen on' },
    { name: 'port', value: 'PORT', kind: 'port', default: '4100', description: 'the port to listen on' },
    {
      name: 'data',
      value: 'DIR',
      default: './data',
      description: "the data folder: the broker's API key (bank-api-key), bank.db",
    },
    {
      name: 'db',
      value: 'URL',
      defaultText: 'sqlite:<data>/bank.db',
      description: "the bank's store: sqlite:PATH or postgres://…",
    },
    ...METRICS_OPTIONS,
  ],
} as const satisfies CliCommand;
