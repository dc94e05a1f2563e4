import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../bin/netpay.mjs', import.meta.url));

/**
 * Registers a vendor through the operator command, exactly as an operator would from the shell,
 * so the start command exercises the same path the README documents.
 */
export async function registerVendorInDataDir(
  dataDir: string,
  vendor: { id: string; name: string; url: string; releaseUrl: string; publicKey: string; keyId: string },
): Promise<string> {
  const args = [
    BIN,
    'admin',
    'vendor',
    'add',
    '--data',
    dataDir,
    '--id',
    vendor.id,
    '--name',
    vendor.name,
    '--url',
    vendor.url,
    '--release-url',
    vendor.releaseUrl,
    '--public-key',
    vendor.publicKey,
    '--key-id',
    vendor.keyId,
  ];
  const result = spawnSync(process.execPath, args, { encoding: 'utf8' });
  if (result.status !== 0) {
    throw new Error(`registering vendor ${vendor.id} failed: ${result.stderr || result.stdout}`);
  }
  const printed = JSON.parse(result.stdout) as { apiKey?: string };
  if (!printed.apiKey) throw new Error(`registering vendor ${vendor.id} printed no apiKey`);
  return printed.apiKey;
}
