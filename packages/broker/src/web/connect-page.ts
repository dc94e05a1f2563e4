import { html } from '@netpay/service-kit';
import { type PendingConnect, pendingFields } from './auth-pages.ts';
import type { FieldErrors } from './buy-form.ts';
import { alertBox, hidden, money, page, type Viewer } from './layout.ts';
import { type TopUpField, type TopUpInput, topUpFields } from './top-up-form.ts';

export interface ConsentState {
  viewer: Viewer;
  pending: PendingConnect;
  currency: string;
  balance: number;
  limits: { autoPayMaxMinor: number; dailyCapMinor: number; siteCapMinor: number; allowanceMaxMinor: number };
  /** Shown when the balance is empty: add money together with connecting. */
  topUp?: TopUpInput;
  topUpErrors?: FieldErrors<TopUpField>;
  savedCardLast4: string | null;
}

/**
 * §7 v1.1 consent, shown the first time a customer connects a site (or every time, if they asked for that): the
 * limits the site will be held to, one Connect button, and, when the balance is empty, the fields to add money
 * in the same step. No coin to pick.
 */
export function consentPage(s: ConsentState): string {
  const name = s.pending.vendorName;
  const m = (minor: number) => money(minor, s.currency);
  const errors = s.topUpErrors ?? {};
  return page({
    title: `Connect ${name}`,
    viewer: s.viewer,
    body: html`<h1>Connect ${name} to your NetPay balance</h1>
<p>If you connect, <strong>${name}</strong> can pay for the articles you open there from your NetPay balance
(now ${m(s.balance)}). It will not learn your name or email.</p>
<ul>
<li>Articles up to ${m(s.limits.autoPayMaxMinor)} are paid without asking; above that ${name} asks you first.</li>
<li>${name} holds at most ${m(s.limits.allowanceMaxMinor)} of your balance at a time, and can be allowed at most
${m(s.limits.siteCapMinor)} a month; all sites together at most ${m(s.limits.dailyCapMinor)} a day.</li>
<li>Further NetPay sites you open then connect with one click, no page, within the same limits. You can change
the limits, or disconnect any site, on the <a href="/sites">connected sites</a> page; what a site has not spent
comes back to your balance.</li>
</ul>
${alertBox(errors.form)}
<form method="post" action="/connect" class="consent" novalidate>
${hidden('csrf', s.viewer.csrf)}${pendingFields(s.pending)}
${
  s.topUp
    ? html`<section class="card" aria-labelledby="add-heading">
<h2 id="add-heading">Add money first</h2>
<p>Your balance is empty: add some to read at ${name}.</p>
${topUpFields(s.topUp, errors, s.savedCardLast4)}
</section>`
    : ''
}
<div class="actions">
<button type="submit" name="action" value="connect">Connect</button>
<button type="submit" name="action" value="cancel" class="secondary">Cancel</button>
</div>
</form>`,
  });
}
