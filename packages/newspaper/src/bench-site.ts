/**
 * The site every benchmark vendor serves: one free and one paid article of the same text, so the two routes
 * differ only in the price.
 */
import { type Site, SITES } from './site.ts';

export const FREE_ID = 'bench-free';
export const PAID_ID = 'bench-paid';

/**
 * The Daily Planet's look with two copies of one of its paid articles, at 0 and 1 cent, under `vendorId`.
 *
 * @example
 * const site = benchSite('bench-pg');
 */
export function benchSite(vendorId: string = SITES['daily-planet'].vendorId): Site {
  const base = SITES['daily-planet'];
  const model = base.articles.find((a) => a.priceMinor > 0) ?? (base.articles[0] as Site['articles'][number]);
  return {
    ...base,
    vendorId,
    articles: [
      { ...model, id: FREE_ID, priceMinor: 0 },
      { ...model, id: PAID_ID, priceMinor: 1 },
    ],
  };
}
