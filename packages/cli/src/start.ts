import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

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
 * `netpay start`: the whole system on one machine with SQLite in a data folder. Each part runs as
 * its own process, as in production, so a crash or SIGKILL of one is what it would be for real.
 * Re-running it reuses the data: keys, vendors, coins and balances survive.
 */
export async function runStart(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      data: { type: 'string', default: './data' },
      host: { type: 'string', default: '127.0.0.1' },
      // Tests run a whole second system beside a developer's: everything moves with the base port.
      'port-base': { type: 'string', default: '4000' },
      'no-vendors': { type: 'boolean', default: false },
      'lease-ttl-seconds': { type: 'string' },
    },
  });
  const base = Number(values['port-base']);
  if (!Number.isInteger(base) || base < 1024 || base > 65000) throw new Error('--port-base must be a port number');
  const ports = { broker: base, bank: base + 100, vendors: [base + 1, base + 2] };
  const dataDir = resolve(values.data);
  mkdirSync(dataDir, { recursive: true });
  const host = values.host;
  const bankUrl = `http://${host}:${ports.bank}`;
  const brokerUrl = `http://${host}:${ports.broker}`;
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

  launch('bank', ['bank', '--data', dataDir, '--host', host, '--port', String(ports.bank)]);
  await waitHealthy(`${bankUrl}/healthz`);
  launch('broker', [
    'broker',
    '--data',
    dataDir,
    '--host',
    host,
    '--port',
    String(ports.broker),
    '--bank-url',
    bankUrl,
    ...(values['lease-ttl-seconds'] ? ['--lease-ttl-seconds', values['lease-ttl-seconds']] : []),
  ]);
  await waitHealthy(`${brokerUrl}/healthz`);

  const vendors: Array<{ id: string; name: string; url: string; apiKey: string }> = [];
  if (!values['no-vendors']) {
    for (const [i, site] of DEMO_SITES.entries()) {
      const port = ports.vendors[i] ?? site.port;
      const url = `http://${host}:${port}`;
      const apiKey = await ensureVendorRegistered(dataDir, site, url);
      vendors.push({ id: site.id, name: site.name, url, apiKey });
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
      ]);
    }
    await Promise.all(vendors.map((v) => waitHealthy(`${v.url}/healthz`)));
  }
  const customer = await ensureDemoCustomer(brokerUrl);

  const demo = {
    bank: { url: bankUrl },
    broker: { url: brokerUrl, api: `${brokerUrl}/api/v1` },
    vendors,
    customer,
  };
  writeFileSync(join(dataDir, 'demo.json'), `${JSON.stringify(demo, null, 2)}\n`);
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

/** Makes the vendor's key on first run and registers it with the broker once; later runs reuse both. */
async function ensureVendorRegistered(dataDir: string, site: DemoSite, url: string): Promise<string> {
  const dir = join(dataDir, 'vendors', site.id);
  mkdirSync(dir, { recursive: true });
  const apiKeyFile = join(dir, 'api-key');
  if (existsSync(apiKeyFile)) return readFileSync(apiKeyFile, 'utf8').trim();
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
  writeFileSync(apiKeyFile, `${apiKey}\n`, { mode: 0o600 });
  return apiKey;
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
