const SYMBOLS: Record<string, string> = { NZD: 'NZ$', AUD: 'A$', USD: 'US$', EUR: '€', GBP: '£' };

/**
 * An amount of minor units for readers: `NZ$0.05`, `NZ$12.30`.
 *
 * @example
 * formatMoney(5, 'NZD'); // 'NZ$0.05'
 */
export function formatMoney(amountMinor: number, currency: string): string {
  const sign = amountMinor < 0 ? '−' : '';
  const abs = Math.abs(Math.trunc(amountMinor));
  const whole = Math.floor(abs / 100).toLocaleString('en');
  const cents = String(abs % 100).padStart(2, '0');
  const symbol = SYMBOLS[currency];
  return symbol ? `${sign}${symbol}${whole}.${cents}` : `${sign}${currency} ${whole}.${cents}`;
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
