import { fileURLToPath, pathToFileURL } from 'node:url';

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
  // From the sources (the workspace) the entry is browser.ts and the protocol's sources are taken through the
  // workspace's export condition; from the built package the entry is the dist/browser.js beside this file.
  const fromSources = import.meta.url.endsWith('.ts');
  await build({
    entryPoints: [fileURLToPath(new URL(fromSources ? './browser.ts' : './browser.js', import.meta.url))],
    ...(fromSources ? { conditions: ['netpay-source'] } : {}),
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

// `node --import tsx src/bundle.ts OUT_FILE` (the package's `build:browser` script).
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const out = process.argv[2] ?? 'dist/netpay-wallet.js';
  // No top-level await: the package is also built as CommonJS.
  void buildBrowserBundle(out, { minify: true }).then(() => process.stdout.write(`wrote ${out}\n`));
}
