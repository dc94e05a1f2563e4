import { formatAmount } from '@netpay/protocol';

/**
 * An amount of minor units for readers: `NZ$0.05`, `NZ$12.30` (the protocol's one money formatter).
 *
 * @example
 * formatMoney(5, 'NZD'); // 'NZ$0.05'
 */
export function formatMoney(amountMinor: number, currency: string): string {
  return formatAmount(Math.trunc(amountMinor), currency);
}

/**
 * An article price: `Free` for 0, otherwise the amount.
 *
 * @example
 * formatPrice(0, 'NZD'); // 'Free'
 * formatPrice(5, 'NZD'); // 'NZ$0.05'
 */
export function formatPrice(priceMinor: number, currency: string): string {
  return priceMinor === 0 ? 'Free' : formatMoney(priceMinor, currency);
}

/**
 * A `YYYY-MM-DD` date for readers, e.g. `Monday 23 November 2026`.
 *
 * @example
 * formatDate('2026-11-23', 'en-NZ'); // 'Monday 23 November 2026'
 */
export function formatDate(date: string, locale: string): string {
  const d = new Date(`${date}T00:00:00Z`);
  if (Number.isNaN(d.getTime())) return date;
  return new Intl.DateTimeFormat(locale, {
    weekday: 'long',
    day: 'numeric',
    month: 'long',
    year: 'numeric',
    timeZone: 'UTC',
  })
    .format(d)
    .replace(',', '');
}

/**
 * A time of day for readers, e.g. `10:31:05`, in the site's locale (when a figure was given).
 *
 * @example
 * formatTime(Date.parse('2026-11-23T10:31:05Z'), 'en-NZ', 'UTC'); // '10:31:05'
 */
export function formatTime(atMs: number, locale: string, timeZone?: string): string {
  return new Intl.DateTimeFormat(locale, {
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hourCycle: 'h23',
    ...(timeZone ? { timeZone } : {}),
  }).format(new Date(atMs));
}
