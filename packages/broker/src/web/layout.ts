import { formatAmount } from '@netpay/protocol';
import { html, type SafeHtml } from '@netpay/service-kit';
import { STYLESHEET_PATH } from './style.ts';

/** Who is looking at a page, for the navigation: a customer (with the session's CSRF token for logout) or nobody. */
export interface Viewer {
  email: string;
  csrf: string;
}

export interface PageOptions {
  title: string;
  viewer?: Viewer | undefined;
  /** The operator view has its own navigation. */
  operator?: { csrf: string } | undefined;
  body: SafeHtml;
}

/** The page shell: landmarks (header/nav, main, footer), a skip link, the viewport meta and the stylesheet. */
export function page(options: PageOptions): string {
  const nav = options.operator
    ? html`<li><a href="/operator">Operator view</a></li>
        <li><form method="post" action="/operator/logout"><input type="hidden" name="csrf" value="${options.operator.csrf}">
          <button type="submit" class="link">Log out</button></form></li>`
    : options.viewer
      ? html`<li><a href="/coins">Wallet</a></li>
        <li><a href="/sites">Connected sites</a></li>
        <li><a href="/history">History</a></li>
        <li><span class="who">${options.viewer.email}</span></li>
        <li><form method="post" action="/logout"><input type="hidden" name="csrf" value="${options.viewer.csrf}">
          <button type="submit" class="link">Log out</button></form></li>`
      : html`<li><a href="/login">Log in</a></li><li><a href="/register">Register</a></li>`;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${options.title} · NetPay</title>
<link rel="stylesheet" href="${STYLESHEET_PATH}">
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="site"><div class="bar">
<a class="brand" href="/">NetPay</a>
<nav aria-label="Main"><ul>${nav}</ul></nav>
</div></header>
<main id="main">
${options.body}
</main>
<footer class="site"><p>NetPay: pay a few cents per article with e-coins, no account at each site.</p></footer>
</body>
</html>
`.text;
}

export interface FieldOptions {
  id: string;
  name?: string;
  label: string;
  type?: 'text' | 'email' | 'password';
  value?: string | undefined;
  error?: string | undefined;
  hint?: string;
  autocomplete?: string;
  inputmode?: 'numeric' | 'decimal' | 'email';
  required?: boolean;
  maxlength?: number;
}

/** A labelled input with its hint and its error message, tied together with aria-describedby. */
export function field(o: FieldOptions): SafeHtml {
  const hintId = o.hint ? `${o.id}-hint` : undefined;
  const errorId = o.error ? `${o.id}-error` : undefined;
  const describedBy = [hintId, errorId].filter(Boolean).join(' ');
  return html`<div class="field">
<label for="${o.id}">${o.label}</label>
<input id="${o.id}" name="${o.name ?? o.id}" type="${o.type ?? 'text'}"${o.value !== undefined && o.type !== 'password' ? html` value="${o.value}"` : ''}${o.autocomplete ? html` autocomplete="${o.autocomplete}"` : ''}${o.inputmode ? html` inputmode="${o.inputmode}"` : ''}${o.maxlength ? html` maxlength="${o.maxlength}"` : ''}${o.required === false ? '' : html` required`}${describedBy ? html` aria-describedby="${describedBy}"` : ''}${o.error ? html` aria-invalid="true"` : ''}>
${o.hint ? html`<p class="hint" id="${hintId}">${o.hint}</p>` : ''}
${o.error ? html`<p class="field-error" id="${errorId}">${o.error}</p>` : ''}
</div>`;
}

/** A hidden input. */
export function hidden(name: string, value: string): SafeHtml {
  return html`<input type="hidden" name="${name}" value="${value}">`;
}

/** A form-level message (role=alert so screen readers announce it after a failed submit). */
export function alertBox(message: string | undefined): SafeHtml | string {
  return message ? html`<div class="alert" role="alert"><p>${message}</p></div>` : '';
}

export function noticeBox(message: string | undefined): SafeHtml | string {
  return message ? html`<div class="notice" role="status"><p>${message}</p></div>` : '';
}

/** `NZ$2.00` from minor units: the protocol's one formatter, so pages and sites print amounts alike. */
export function money(minor: number, currency = 'NZD'): string {
  return formatAmount(minor, currency);
}

/** A chain id shortened for display (the full id is in the title attribute). */
export function shortId(id: string): SafeHtml {
  return html`<code title="${id}">${id.slice(0, 8)}…</code>`;
}
