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

/** What `brokerSuite` hands on, unchanged, to `startBank` and `startBroker`. */
export interface BrokerSuiteOptions {
  readonly bank?: Parameters<typeof startBank>[1];
  readonly broker?: Parameters<typeof startBroker>[2];
}

/**
 * A bank and a broker on `engine` for the suite it is called in: started before its first test, closed after its
 * last, with `options.bank` and `options.broker` passed to `startBank` and `startBroker` as they are. Read them in
 * tests (`suite.broker.api`), not when the suite is declared. The suite's hooks run where the call stands among
 * the suite's own `before` and `after` hooks (node:test runs both kinds in the order they were registered).
 *
 * @example
 * const clock = new ManualClock('2026-11-24T00:00:00Z');
 * const suite = brokerSuite(engine, { broker: { clock, config: { leaseTtlSeconds: 60 } } });
 * test('…', async () => { await suite.broker.customer(); });
 */
export function brokerSuite(
  engine: DatabaseEngine,
  options: BrokerSuiteOptions = {},
): {
  readonly bank: BankUnderTest;
  readonly broker: BrokerUnderTest;
} {
  let bank: BankUnderTest | undefined;
  let broker: BrokerUnderTest | undefined;
  before(async () => {
    bank = await startBank(engine, options.bank);
    broker = await startBroker(engine, bank, options.broker);
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
