import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  type CliCommand,
  commandHelp,
  findSubcommand,
  parseCommandLine,
  readDemoFile,
  UsageError,
} from '../src/index.ts';

const COMMAND = {
  name: 'netpay thing',
  summary: 'does a thing',
  options: [
    { name: 'data', value: 'DIR', default: './data', description: 'the data folder' },
    { name: 'key', value: 'B64U', description: 'a key' },
    { name: 'port', value: 'PORT', kind: 'port', description: 'a port' },
    { name: 'url', value: 'URL', kind: 'url', description: 'a URL' },
    { name: 'dry-run', description: 'change nothing' },
  ],
} as const satisfies CliCommand;

const usage = (argv: string[]) => {
  try {
    parseCommandLine(COMMAND, argv);
  } catch (error) {
    assert.ok(error instanceof UsageError);
    return error.line();
  }
  assert.fail(`${argv.join(' ')} was accepted`);
};

describe('one declaration per command', () => {
  test('values, defaults, flags, --name=value, and a value that starts with a dash', () => {
    const { values, positionals, help, version } = parseCommandLine(COMMAND, [
      '--key',
      '-o29x',
      '--port=0',
      '--dry-run',
    ]);
    assert.deepEqual(values, { data: './data', key: '-o29x', port: '0', url: undefined, 'dry-run': true });
    assert.deepEqual([positionals, help, version], [[], false, false]);
    assert.equal(parseCommandLine(COMMAND, ['-h']).help, true);
    assert.equal(parseCommandLine(COMMAND, ['--version']).version, true);
    assert.equal(parseCommandLine(COMMAND, ['--dry-run']).values['dry-run'], true);
    assert.equal(parseCommandLine(COMMAND, []).values['dry-run'], false);
  });

  test('every mistake is one line naming the command and its help', () => {
    assert.equal(usage(['--nope']), 'netpay thing: unknown option --nope (see netpay thing --help)');
    assert.equal(usage(['-x']), 'netpay thing: unknown option -x (see netpay thing --help)');
    assert.equal(usage(['--key']), 'netpay thing: --key needs a value (B64U) (see netpay thing --help)');
    assert.equal(usage(['--dry-run=yes']), 'netpay thing: --dry-run takes no value (see netpay thing --help)');
    assert.equal(
      usage(['--port', '70000']),
      "netpay thing: --port must be a port number (0-65535) (got '70000') (see netpay thing --help)",
    );
    assert.equal(
      usage(['--url', 'ftp://x']),
      "netpay thing: --url must be an http(s) URL (got 'ftp://x') (see netpay thing --help)",
    );
    assert.equal(usage(['extra']), "netpay thing: unexpected argument 'extra' (see netpay thing --help)");
    assert.equal(usage(['--', '--key']), "netpay thing: unexpected argument '--key' (see netpay thing --help)");
  });

  test('help lists every option with its value and default', () => {
    const help = commandHelp(COMMAND);
    for (const line of ['--data DIR', '--key B64U', '--port PORT', '--url URL', '--dry-run', '-h, --help', '--version'])
      assert.match(help, new RegExp(`^  ${line} `, 'm'));
    assert.match(help, /the data folder \(default \.\/data\)/);
  });

  test('a subcommand is found by its words, the longest first, the group itself last', () => {
    const group = [
      { name: 'netpay v', summary: 'run', options: [] },
      { name: 'netpay v redeem', summary: 'redeem', options: [] },
      { name: 'netpay v redeem all', summary: 'all', options: [] },
    ] as const satisfies readonly CliCommand[];
    assert.equal(findSubcommand('netpay v', group, ['redeem', 'all', '--x'])?.command.summary, 'all');
    assert.deepEqual(findSubcommand('netpay v', group, ['redeem', '--x'])?.rest, ['--x']);
    assert.equal(findSubcommand('netpay v', group, ['--site', 'redeem'])?.command.summary, 'run');
  });
});

describe('demo.json', () => {
  test('absent is undefined; key files are read from the data folder; a broken file is an error', () => {
    const dir = mkdtempSync(join(tmpdir(), 'netpay-demo-file-'));
    try {
      assert.equal(readDemoFile(dir), undefined);
      writeFileSync(
        join(dir, 'demo.json'),
        JSON.stringify({
          bank: { url: 'http://127.0.0.5:4100/' },
          broker: { url: 'http://127.0.0.2:4000', api: 'http://127.0.0.2:4000/api/v1' },
          vendors: [{ id: 'a', url: 'http://127.0.0.3:4001', apiKeyFile: 'vendors/a/api-key' }],
        }),
      );
      assert.deepEqual(readDemoFile(dir), {
        bank: { url: 'http://127.0.0.5:4100' },
        broker: { url: 'http://127.0.0.2:4000', api: 'http://127.0.0.2:4000/api/v1' },
        vendors: [{ id: 'a', url: 'http://127.0.0.3:4001', apiKeyFile: join(dir, 'vendors/a/api-key') }],
      });
      writeFileSync(join(dir, 'demo.json'), '{"bank":{"url":"nowhere"}}');
      assert.throws(() => readDemoFile(dir), /demo\.json: bank\.url is not a URL/);
      writeFileSync(join(dir, 'demo.json'), '{');
      assert.throws(() => readDemoFile(dir), /demo\.json is not JSON/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
