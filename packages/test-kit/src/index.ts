// The one test world (issue 9): every test that needs a port, a cookie jar, a browser or running services takes
// them from here, so there is one way to start a bank, a broker or a vendor per database engine.
export { type BankUnderTest, startBank } from './bank.ts';
export { browserTestSkip, launchBrowser } from './browser.ts';
export {
  type BrokerOptions,
  type BrokerUnderTest,
  item,
  proof,
  type RegisteredVendor,
  startBroker,
} from './broker.ts';
export { CookieJar } from './cookie-jar.ts';
export { freePort } from './free-port.ts';
export {
  type CallOptions,
  call,
  DECLINED_CARD,
  type Got,
  GOOD_CARD,
  get,
  NO_FUNDS_CARD,
  type Reply,
} from './http.ts';
export { articleRoutes, startVendor, type TestVendor, type VendorIdentity, type VendorOptions } from './vendor.ts';
export { startWorld, type World, type WorldOptions } from './world.ts';
export { type ReleaseSigner, startReleaseServer } from './release-server.ts';
