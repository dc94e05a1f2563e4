import { formatAmount } from '@netpay/protocol';
import { escapeHtml } from '@netpay/service-kit';
import type { WalletPaywall } from './challenge.ts';

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
  /** Why the session's server-side wallet did not pay, and what the reader can do. */
  wallet?: WalletPaywall;
}

/** What the paywall says for each reason a server-side wallet did not pay; `link` names the broker page. */
export const WALLET_REASONS: Record<WalletPaywall['reason'], { text: string; link?: string }> = {
  cross_site: { text: 'You came here from another site. NetPay pays only when you choose to read on this site.' },
  confirm: { text: 'This story costs more than you let sites take without asking.' },
  limit_reached: { text: 'You have reached a spending limit you set at NetPay.', link: 'Change your limits at NetPay' },
  balance_exhausted: { text: 'Your NetPay balance is used up.', link: 'Add money at NetPay' },
  connection_revoked: { text: 'This site is no longer connected to your NetPay balance. Connect again to read on.' },
  unusable: { text: 'Your NetPay balance could not pay for this story just now.' },
};

/** "Read for NZ$0.12": the same-site form that pays when the reader asks, or nothing. */
function payFormHtml(info: PaywallInfo, price: string): string {
  const form = info.wallet?.payForm;
  if (!form) return '';
  return `<form method="post" action="${escapeHtml(form.action)}">
<input type="hidden" name="csrf" value="${escapeHtml(form.csrf)}">
<input type="hidden" name="return_to" value="${escapeHtml(form.returnTo)}">
<input type="hidden" name="price" value="${form.priceMinor}">
<button class="pay" id="netpay-read" type="submit">Read for ${price}</button>
</form>
`;
}

/** The reason line of a server-side wallet's refusal, with the broker link when the reader acts there. */
function walletReasonHtml(wallet: WalletPaywall): string {
  const words = WALLET_REASONS[wallet.reason];
  const link =
    words.link && wallet.brokerUrl ? ` <a href="${escapeHtml(wallet.brokerUrl)}">${escapeHtml(words.link)}</a>.` : '';
  return `<p class="why" role="alert">${escapeHtml(words.text)}${link}</p>\n`;
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
  const price = escapeHtml(formatAmount(info.priceMinor, info.currency));
  const vendor = escapeHtml(info.vendorId);
  const why = info.code ? (REASONS[info.code] ?? 'Your NetPay coin could not pay for this page.') : undefined;
  const reason = info.wallet
    ? walletReasonHtml(info.wallet)
    : why
      ? `<p class="why" role="alert">${escapeHtml(why)}${
          info.buyMoreUrl ? ` <a href="${escapeHtml(info.buyMoreUrl)}">Buy more at the NetPay broker</a>.` : ''
        }</p>\n`
      : '';
  const connected = info.wallet?.payForm !== undefined;
  const action = connected
    ? payFormHtml(info, price)
    : info.wallet && info.wallet.reason !== 'connection_revoked'
      ? ''
      : `<p><a class="pay" id="netpay-pay" href="${escapeHtml(info.connectUrl)}">Pay with NetPay</a></p>\n`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Payment required: ${price}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;line-height:1.5;color:#222}
.price{font-size:2rem;font-weight:700}
.pay{display:inline-block;padding:.75rem 1.5rem;background:#0a7c4a;color:#fff;border:0;border-radius:.4rem;text-decoration:none;font-weight:600;font-size:1rem;cursor:pointer}
small{color:#666}
</style>
</head>
<body>
<main data-netpay-code="${escapeHtml(info.code ?? 'payment_required')}"${
    info.wallet ? ` data-netpay-reason="${escapeHtml(info.wallet.reason)}"` : ''
  }>
<h1>This page costs <span class="price" data-netpay-price="${info.priceMinor}">${price}</span></h1>
<p><strong>${vendor}</strong> takes NetPay: connect your NetPay balance once, then a cent or two per article, with
no account at this site.</p>
${reason}${action}<p><small>Have a NetPay wallet? It pays this page automatically (HTTP 402, <code>WWW-Authenticate: NetPay</code>).
Broker: <a href="${escapeHtml(info.brokerUrl)}">${escapeHtml(info.brokerUrl)}</a>.</small></p>
</main>
</body>
</html>
`;
}
