// The vendor SDK's tests start their bank, broker and vendors from the one test world (@netpay/test-kit); this file
// keeps the names they have always imported.
export {
  articleRoutes,
  freePort,
  GOOD_CARD,
  type Got,
  get,
  startWorld,
  type TestVendor,
  type VendorIdentity,
  type World,
} from '@netpay/test-kit';
