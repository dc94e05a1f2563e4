import { html, type SafeHtml } from '@netpay/service-kit';
import { alertBox, field, hidden, page } from './layout.ts';

/** A connect (§7) waiting for the customer to log in: carried through the login and register forms. */
export interface PendingConnect {
  vendorId: string;
  vendorName: string;
  returnUrl: string;
  state: string;
}

export function pendingFields(pending: PendingConnect | undefined): SafeHtml | string {
  if (!pending) return '';
  return html`${hidden('vendor', pending.vendorId)}${hidden('return', pending.returnUrl)}${hidden('state', pending.state)}`;
}

/** `?vendor=…&return=…&state=…` for links that keep a pending connect. */
export function pendingQuery(pending: PendingConnect | undefined): string {
  if (!pending) return '';
  const q = new URLSearchParams({ vendor: pending.vendorId, return: pending.returnUrl, state: pending.state });
  return `?${q.toString()}`;
}

export interface AuthFormState {
  csrf: string;
  email?: string;
  errors?: { email?: string; password?: string; form?: string };
  pending?: PendingConnect | undefined;
}

function connectIntro(pending: PendingConnect | undefined, verb: string): SafeHtml | string {
  return pending
    ? html`<p class="notice">${verb} to let <strong>${pending.vendorName}</strong> use one of your NetPay coins.</p>`
    : '';
}

export function loginPage(s: AuthFormState): string {
  const e = s.errors ?? {};
  return page({
    title: 'Log in',
    body: html`<h1>Log in</h1>
${connectIntro(s.pending, 'Log in')}
${alertBox(e.form)}
<section class="card" aria-labelledby="login-heading">
<h2 id="login-heading">Your NetPay account</h2>
<form method="post" action="/login" novalidate>
${hidden('csrf', s.csrf)}${pendingFields(s.pending)}
${field({ id: 'email', label: 'Email', type: 'email', value: s.email ?? '', error: e.email, autocomplete: 'username', inputmode: 'email', maxlength: 254 })}
${field({ id: 'password', label: 'Password', type: 'password', error: e.password, autocomplete: 'current-password', maxlength: 200 })}
<button type="submit" name="action" value="login">Log in</button>
</form>
</section>
<p>New to NetPay? <a href="/register${pendingQuery(s.pending)}">Create an account</a>.</p>`,
  });
}

export function registerPage(s: AuthFormState): string {
  const e = s.errors ?? {};
  return page({
    title: 'Create an account',
    body: html`<h1>Create a NetPay account</h1>
${connectIntro(s.pending, 'Create an account')}
${alertBox(e.form)}
<section class="card" aria-labelledby="register-heading">
<h2 id="register-heading">Your details</h2>
<form method="post" action="/register" novalidate>
${hidden('csrf', s.csrf)}${pendingFields(s.pending)}
${field({ id: 'email', label: 'Email', type: 'email', value: s.email ?? '', error: e.email, autocomplete: 'email', inputmode: 'email', maxlength: 254 })}
${field({ id: 'password', label: 'Password', type: 'password', error: e.password, hint: 'At least 8 characters.', autocomplete: 'new-password', maxlength: 200 })}
<button type="submit" name="action" value="register">Create account</button>
</form>
</section>
<p>Already have an account? <a href="/login${pendingQuery(s.pending)}">Log in</a>.</p>`,
  });
}

export function errorPage(title: string, message: string, viewer?: { email: string; csrf: string }): string {
  return page({
    title,
    viewer,
    body: html`<h1>${title}</h1><div class="alert" role="alert"><p>${message}</p></div><p><a href="/">Back to NetPay</a></p>`,
  });
}
