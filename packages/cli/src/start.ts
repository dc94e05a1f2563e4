import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type CliCommand,
  METRICS_PORT_OFFSET,
  makePrivateDir,
  parseCommandLine,
  restrictUmask,
  tightenTree,
  UsageError,
  writePrivateFile,
} from '@netpay/service-kit';

const BIN = fileURLToPath(new URL('../bin/netpay.mjs', import.meta.url));

export const DEMO_CUSTOMER = { email: 'demo@netpay.test', password: 'demo-password' };

interface DemoSite {
  id: string;
  name: string;
  port: number;
}

export const DEMO_SITES: DemoSite[] = [
  { id: 'daily-planet', name: 'The Daily Planet', port: 4001 },
  { id: 'the-bugle', name: 'The Bugle', port: 4002 },
];

/**
 * Each service on its own loopback address. Cookies are kept per host name, not per port, so on one address
 * every newspaper would be sent the reader's broker session cookie; on its own address no site sees another's.
 * Linux answers on all of 127.0.0.0/8 without setup; other systems may need an alias (README).
 */
export const DEMO_HOSTS = {
  broker: '127.0.0.2',
  vendors: ['127.0.0.3', '127.0.0.4'],
  bank: '127.0.0.5',
};

/** Where each service of the demo listens: one host per service, or the one `--host` for all. */
interface DemoHosts {
  broker: string;
  bank: string;
  vendors: string[];
}

function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/**
 * Where a service's admin listener (Prometheus `/metrics`) goes: its own host when that is a loopback address, so
 * the demo's services stay apart, else 127.0.0.1, never a public address; on its public port + 200.
 */
function adminOf(host: string, port: number): { args: string[]; metricsUrl: string } {
  const loopback = /^127\./.test(host) || host === '::1' || host === 'localhost';
  const metricsHost = loopback ? host : '127.0.0.1';
  const metricsPort = port + METRICS_PORT_OFFSET;
  return {
    args: ['--metrics-host', metricsHost, '--metrics-port', String(metricsPort)],
    metricsUrl: `http://${urlHost(metricsHost)}:${metricsPort}/metrics`,
  };
}

export const START_COMMAND = {
  name: 'netpay start',
  summary: 'the whole system on this machine, each part as its own process, until Ctrl-C',
  more:
    "Each service gets its own loopback address, so no newspaper is sent the broker's cookies: broker " +
    '127.0.0.2:4000, The Daily Planet 127.0.0.3:4001, The Bugle 127.0.0.4:4002, bank 127.0.0.5:4100 (metrics on ' +
    'each port + 200). A system without those addresses falls back to 127.0.0.1 with a warning. Everything is ' +
    'kept in the data folder (0700), and <data>/demo.json says where each service is, for the other commands.',
  options: [
    { name: 'data', value: 'DIR', default: './data', description: 'the data folder: databases, keys, demo.json' },
    // For machines without 127.0.0.0/8, or a container listening on 0.0.0.0.
    {
      name: 'host',
      value: 'HOST',
      description: 'one address for every service (the sites then share cookies)',
    },
    { name: 'broker-host', value: 'HOST', defaultText: DEMO_HOSTS.broker, description: "the broker's address" },
    { name: 'bank-host', value: 'HOST', defaultText: DEMO_HOSTS.bank, description: "the bank's address" },
    {
      name: 'vendor-hosts',
      value: 'HOST,HOST',
      defaultText: DEMO_HOSTS.vendors.join(','),
      description: "the newspapers' addresses, in order",
    },
    // Tests run a whole second system beside a developer's: everything moves with the base port.
    {
      name: 'port-base',
      value: 'PORT',
      kind: 'port',
      default: '4000',
      description: "the broker's port; the newspapers take the next two, the bank this + 100",
    },
    { name: 'no-vendors', description: 'start only the bank and the broker' },
    {
      name: 'lease-ttl-seconds',
      value: 'N',
      kind: 'integer',
      defaultText: "the broker's",
      description: "how long a vendor's hold on a coin lasts without renewal",
    },
  ],
} as const satisfies CliCommand;

/**
 * `netpay start`: the whole system on one machine with SQLite in a data folder. Each part runs as
 * its own process, as in production, so a crash or SIGKILL of one is what it would be for real.
 * Re-running it reuses the data: keys, vendors, coins and balances survive.
 */
export async function runStart(argv: string[]): Promise<number> {
  const { values } = parseCommandLine(START_COMMAND, argv);
  const base = Number(values['port-base']);
  if (base < 1024 || base > 65000) throw new UsageError(START_COMMAND.name, '--port-base must be in 1024..65000');
  const ports = { broker: base, bank: base + 100, vendors: [base + 1, base + 2] };
  // Keys, tokens and databases: nothing in the data folder is readable by another user, from the first byte.
  restrictUmask();
  const dataDir = resolve(values.data);
  makePrivateDir(dataDir);
  tightenTree(dataDir);
  const hosts = await demoHosts(values);
  const bankUrl = `http://${urlHost(hosts.bank)}:${ports.bank}`;
  const brokerUrl = `http://${urlHost(hosts.broker)}:${ports.broker}`;
  const children: ChildProcess[] = [];
  let stopping = false;

  const stopAll = async (code: number) => {
    if (stopping) return;
    stopping = true;
    // Vendors first, then the broker, then the bank: each stops taking work before what it depends on goes.
    for (const child of [...children].reverse()) {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((r) => {
          const t = setTimeout(() => {
            child.kill('SIGKILL');
            r(null);
          }, 5000);
          child.once('exit', () => {
            clearTimeout(t);
            r(null);
          });
        });
      }
    }
    process.exit(code);
  };
  process.once('SIGINT', () => void stopAll(0));
  process.once('SIGTERM', () => void stopAll(0));

  const launch = (name: string, args: string[]) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const prefix = `[${name}] `;
    const forward = (stream: NodeJS.ReadableStream | null, out: NodeJS.WriteStream) =>
      stream?.on('data', (chunk: Buffer) => {
        for (const line of chunk.toString().split('\n')) if (line) out.write(prefix + line + '\n');
      });
    forward(child.stdout, process.stdout);
    forward(child.stderr, process.stderr);
    child.once('exit', (code, signal) => {
      if (!stopping) {
        process.stderr.write(`${prefix}exited (${signal ?? code}); stopping the rest\n`);
        void stopAll(1);
      }
    });
    children.push(child);
    return child;
  };

  const bankAdmin = adminOf(hosts.bank, ports.bank);
  const brokerAdmin = adminOf(hosts.broker, ports.broker);
  launch('bank', ['bank', '--data', dataDir, '--host', hosts.bank, '--port', String(ports.bank), ...bankAdmin.args]);
  await waitHealthy(`${bankUrl}/healthz`);
  launch('broker', [
    'broker',
    '--data',
    dataDir,
    '--host',
    hosts.broker,
    '--port',
    String(ports.broker),
    '--bank-url',
    bankUrl,
    ...brokerAdmin.args,
    ...(values['lease-ttl-seconds'] ? ['--lease-ttl-seconds', values['lease-ttl-seconds']] : []),
  ]);
  await waitHealthy(`${brokerUrl}/healthz`);

  // The vendors' API keys stay in their 0600 files (`apiKeyFile`); demo.json, which tools read, names only where.
  const vendors: Array<{ id: string; name: string; url: string; apiKeyFile: string; metricsUrl: string }> = [];
  if (!values['no-vendors']) {
    for (const [i, site] of DEMO_SITES.entries()) {
      const port = ports.vendors[i] ?? site.port;
      const host = hosts.vendors[i] ?? hosts.broker;
      const url = `http://${urlHost(host)}:${port}`;
      const apiKeyFile = await ensureVendorRegistered(dataDir, site, url);
      const admin = adminOf(host, port);
      vendors.push({ id: site.id, name: site.name, url, apiKeyFile, metricsUrl: admin.metricsUrl });
      launch(site.id, [
        'vendor',
        '--site',
        site.id,
        '--data',
        dataDir,
        '--host',
        host,
        '--port',
        String(port),
        '--broker-url',
        brokerUrl,
        ...admin.args,
      ]);
    }
    await Promise.all(vendors.map((v) => waitHealthy(`${v.url}/healthz`)));
  }
  const customer = await ensureDemoCustomer(brokerUrl);

  const demo = {
    bank: { url: bankUrl, metricsUrl: bankAdmin.metricsUrl },
    broker: { url: brokerUrl, api: `${brokerUrl}/api/v1`, metricsUrl: brokerAdmin.metricsUrl },
    vendors,
    customer,
  };
  writePrivateFile(join(dataDir, 'demo.json'), `${JSON.stringify(demo, null, 2)}\n`);
  process.stdout.write(
    [
      '',
      'NetPay is running.',
      `  Broker (buy coins, wallet, history): ${brokerUrl}/`,
      ...vendors.map((v) => `  ${v.name.padEnd(33)} ${v.url}/`),
      `  Operator view:                      ${brokerUrl}/operator  (token: ${join(dataDir, 'operator-token')})`,
      `  Sandbox bank (API, statements):     ${bankUrl}/v1/statement`,
      '',
      `Log in as ${customer.email} / ${customer.password}, buy NZ$2.00 with card 4242 4242 4242 4242 (any future expiry,`,
      'any CVC), then read articles at both newspapers; the balance carries over between them.',
      `Details: ${join(dataDir, 'demo.json')}. Ctrl-C stops everything.`,
      '',
    ].join('\n'),
  );
  await new Promise(() => {});
  return 0;
}

async function waitHealthy(url: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(url);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${url}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Makes the vendor's key on first run and registers it with the broker; later runs reuse both, unless the site
 * moved to another address (the broker must know its new release URL). Returns the API key file (mode 0600),
 * which the vendor process reads.
 */
async function ensureVendorRegistered(dataDir: string, site: DemoSite, url: string): Promise<string> {
  const dir = join(dataDir, 'vendors', site.id);
  makePrivateDir(dir);
  const apiKeyFile = join(dir, 'api-key');
  const urlFile = join(dir, 'registered-url');
  const registeredUrl = existsSync(urlFile) ? readFileSync(urlFile, 'utf8').trim() : undefined;
  // A folder from before `registered-url` existed registers again, in case the site was on another address.
  if (existsSync(apiKeyFile) && registeredUrl === url) return apiKeyFile;
  const { loadOrCreateVendorKey } = await import('@netpay/vendor-sdk');
  const { b64uEncode } = await import('@netpay/protocol');
  const key = await loadOrCreateVendorKey(dir);
  const { registerVendorInDataDir } = await import('./register-vendor.ts');
  const apiKey = await registerVendorInDataDir(dataDir, {
    id: site.id,
    name: site.name,
    url: `${url}/`,
    releaseUrl: `${url}/netpay/release`,
    publicKey: b64uEncode(key.publicKey),
    keyId: key.keyId,
  });
  writePrivateFile(apiKeyFile, `${apiKey}\n`);
  writePrivateFile(urlFile, `${url}\n`);
  return apiKeyFile;
}

/**
 * The demo's addresses: `--host` for all, else each service's own (`--broker-host` and so on, default
 * DEMO_HOSTS). Where the system cannot listen on the extra loopback addresses (macOS without an alias), all
 * services go on 127.0.0.1, with a warning that the sites then share cookies.
 */
async function demoHosts(values: {
  host?: string | undefined;
  'broker-host'?: string | undefined;
  'bank-host'?: string | undefined;
  'vendor-hosts'?: string | undefined;
}): Promise<DemoHosts> {
  if (values.host !== undefined) {
    return { broker: values.host, bank: values.host, vendors: DEMO_SITES.map(() => values.host as string) };
  }
  const hosts: DemoHosts = {
    broker: values['broker-host'] ?? DEMO_HOSTS.broker,
    bank: values['bank-host'] ?? DEMO_HOSTS.bank,
    vendors: values['vendor-hosts']?.split(',').map((h) => h.trim()) ?? DEMO_HOSTS.vendors,
  };
  const unusable: string[] = [];
  for (const host of new Set([hosts.broker, hosts.bank, ...hosts.vendors])) {
    if (!(await canListenOn(host))) unusable.push(host);
  }
  if (unusable.length === 0) return hosts;
  process.stderr.write(
    `netpay start: cannot listen on ${unusable.join(', ')}; running every service on 127.0.0.1, where the ` +
      'newspapers are sent the broker session cookie. To keep the sites apart, add the loopback addresses ' +
      '(macOS: sudo ifconfig lo0 alias 127.0.0.2 up, and so on for .3 .4 .5), or choose others with --broker-host, ' +
      '--bank-host and --vendor-hosts.\n',
  );
  return { broker: '127.0.0.1', bank: '127.0.0.1', vendors: DEMO_SITES.map(() => '127.0.0.1') };
}

/** True when this machine lets a process listen on `host` (any free port). */
function canListenOn(host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(0, host, () => server.close(() => resolve(true)));
  });
}

async function ensureDemoCustomer(brokerUrl: string): Promise<{ email: string; password: string }> {
  try {
    await fetch(`${brokerUrl}/api/v1/customers`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(DEMO_CUSTOMER),
    });
  } catch {
    // The broker answered healthz a moment ago; a failure here only means no demo customer.
  }
  return DEMO_CUSTOMER;
}
