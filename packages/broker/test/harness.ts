// The broker's tests start their bank and broker from the one test world (@netpay/test-kit); this file keeps the
// names they have always imported.
import { after, before } from 'node:test';
import type { DatabaseEngine } from '@netpay/service-kit';
import { type BankUnderTest, type BrokerUnderTest, startBank, startBroker } from '@netpay/test-kit';

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

/**
 * A bank and a broker on `engine` for the suite it is called in: started before its first test, closed after its
 * last. Read them in tests (`suite.broker.api`), not when the suite is declared.
 *
 * @example
 * const suite = brokerSuite(engine);
 * test('…', async () => { await suite.broker.customer(); });
 */
export function brokerSuite(engine: DatabaseEngine): {
  readonly bank: BankUnderTest;
  readonly broker: BrokerUnderTest;
} {
  let bank: BankUnderTest | undefined;
  let broker: BrokerUnderTest | undefined;
  before(async () => {
    bank = await startBank(engine);
    broker = await startBroker(engine, bank);
  });
  after(async () => {
    await broker?.close();
    await bank?.close();
  });
  const started = <T>(value: T | undefined, name: string): T => {
    if (value === undefined) throw new Error(`the suite's ${name} is not started yet`);
    return value;
  };
  return {
    get bank() {
      return started(bank, 'bank');
    },
    get broker() {
      return started(broker, 'broker');
    },
  };
}
