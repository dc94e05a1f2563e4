import { fileURLToPath } from 'node:url';

/**
 * Bundles the browser entry (`src/browser.ts`, protocol and its dependencies included) into one ES module file with
 * esbuild, for a page to `import { createWallet, IndexedDbCoinStore } from './netpay-wallet.js'`. Node only.
 *
 * @example
 * await buildBrowserBundle('/tmp/netpay-wallet.js');
 */
export async function buildBrowserBundle(outFile: string, options: { minify?: boolean } = {}): Promise<void> {
  // esbuild is loaded only when bundling, so importing the wallet never needs it.
  const { build } = await import('esbuild');
  await build({
    entryPoints: [fileURLToPath(new URL('./browser.ts', import.meta.url))],
    outfile: outFile,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: options.minify ?? false,
    sourcemap: false,
    logLevel: 'silent',
  });
}
