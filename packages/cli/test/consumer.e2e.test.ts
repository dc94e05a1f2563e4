/**
 * The packages as an adopter gets them. `npm pack` makes the tarballs of @netpay/protocol, @netpay/vendor-sdk and
 * @netpay/wallet; fresh folders outside the repository install them from the tarballs with npm packages from the
 * registry: an Express vendor on SQLite (no pg installed) and a Fastify vendor on PostgreSQL (no better-sqlite3
 * installed). The apps and the reader's page are the README's code blocks, written out as they are; TypeScript checks
 * them against the published declarations with no error, and plain `node` runs them (ES modules, and CommonJS through
 * require). NetPay itself runs from its built JavaScript (`netpay start` under NODE_ENV=production); the CLI wallet
 * pays each app for a post, and in Chromium the bundled page of another origin pays the Express app.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createTestDatabase, type TestDatabase } from '@netpay/service-kit/testing';
import { browserTestSkip, freePort, GOOD_CARD, launchBrowser } from '@netpay/test-kit';
import { build } from 'esbuild';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = join(ROOT, 'packages/cli/bin/netpay.mjs');
const TSC = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const PUBLISHED = ['protocol', 'vendor-sdk', 'wallet'] as const;
const DEMO_USER = ['--email', 'demo@netpay.test', '--password', 'demo-password'];
const browserSkip = browserTestSkip();
const execFileAsync = promisify(execFile);

/** The environment of a nested npm or node: none of the npm_* settings of an `npm test` that started this run. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_')));
  // The consumer runs published JavaScript: no workspace source condition.
  delete env.NODE_OPTIONS;
  return { ...env, ...extra };
}

async function run(command: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv }) {
  try {
    return await execFileAsync(command, args, {
      cwd: options.cwd,
      env: options.env ?? cleanEnv(),
      maxBuffer: 64 * 1024 * 1024,
      timeout: 600_000,
    });
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${command} ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
}

/** The README's code blocks marked `<!-- consumer: folder/file -->`, by that path. */
function readmeFiles(): Map<string, string> {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const files = new Map<string, string>();
  for (const m of readme.matchAll(/<!-- consumer: (\S+) -->\n```[a-z]*\n([\s\S]*?)```/g)) {
    files.set(m[1] as string, m[2] as string);
  }
  return files;
}

/** A long-running child with its output kept for failure messages. */
function launch(command: string, args: string[], options: { cwd: string; env: NodeJS.ProcessEnv }) {
  const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  child.stdout?.on('data', (c: Buffer) => output.push(c.toString()));
  child.stderr?.on('data', (c: Buffer) => output.push(c.toString()));
  return { child, log: () => output.join('').slice(-6000) };
}

async function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  await exited;
  clearTimeout(timer);
}

/** Waits for a URL to answer at all (any status): the app is listening. */
async function answering(url: string, log: () => string, exited: () => boolean): Promise<number> {
  for (;;) {
    if (exited()) throw new Error(`the app exited:\n${log()}`);
    try {
      return (await fetch(url)).status;
    } catch {
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

describe('the packed packages in a fresh project, paying for real', { timeout: 1_500_000 }, () => {
  const work = mkdtempSync(join(tmpdir(), 'netpay-consumer-'));
  const packs = join(work, 'tarballs');
  const data = join(work, 'netpay-data');
  const expressDir = join(work, 'express');
  const fastifyDir = join(work, 'fastify');
  const base = 5600 + Math.floor(Math.random() * 100);
  const brokerUrl = `http://127.0.0.2:${base}`;
  const tarballs: Record<string, string> = {};
  const apps: Record<'express' | 'fastify', { url: string; child?: ChildProcess; log: () => string }> = {
    express: { url: '', log: () => '' },
    fastify: { url: '', log: () => '' },
  };
  let system: ReturnType<typeof launch> | undefined;
  let shopDb: TestDatabase | undefined;

  /** The netpay command from its built JavaScript, as in production. */
  const netpay = (args: string[]) =>
    run(process.execPath, [BIN, ...args], { cwd: work, env: cleanEnv({ NODE_ENV: 'production' }) });

  before(
    async () => {
      assert.ok(!work.startsWith(ROOT), 'the consumer folders are outside the repository');
      // CI has just built (npm run build); a development tree is built here when its sources changed.
      await run(process.execPath, [join(ROOT, 'scripts/build-packages.mjs'), '--if-stale'], { cwd: ROOT });
      mkdirSync(packs);
      await run('npm', ['pack', ...PUBLISHED.map((p) => `./packages/${p}`), '--pack-destination', packs], {
        cwd: ROOT,
      });
      for (const file of readdirSync(packs)) {
        const m = /^netpay-(.+)-\d+\.\d+\.\d+\.tgz$/.exec(file);
        if (m) tarballs[m[1] as string] = join(packs, file);
      }
      assert.deepEqual(Object.keys(tarballs).sort(), [...PUBLISHED].sort());

      const project = (dir: string, installs: string[]) => {
        mkdirSync(dir);
        const manifest = { name: 'consumer', private: true, type: 'module', allowScripts: { 'better-sqlite3': true } };
        writeFileSync(join(dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
        return run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', ...installs], { cwd: dir });
      };
      const installed = Promise.all([
        project(expressDir, [
          tarballs.protocol as string,
          tarballs['vendor-sdk'] as string,
          tarballs.wallet as string,
          'express@^5',
          'better-sqlite3@^12',
          '@types/express@^5',
          '@types/node@^20.19',
        ]),
        project(fastifyDir, [
          tarballs.protocol as string,
          tarballs['vendor-sdk'] as string,
          'fastify@^5',
          'pg@^8',
          '@types/node@^20.19',
        ]),
      ]);
      installed.catch(() => {}); // awaited below; a failure must not count as unhandled meanwhile

      // NetPay starts while npm installs.
      system = launch(process.execPath, [BIN, 'start', '--data', data, '--port-base', String(base)], {
        cwd: work,
        env: cleanEnv({ NODE_ENV: 'production', NETPAY_LOG_LEVEL: 'warn' }),
      });
      for (;;) {
        if (system.child.exitCode !== null) throw new Error(`netpay start exited:\n${system.log()}`);
        if (system.log().includes('NetPay is running') && existsSync(join(data, 'demo.json'))) break;
        await new Promise((r) => setTimeout(r, 250));
      }
      await installed;
      for (const [path, text] of readmeFiles()) writeFileSync(join(work, path), text);
    },
    { timeout: 1_200_000 },
  );

  after(async () => {
    for (const app of Object.values(apps)) await stop(app.child);
    await stop(system?.child);
    await shopDb?.drop();
    rmSync(work, { recursive: true, force: true });
  });

  test('the README holds the three files, and the tarballs are what an adopter installs', () => {
    assert.deepEqual([...readmeFiles().keys()].sort(), ['express/app.mjs', 'express/page.mjs', 'fastify/app.mjs']);
    const installed = (dir: string, name: string) =>
      JSON.parse(readFileSync(join(dir, 'node_modules', name, 'package.json'), 'utf8')) as Record<string, unknown>;
    for (const name of PUBLISHED) {
      const manifest = installed(expressDir, `@netpay/${name}`);
      assert.equal(manifest.private, undefined, `${name} is not private`);
      assert.equal(manifest.license, 'MIT');
      assert.ok(existsSync(join(expressDir, 'node_modules/@netpay', name, 'LICENSE')));
      assert.ok(!existsSync(join(expressDir, 'node_modules/@netpay', name, 'src')), 'no TypeScript sources shipped');
    }
    const sdk = installed(expressDir, '@netpay/vendor-sdk');
    assert.deepEqual(Object.keys(sdk.dependencies as object).sort(), [
      '@netpay/protocol',
      '@sinclair/typebox',
      'kysely',
    ]);
    // Each vendor installed the engine it uses and not the other one, nor the other framework.
    assert.ok(existsSync(join(expressDir, 'node_modules/better-sqlite3')));
    assert.ok(!existsSync(join(expressDir, 'node_modules/pg')));
    assert.ok(!existsSync(join(expressDir, 'node_modules/fastify')));
    assert.ok(existsSync(join(fastifyDir, 'node_modules/pg')));
    assert.ok(!existsSync(join(fastifyDir, 'node_modules/better-sqlite3')));
    assert.ok(!existsSync(join(fastifyDir, 'node_modules/express')));
  });

  test("TypeScript checks the README's files against the published declarations with no error", async () => {
    const tsconfig = (lib: string[]) => ({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        lib,
        types: ['node'],
        allowJs: true,
        checkJs: true,
        noEmit: true,
        strict: true,
        skipLibCheck: false,
      },
      include: ['*.mjs'],
    });
    writeFileSync(join(expressDir, 'tsconfig.json'), JSON.stringify(tsconfig(['ES2022', 'DOM', 'DOM.Iterable'])));
    writeFileSync(join(fastifyDir, 'tsconfig.json'), JSON.stringify(tsconfig(['ES2022'])));
    for (const dir of [expressDir, fastifyDir]) {
      const { stdout } = await run(process.execPath, [TSC, '-p', dir], { cwd: dir });
      assert.equal(stdout.trim(), '', `no type errors in ${dir}`);
    }
  });

  test('CommonJS: require() gives the same packages', async () => {
    const script = [
      "const sdk = require('@netpay/vendor-sdk');",
      "const wallet = require('@netpay/wallet');",
      "const protocol = require('@netpay/protocol');",
      'console.log(JSON.stringify([typeof sdk.netpayExpress, typeof sdk.createSpendStore,',
      '  typeof wallet.createWallet, typeof protocol.verifyPayword]));',
    ].join('\n');
    const { stdout } = await run(process.execPath, ['-e', script], { cwd: expressDir });
    assert.deepEqual(JSON.parse(stdout), ['function', 'function', 'function', 'function']);
  });

  test('a spend store on an engine the project did not install names the package to install', async () => {
    const script = [
      "const { createSpendStore } = require('@netpay/vendor-sdk');",
      "createSpendStore('sqlite:./data/other.db').then(() => console.log('opened'), (e) => console.log(e.message));",
    ].join('\n');
    const { stdout } = await run(process.execPath, ['-e', script], { cwd: fastifyDir });
    assert.equal(stdout.trim(), 'install better-sqlite3 to use a sqlite: database (npm install better-sqlite3)');
    assert.ok(!existsSync(join(fastifyDir, 'data/other.db')), 'nothing was made before the engine loaded');
  });

  test('each app runs under plain node and takes a NetPay payment from the CLI wallet', async () => {
    shopDb = await createTestDatabase('postgres');
    for (const [kind, dir, id] of [
      ['express', expressDir, 'my-blog'],
      ['fastify', fastifyDir, 'my-shop'],
    ] as const) {
      // The README's steps: make the key with the SDK (through require), register it with the operator command.
      await run(process.execPath, ['-e', "require('@netpay/vendor-sdk').loadOrCreateVendorKey('./data')"], {
        cwd: dir,
      });
      const { publicKey } = JSON.parse(readFileSync(join(dir, 'data/vendor-key.json'), 'utf8')) as {
        publicKey: string;
      };
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      const registered = await netpay([
        'admin',
        'vendor',
        'add',
        '--data',
        data,
        '--id',
        id,
        '--name',
        `Consumer ${kind}`,
        '--url',
        `${url}/`,
        '--release-url',
        `${url}/netpay/release`,
        '--public-key',
        publicKey,
      ]);
      const { apiKey } = JSON.parse(registered.stdout) as { apiKey: string };
      const app = launch(process.execPath, ['app.mjs'], {
        cwd: dir,
        env: cleanEnv({
          PORT: String(port),
          NETPAY_BROKER_URL: brokerUrl,
          NETPAY_API_KEY: apiKey,
          DATABASE_URL: shopDb.url,
        }),
      });
      apps[kind] = { url, child: app.child, log: app.log };
      const status = await answering(`${url}/posts/1`, app.log, () => app.child.exitCode !== null);
      assert.equal(status, 402, `an unpaid post is 402 at the ${kind} app`);
      // The paywall's "Pay with NetPay" button: connect sends the reader's browser on to the broker.
      const connect = await fetch(`${url}/netpay/connect?return_to=%2Fposts%2F1`, {
        redirect: 'manual',
        headers: { 'sec-fetch-site': 'same-origin', 'sec-fetch-mode': 'navigate', referer: `${url}/posts/1` },
      });
      assert.equal(connect.status, 303, `${kind}: /netpay/connect is mounted`);
      assert.ok(connect.headers.get('location')?.startsWith(`${brokerUrl}/`), `${kind}: connect goes to the broker`);
    }

    const walletFile = join(work, 'wallet.json');
    const wallet = (args: string[]) => netpay(['wallet', '--file', walletFile, ...args]);
    await wallet(['login', ...DEMO_USER, '--data', data]);
    await wallet(['buy', '--amount', '100']);
    for (const kind of ['express', 'fastify'] as const) {
      const app = apps[kind];
      const { stdout, stderr } = await wallet(['get', `${app.url}/posts/1`]).catch((error: Error) => {
        throw new Error(`${error.message}\n--- ${kind} app\n${app.log()}`);
      });
      const body = JSON.parse(stdout) as { post: unknown; paid: { charged: boolean; balanceMinor: number } };
      assert.deepEqual(body.post, kind === 'express' ? '1' : { id: '1' });
      assert.equal(body.paid.charged, true, `the ${kind} app was paid`);
      assert.match(stderr, /paid NZ\$0\.03 to my-(blog|shop)/, 'the wallet says what it paid');
    }
  });

  test('a page of another origin bundles @netpay/wallet and pays the Express app', { skip: browserSkip }, async () => {
    assert.ok(apps.express.child, 'the Express app runs (previous test)');
    const bundled = await build({
      absWorkingDir: expressDir,
      entryPoints: ['page.mjs'],
      bundle: true,
      format: 'esm',
      platform: 'browser',
      write: false,
      logLevel: 'silent',
    });
    const script = bundled.outputFiles[0]?.text ?? '';
    assert.ok(!script.includes('netpay-source'), 'bundled from the published files');
    const page: Server = createServer((req, res) => {
      if (req.url === '/page.js') {
        res.writeHead(200, { 'content-type': 'text/javascript' });
        return res.end(script);
      }
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<!doctype html><title>reader</title><script type="module" src="/page.js"></script>');
    });
    await new Promise<void>((resolve) => page.listen(0, '127.0.0.1', resolve));
    const origin = `http://localhost:${(page.address() as AddressInfo).port}`;
    const browser = await launchBrowser();
    try {
      const tab = await browser.newPage();
      const errors: string[] = [];
      tab.on('pageerror', (e) => errors.push(String(e)));
      await tab.goto(`${origin}/?broker=${encodeURIComponent(brokerUrl)}`);
      await tab.waitForFunction('typeof globalThis.read === "function"');
      // A string, not a function: the page's own code does the work.
      const result = (await tab.evaluate(`(async () => {
        await wallet.login('demo@netpay.test', 'demo-password');
        await wallet.buy({ amountMinor: 20, card: ${JSON.stringify(GOOD_CARD)} });
        return { origin: location.origin, ...(await read(${JSON.stringify(`${apps.express.url}/posts/7`)})),
          shown: document.body.textContent };
      })()`)) as { origin: string; status: number; receipt: { balanceMinor: number }; shown: string };
      assert.equal(result.origin, origin);
      assert.notEqual(new URL(origin).origin, new URL(apps.express.url).origin, 'the page pays another origin');
      assert.equal(result.status, 200);
      assert.equal(result.receipt.balanceMinor, 17, 'the NetPay-Receipt was readable across origins');
      assert.match(result.shown, /"post":"7"/);
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
      await new Promise((resolve) => page.close(resolve));
    }
  });
});
