import { browserTestSkip, CHROMIUM_LAUNCH_OPTIONS } from '@netpay/service-kit/testing';
import { type Browser, chromium } from 'playwright-core';

export { browserTestSkip };

/**
 * Headless Chromium with the options these machines need (service-kit's CHROMIUM_LAUNCH_OPTIONS). Call it only
 * when browserTestSkip() is false: a test with no browser skips with that reason instead.
 */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch(CHROMIUM_LAUNCH_OPTIONS);
}
