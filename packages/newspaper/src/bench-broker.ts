/**
 * The broker's row: coin purchases (each paid by card through the sandbox bank), claims (a vendor taking a
 * chain with the customer's payword as proof) and redemptions of 1,000 units an item, per second, over
 * alternating rounds of the three after a small warm-up round.
 */
import type { LoadProcess } from './bench-load-process.ts';
import { type MachineLoad, machineLoad, type Spread, spread } from './bench-stats.ts';

export interface BrokerContext {
  api: string;
  customerToken: string;
  addVendor(vendor: { vendorId: string; url: string; releaseUrl: string; keyDir: string }): Promise<string>;
  load: LoadProcess;
  keyDir: string;
}

export interface BrokerOptions {
  /** Chains bought, claimed and redeemed per round. */
  chainsPerRound: number;
  rounds: number;
  /** Units in each chain, redeemed as one item. */
  unitsPerItem: number;
  itemsPerRequest: number;
  concurrency: number;
  /** Runs each round's redemptions (the bench gives them every CPU with --pin); by default just runs them. */
  aroundRedemption?: <T>(redeem: () => Promise<T>) => Promise<T>;
}

export interface BrokerResult {
  load: { start: MachineLoad; end: MachineLoad };
  purchasesPerSec: Spread;
  claimsPerSec: Spread;
  redemptionPaywordsPerSec: Spread;
  unitsPerItem: number;
  itemsPerRequest: number;
  concurrency: number;
  /** The CPUs the broker had for its redemptions (with --pin, every one); null when nothing was pinned. */
  cpus?: number | null;
}

/**
 * Runs the broker's row.
 *
 * @example
 * const { claimsPerSec } = await runBrokerRow(context, { chainsPerRound: 200, rounds: 3, unitsPerItem: 1000, itemsPerRequest: 100, concurrency: 8 }, console.error);
 */
export async function runBrokerRow(
  ctx: BrokerContext,
  options: BrokerOptions,
  progress: (line: string) => void,
): Promise<BrokerResult> {
  const start = machineLoad();
  // Its URLs are never called: no chain it claims has a previous holder to release it.
  const apiKey = await ctx.addVendor({
    vendorId: 'bench-broker',
    url: 'http://127.0.0.1:9/',
    releaseUrl: 'http://127.0.0.1:9/netpay/release',
    keyDir: ctx.keyDir,
  });
  const round = async (count: number) => {
    const bought = await ctx.load.run({
      kind: 'buy',
      api: ctx.api,
      customerToken: ctx.customerToken,
      count,
      length: options.unitsPerItem,
      concurrency: options.concurrency,
    });
    const claimed = await ctx.load.run({
      kind: 'claim',
      api: ctx.api,
      vendorApiKey: apiKey,
      chains: bought.chains,
      concurrency: options.concurrency,
    });
    const around = options.aroundRedemption ?? ((redeem) => redeem());
    const redeemed = await around(() =>
      ctx.load.run({
        kind: 'redeem',
        api: ctx.api,
        vendorApiKey: apiKey,
        chains: bought.chains.map((c, i) => ({ ...c, epoch: claimed.epochs[i] as number })),
        itemsPerRequest: options.itemsPerRequest,
        // Each request is one transaction locking its chains; two keep both cores of a small machine busy.
        concurrency: 2,
      }),
    );
    if (redeemed.rejected > 0) throw new Error(`the broker rejected ${redeemed.rejected} redemption items`);
    return {
      purchases: count / bought.seconds,
      claims: count / claimed.seconds,
      paywords: redeemed.paywords / redeemed.seconds,
    };
  };
  progress('broker: warm-up round …');
  await round(Math.max(4, Math.ceil(options.chainsPerRound / 10)));
  const rounds: Array<Awaited<ReturnType<typeof round>>> = [];
  for (let r = 1; r <= options.rounds; r++) {
    progress(
      `broker round ${r}/${options.rounds}: ${options.chainsPerRound} purchases, claims and redemptions of ${options.unitsPerItem} units …`,
    );
    rounds.push(await round(options.chainsPerRound));
  }
  return {
    load: { start, end: machineLoad() },
    purchasesPerSec: spread(rounds.map((r) => r.purchases)),
    claimsPerSec: spread(rounds.map((r) => r.claims)),
    redemptionPaywordsPerSec: spread(rounds.map((r) => r.paywords)),
    unitsPerItem: options.unitsPerItem,
    itemsPerRequest: options.itemsPerRequest,
    concurrency: options.concurrency,
  };
}
