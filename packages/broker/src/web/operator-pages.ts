import { type AuditResult, LISTED_DISCREPANCIES } from '../audit.ts';
import { html } from '@netpay/service-kit';
import { alertBox, field, hidden, money, page } from './layout.ts';

export function operatorLoginPage(s: { csrf: string; error?: string; configured: boolean }): string {
  return page({
    title: 'Operator log in',
    body: html`<h1>Operator view</h1>
${
  s.configured
    ? html`<section class="card" aria-labelledby="op-heading"><h2 id="op-heading">Log in with the operator token</h2>
<p>The token is in the file <code>operator-token</code> in the broker's data folder.</p>
<form method="post" action="/operator/login" novalidate>
${hidden('csrf', s.csrf)}
${field({ id: 'token', label: 'Operator token', type: 'password', error: s.error, autocomplete: 'off', maxlength: 200 })}
<button type="submit" name="action" value="login">Log in</button>
</form></section>`
    : alertBox('The operator view is not configured on this broker (no operator token).')
}`,
  });
}

const NUMERIC = new Set([
  'Balance',
  'Owed',
  'Payout pending',
  'Paid out',
  'Redeemed',
  'Fees',
  'Rate',
  'Items',
  'Accepted',
  'Credited',
  'Amount',
  'Epoch',
]);

export interface OperatorData {
  vendors: Array<{
    vendorId: string;
    name: string;
    url: string;
    balance: number;
    pending: number;
    paidOut: number;
    /** All gross the vendor ever redeemed, and the fee on it: floor(gross × bps) with the remainder carried. */
    redeemedGross: number;
    fees: number;
  }>;
  redemptions: Array<{
    id: string;
    vendorId: string;
    createdAt: string;
    items: number;
    accepted: number;
    credited: number;
  }>;
  payouts: Array<{ id: string; vendorId: string; amount: number; status: string; updatedAt: string }>;
  conflicts: Array<{
    chainId: string;
    epoch: number;
    vendorId: string;
    kind: string;
    from: number;
    to: number;
    amount: number;
    at: string;
  }>;
  audit: AuditResult;
  currency: string;
}

export function operatorPage(csrf: string, d: OperatorData): string {
  const m = (n: number) => money(Math.abs(n), d.currency).replace(/^/, n < 0 ? '−' : '');
  const table = (caption: string, head: string[], rows: ReturnType<typeof html>[], empty: string) =>
    rows.length === 0
      ? html`<p>${empty}</p>`
      : html`<div class="table-wrap"><table><caption>${caption}</caption><thead><tr>${head.map((h) => (NUMERIC.has(h) ? html`<th scope="col" class="num">${h}</th>` : html`<th scope="col">${h}</th>`))}</tr></thead><tbody>${rows}</tbody></table></div>`;
  return page({
    title: 'Operator view',
    operator: { csrf },
    body: html`<h1>Operator view</h1>
<section class="card" aria-labelledby="audit-heading">
<h2 id="audit-heading">Audit</h2>
${
  d.audit.ok
    ? html`<p class="status-ok" id="audit-result">Audit OK: the ledger balances and matches the chains.</p>`
    : html`<p class="status-bad" id="audit-result">Audit FAILED: ${d.audit.discrepancies.length} discrepancies.</p>
<ul>${d.audit.discrepancies.slice(0, LISTED_DISCREPANCIES).map((x) => html`<li>${x}</li>`)}</ul>
${d.audit.discrepancies.length > LISTED_DISCREPANCIES ? html`<p>… and ${d.audit.discrepancies.length - LISTED_DISCREPANCIES} more: run <code>npx netpay admin audit</code> for all of them.</p>` : ''}`
}
<p>${d.audit.totals.chains} chains, ${d.audit.totals.entries} ledger entries, ${d.audit.totals.ranges} redeemed ranges;
redeemed ${m(d.audit.totals.redeemedGross)}, refunded ${m(d.audit.totals.refunded)},
coins outstanding ${m(d.audit.totals.expectedCoinsOutstanding)}.</p>
</section>
<section aria-labelledby="ledger-heading"><h2 id="ledger-heading">Ledger totals</h2>
${table(
  'Balance of each account (sum of its postings; debits positive).',
  ['Account', 'Balance'],
  Object.entries(d.audit.totals.accounts)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([id, v]) => html`<tr><td><code>${id}</code></td><td class="num">${m(v)}</td></tr>`),
  'No accounts.',
)}</section>
<section aria-labelledby="vendors-heading"><h2 id="vendors-heading">Vendors</h2>
${table(
  'Registered vendors, what they redeemed, the fee on it (taken on each vendor’s running total), and what the broker owes them.',
  ['Vendor', 'Site', 'Redeemed', 'Fees', 'Rate', 'Owed', 'Payout pending', 'Paid out'],
  d.vendors.map(
    (v) =>
      html`<tr><td>${v.name} <code>${v.vendorId}</code></td><td>${v.url}</td><td class="num">${m(v.redeemedGross)}</td><td class="num">${m(v.fees)}</td><td class="num">${v.redeemedGross === 0 ? '—' : `${((v.fees * 100) / v.redeemedGross).toFixed(2)} %`}</td><td class="num">${m(v.balance)}</td><td class="num">${m(v.pending)}</td><td class="num">${m(v.paidOut)}</td></tr>`,
  ),
  'No vendors registered.',
)}</section>
<section aria-labelledby="redemptions-heading"><h2 id="redemptions-heading">Redemptions</h2>
${table(
  'The latest 50 redemption batches.',
  ['When', 'Vendor', 'Items', 'Accepted', 'Credited', 'Id'],
  d.redemptions.map(
    (r) =>
      html`<tr><td>${r.createdAt}</td><td>${r.vendorId}</td><td class="num">${r.items}</td><td class="num">${r.accepted}</td><td class="num">${m(r.credited)}</td><td><code>${r.id}</code></td></tr>`,
  ),
  'No redemptions yet.',
)}</section>
<section aria-labelledby="payouts-heading"><h2 id="payouts-heading">Payouts</h2>
${table(
  'The latest 50 payouts.',
  ['Updated', 'Vendor', 'Amount', 'Status', 'Id'],
  d.payouts.map(
    (p) =>
      html`<tr><td>${p.updatedAt}</td><td>${p.vendorId}</td><td class="num">${m(p.amount)}</td><td>${p.status}</td><td><code>${p.id}</code></td></tr>`,
  ),
  'No payouts yet.',
)}</section>
<section aria-labelledby="conflicts-heading"><h2 id="conflicts-heading">Conflicts</h2>
${table(
  'Take-backs: a vendor was paid for units its own release had handed on.',
  ['When', 'Vendor', 'Chain', 'Epoch', 'Range', 'Amount', 'Kind'],
  d.conflicts.map(
    (c) =>
      html`<tr><td>${c.at}</td><td>${c.vendorId}</td><td><code>${c.chainId}</code></td><td class="num">${c.epoch}</td><td>[${c.from}, ${c.to})</td><td class="num">${m(c.amount)}</td><td>${c.kind}</td></tr>`,
  ),
  'No conflicts.',
)}</section>`,
  });
}
