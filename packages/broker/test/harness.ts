// The broker's tests start their bank and broker from the one test world (@netpay/test-kit); this file keeps the
// names they have always imported.
export { PaywordChain } from '@netpay/protocol';
export {
  type BankUnderTest,
  type BrokerUnderTest,
  type CallOptions,
  call,
  DECLINED_CARD,
  freePort,
  GOOD_CARD,
  item,
  NO_FUNDS_CARD,
  proof,
  type RegisteredVendor as TestVendor,
  type Reply,
  startBank,
  startBroker,
} from '@netpay/test-kit';
