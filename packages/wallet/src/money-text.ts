import { formatAmount } from '@netpay/protocol';

/**
 * How the wallet shows an amount to people, in its messages and in the CLI: the protocol's one formatter
 * (`NZ$0.10`, `US$1,234.56`), never a bare count of minor units.
 *
 * @example
 * moneyText(10, 'NZD'); // 'NZ$0.10'
 */
export function moneyText(minor: number, currency: string): string {
  try {
    return formatAmount(minor, currency);
  } catch {
    // Only reachable with a currency no touchstone or challenge could carry; say what the number is.
    return `${minor} hundredths of ${currency || 'an unknown currency'}`;
  }
}
