import { formatMoney } from '../format.ts';
import { type SafeHtml, html } from '@netpay/service-kit';
import type { Site } from '../site.ts';
import { renderPage, type WalletNote } from './layout.ts';

/** The vendor's money as the account page shows it; every amount in minor units. */
export interface AccountSummary {
  currency: string;
  /** Taken from readers, redeemed or not. */
  earnedMinor: number;
  /** Spent at this vendor but not yet redeemed with the broker. */
  pendingMinor: number;
  /** Redeemed and accepted by the broker (gross, before its fee). */
  redeemedMinor: number;
  /** Paid out to the vendor's bank account (absent when the broker could not be asked). */
  paidOutMinor?: number;
  /** Held at the broker, not yet paid out (absent when the broker could not be asked). */
  balanceMinor?: number;
  /** When the broker could not be asked, why; the local figures are still shown. */
  brokerError?: string;
}

/**
 * The vendor's account: what it earned, what waits for redemption, what the broker credited and paid out.
 *
 * @example
 * renderAccountPage(site, { currency: 'NZD', earnedMinor: 12, pendingMinor: 5, redeemedMinor: 7, paidOutMinor: 0 });
 */
export function renderAccountPage(site: Site, account: AccountSummary, wallet?: WalletNote | null): SafeHtml {
  const row = (label: string, amount: number | undefined, note: string) =>
    amount === undefined
      ? ''
      : html`<tr><th scope="row">${label}</th><td class="num">${formatMoney(amount, account.currency)}</td><td>${note}</td></tr>`;
  const main = html`<h1>Vendor account</h1>
<p class="meta">${site.name} (vendor <code>${site.vendorId}</code>) as the NetPay broker and our own spend store see it.</p>
${account.brokerError ? html`<p class="notice warn" role="alert">The broker could not be reached: ${account.brokerError}.</p>` : ''}
<table>
<caption class="visually-hidden">Vendor account in ${account.currency}</caption>
<thead><tr><th scope="col">Item</th><th scope="col">Amount</th><th scope="col">Meaning</th></tr></thead>
<tbody>
${row('Earned', account.earnedMinor, 'taken from readers')}
${row('Pending', account.pendingMinor, 'spent here, not yet redeemed')}
${row('Redeemed', account.redeemedMinor, 'accepted by the broker (before its fee)')}
${row('Broker balance', account.balanceMinor, 'held at the broker')}
${row('Paid out', account.paidOutMinor, 'sent to our bank account')}
</tbody>
</table>`;
  return renderPage(site, { title: 'Vendor account', main, current: 'account', wallet });
}
