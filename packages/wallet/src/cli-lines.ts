import type { HistoryEntry } from './coin-store.ts';
import type { CoinView } from './coin-view.ts';
import { moneyText } from './money-text.ts';
import type { EntitlementUse, PaymentAttempt } from './operations/pay.ts';

/** What `netpay wallet` prints for people: every amount through `moneyText` (`NZ$0.10`). */

function short(chainId: string): string {
  return chainId.slice(0, 8);
}

export function coinLine(c: CoinView): string {
  const money = (minor: number) => moneyText(minor, c.currency);
  return (
    `${c.chainId}  ${c.status.padEnd(9)} ${money(c.remainingMinor)} left of ${money(c.valueMinor)}` +
    `  (paywords of ${money(c.unitMinor)}, ${c.spentIndex} of ${c.length} spent, expires ${c.expiresAt}` +
    (c.lastRealm ? `, last at ${c.lastRealm})` : ')')
  );
}

export function historyLine(e: HistoryEntry): string {
  const money = moneyText(e.amountMinor, e.currency);
  switch (e.kind) {
    case 'purchase':
      return `${e.at}  bought    ${money}  chain ${short(e.chainId)}`;
    case 'refund':
      return `${e.at}  refunded  ${money}  chain ${short(e.chainId)} (released at index ${e.releasedIndex})`;
    case 'payment':
      return (
        `${e.at}  paid      ${money}  to ${e.realm}  chain ${short(e.chainId)} index ${e.index}` +
        `  ${e.status}${e.code ? ` (${e.code})` : ''}  ${e.url}`
      );
  }
}

export function paymentLine(p: PaymentAttempt): string {
  const receipt = p.receipt ? `, ${moneyText(p.receipt.balanceMinor, p.currency)} left on the coin` : '';
  const code = p.code ? ` (${p.code})` : '';
  return `netpay: ${p.status} ${moneyText(p.amountMinor, p.currency)} to ${p.realm} with chain ${short(p.chainId)} index ${p.index}${code}${receipt}`;
}

export function entitlementLine(e: EntitlementUse): string {
  const bought = `bought for ${moneyText(e.amountMinor, e.currency)} with chain ${short(e.chainId)} index ${e.index}`;
  if (e.status === 'served') {
    const left = e.receipt ? ` (${moneyText(e.receipt.balanceMinor, e.currency)} left on the coin)` : '';
    return `netpay: read again free: ${bought} at ${e.realm}; nothing paid${left}`;
  }
  return `netpay: ${e.realm} did not honour the purchase (${bought}${e.code ? `, ${e.code}` : ''}); paying as for a first read`;
}
