/**
 * The benchmark's load process: every client of the benchmark (the HTTP load, the broker's customers and vendors,
 * first payments) runs here, never on the servers' event loops, so what is measured is limited by the servers,
 * as in production. It stays up for the whole run: it reads one JSON plan a line on stdin and writes one JSON
 * answer a line on stdout (`{ ok }` or `{ error }`), until stdin ends.
 */
import { createInterface } from 'node:readline';
import {
  type BuyPlan,
  buyChains,
  type ClaimPlan,
  claimChains,
  type RedeemPlan,
  redeemChains,
} from './bench-broker-load.ts';
import { type FirstPaymentPlan, firstPayments } from './bench-first-payment-load.ts';
import { type HttpPlan, runHttpLoad } from './bench-http-load.ts';

export type LoadPlan = HttpPlan | BuyPlan | ClaimPlan | RedeemPlan | FirstPaymentPlan;

async function run(plan: LoadPlan): Promise<unknown> {
  switch (plan.kind) {
    case 'http':
      return await runHttpLoad(plan);
    case 'buy':
      return await buyChains(plan);
    case 'claim':
      return await claimChains(plan);
    case 'redeem':
      return await redeemChains(plan);
    case 'first-payment':
      return await firstPayments(plan);
  }
}

for await (const line of createInterface({ input: process.stdin, crlfDelay: Number.POSITIVE_INFINITY })) {
  if (line.trim() === '') continue;
  let answer: string;
  try {
    answer = JSON.stringify({ ok: await run(JSON.parse(line) as LoadPlan) });
  } catch (error) {
    answer = JSON.stringify({ error: error instanceof Error ? error.message : String(error) });
  }
  process.stdout.write(`${answer}\n`);
}
