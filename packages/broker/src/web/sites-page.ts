import { html } from '@netpay/service-kit';
import type { SiteSummary } from '../balance.ts';
import { field, hidden, money, noticeBox, page, type Viewer } from './layout.ts';
import { dollarsText } from './wallet-pages.ts';

export interface SitesState {
  viewer: Viewer;
  currency: string;
  balance: number;
  sites: SiteSummary[];
  limits: { autoPayMaxMinor: number; dailyCapMinor: number; askEachSite: boolean };
  notice?: string;
  /** The settings form as typed, and what is wrong with it. */
  settingsInput?: { autoPay: string; dailyCap: string; askEachSite: boolean };
  settingsErrors?: { autoPay?: string; dailyCap?: string };
  /** A site's cap form that failed. */
  capError?: { connectionId: string; message: string; value: string };
}

/**
 * The connected sites page (§7 v1.1): each site by its name with what it spent this month, the allowance it
 * still holds, its monthly limit (editable) and a Revoke button; then the limits across sites.
 */
export function sitesPage(s: SitesState): string {
  const live = s.sites.filter((site) => site.revokedAt === null);
  const returning = s.sites.filter((site) => site.revokedAt !== null && site.returning !== null);
  const rows = live.map((site) => {
    const capError = s.capError?.connectionId === site.connectionId ? s.capError : undefined;
    const capId = `cap-${site.connectionId}`;
    return html`<tr>
<th scope="row" data-label="Site">${site.name}</th>
<td data-label="Spent this month" class="num">${money(site.spentThisMonthMinor, s.currency)}</td>
<td data-label="Allowance left" class="num">${money(site.allowanceLeftMinor, s.currency)}</td>
<td data-label="Monthly limit"><form method="post" action="/sites/${site.connectionId}/limit" class="inline">${hidden('csrf', s.viewer.csrf)}
<label for="${capId}">Monthly limit for ${site.name} (NZ$)</label>
<input id="${capId}" name="site_cap" type="text" inputmode="decimal" maxlength="12" value="${capError?.value ?? dollarsText(site.siteCapMinor)}"${capError ? html` aria-invalid="true" aria-describedby="${capId}-error"` : ''}>
${capError ? html`<p class="field-error" id="${capId}-error">${capError.message}</p>` : ''}
<button type="submit" class="small secondary">Save limit</button></form></td>
<td data-label="Actions"><form method="post" action="/sites/${site.connectionId}/revoke">${hidden('csrf', s.viewer.csrf)}
<button type="submit" class="small" aria-label="Revoke ${site.name}">Revoke</button></form></td>
</tr>`;
  });
  const input = s.settingsInput ?? {
    autoPay: dollarsText(s.limits.autoPayMaxMinor),
    dailyCap: dollarsText(s.limits.dailyCapMinor),
    askEachSite: s.limits.askEachSite,
  };
  const errors = s.settingsErrors ?? {};
  return page({
    title: 'Connected sites',
    viewer: s.viewer,
    body: html`<h1>Connected sites</h1>
${noticeBox(s.notice)}
<p>NetPay balance: <strong id="netpay-balance">${money(s.balance, s.currency)}</strong>. A connected site holds at most
a small allowance of it at a time; revoking a site stops it at once and what it did not spend comes back.</p>
${
  live.length === 0
    ? html`<p>No site is connected.</p>`
    : html`<div class="table-wrap"><table class="stack">
<caption>Spent this month is what each site reported or redeemed so far.</caption>
<thead><tr><th scope="col">Site</th><th scope="col" class="num">Spent this month</th><th scope="col" class="num">Allowance left</th><th scope="col">Monthly limit</th><th scope="col">Actions</th></tr></thead>
<tbody>${rows}</tbody></table></div>`
}
${
  returning.length === 0
    ? ''
    : html`<section aria-labelledby="returning-heading"><h2 id="returning-heading">Revoked, money on its way back</h2><ul>${returning.map(
        (site) =>
          html`<li>${site.name}: ${money(site.returning?.amountMinor ?? 0, s.currency)} comes back to your balance when the site releases it, at the latest at <time datetime="${site.returning?.byAt ?? ''}">${(site.returning?.byAt ?? '').replace('T', ' ').replace('Z', ' UTC')}</time> (less anything it reports spending before then).</li>`,
      )}</ul></section>`
}
<section class="card" aria-labelledby="limits-heading">
<h2 id="limits-heading">Limits across sites</h2>
<form method="post" action="/sites/settings" novalidate>
${hidden('csrf', s.viewer.csrf)}
${field({ id: 'auto-pay', name: 'auto_pay', label: 'Pay without asking up to (NZ$ per article)', value: input.autoPay, error: errors.autoPay, hint: 'Above this price a site asks you first.', inputmode: 'decimal', maxlength: 12 })}
${field({ id: 'daily-cap', name: 'daily_cap', label: 'At most per day across all sites (NZ$)', value: input.dailyCap, error: errors.dailyCap, inputmode: 'decimal', maxlength: 12 })}
<div class="choice"><input type="checkbox" id="ask-each-site" name="ask_each_site"${input.askEachSite ? html` checked` : ''}>
<label for="ask-each-site">Ask me before connecting each new site</label></div>
<button type="submit">Save limits</button>
</form>
</section>`,
  });
}
