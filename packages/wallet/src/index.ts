/**
 * The Node entry of @netpay/wallet: the browser-safe library plus the file store, the CLI and the bundler.
 */
export * from './browser.ts';
export { buildBrowserBundle } from './bundle.ts';
export { runWallet } from './cli.ts';
export { FileCoinStore } from './file-store.ts';
