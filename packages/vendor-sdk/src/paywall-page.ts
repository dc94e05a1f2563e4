import { escapeHtml } from '@netpay/service-kit';
import { formatMinor } from '@netpay/protocol';

/** What a paywall page shows: the same facts as the 402 challenge. */
export interface PaywallInfo {
  vendorId: string;
  resource: string;
  priceMinor: number;
  currency: string;
  brokerUrl: string;
  /** Where "Pay with NetPay" goes: the vendor's `/netpay/connect` (server-side wallets), or the broker's. */
  connectUrl: string;
  /** Why a server-side wallet could not pay (`chain_exhausted`, `chain_expired`, …); absent for a plain 402. */
  code?: string;
  /** The broker's page to buy more coins, shown with `code`. */
  buyMoreUrl?: string;
}

const REASONS: Record<string, string> = {
  chain_exhausted: 'Your NetPay coin has run out.',
  chain_expired: 'Your NetPay coin has expired.',
  unknown_chain: 'Your NetPay coin can no longer be used (it was refunded or is unknown to the broker).',
  insufficient_amount: 'Your NetPay coin cannot pay this price.',
};

/** Renders the HTML a browser gets with a 402; replace it with the `paywallHtml` option. */
export type PaywallRenderer = (info: PaywallInfo) => string;

export { escapeHtml };

/**
 * The default paywall: price, how to pay, and a "Pay with NetPay" button that links to the broker's connect page.
 *
 * @example
 * const html = defaultPaywallHtml({ vendorId: 'daily-planet', resource: 'GET /a/1', priceMinor: 5, currency: 'NZD', brokerUrl, connectUrl });
 */
export function defaultPaywallHtml(info: PaywallInfo): string {
  const price = escapeHtml(formatMinor(info.priceMinor, info.currency));
  const vendor = escapeHtml(info.vendorId);
  const why = info.code ? (REASONS[info.code] ?? 'Your NetPay coin could not pay for this page.') : undefined;
  const reason = why
    ? `<p class="why" role="alert">${escapeHtml(why)}${
        info.buyMoreUrl ? ` <a href="${escapeHtml(info.buyMoreUrl)}">Buy more at the NetPay broker</a>.` : ''
      }</p>\n`
    : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Payment required: ${price}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;line-height:1.5;color:#222}
.price{font-size:2rem;font-weight:700}
a.pay{display:inline-block;padding:.75rem 1.5rem;background:#0a7c4a;color:#fff;border-radius:.4rem;text-decoration:none;font-weight:600}
small{color:#666}
</style>
</head>
<body>
<main>
<h1>This page costs <span class="price" data-netpay-price="${info.priceMinor}">${price}</span></h1>
<p><strong>${vendor}</strong> takes NetPay e-coins: a one-off top-up with the broker, then a cent or two per article,
with no account at this site.</p>
${reason}<p><a class="pay" id="netpay-pay" href="${escapeHtml(info.connectUrl)}">Pay with NetPay</a></p>
<p><small>Have a NetPay wallet? It pays this page automatically (HTTP 402, <code>WWW-Authenticate: NetPay</code>).
Broker: <a href="${escapeHtml(info.brokerUrl)}">${escapeHtml(info.brokerUrl)}</a>.</small></p>
</main>
</body>
</html>
`;
}
