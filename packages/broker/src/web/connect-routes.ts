import { ProtocolError } from '@netpay/protocol';
import { RateLimiter } from '@netpay/service-kit';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { netPayBalance } from '../balance.ts';
import { issueConnectCode } from '../connect-codes.ts';
import { liveConnection, revokedConnection } from '../connections.ts';
import {
  type CustomerSettings,
  DEFAULT_LIMITS,
  ensureCustomerSettings,
  markConnected,
  readSettings,
} from '../customer-settings.ts';
import { topUp } from '../top-up.ts';
import { BROKER_VENDOR_ID, findVendor } from '../vendor-registry.ts';
import { errorPage, loginPage, type PendingConnect } from './auth-pages.ts';
import { type FieldErrors, formKeyAfter, newFormKey, purchaseErrorField } from './buy-form.ts';
import { consentPage } from './connect-page.ts';
import {
  emptyTopUp,
  readTopUpInput,
  type TopUpField,
  type TopUpInput,
  topUpErrorField,
  validateTopUp,
  wantsTopUp,
} from './top-up-form.ts';
import { contentSecurityPolicy, forbidden, sendHtml, viewerOf } from './respond.ts';
import { formField, type WebContext, type WebCustomer } from './web-context.ts';

const VENDOR_ID = /^[a-z0-9][a-z0-9-]{0,63}$/;
const STATE = /^[\x21-\x7e]{1,256}$/;
const MAX_RETURN_LENGTH = 2048;

/**
 * Whether `candidate` lies under the vendor's registered site URL: an absolute http(s) URL with the same
 * origin, a path equal to the site's path or below it (segment-wise), no credentials. The URL parser has
 * already resolved dot segments, so `/site/../admin` cannot sneak out.
 */
export function returnUnderSite(siteUrl: string, candidate: string): URL | undefined {
  if (candidate.length > MAX_RETURN_LENGTH || /[\s\\]/.test(candidate)) return undefined;
  let site: URL;
  let url: URL;
  try {
    site = new URL(siteUrl);
    url = new URL(candidate);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
  if (url.username !== '' || url.password !== '') return undefined;
  if (url.origin !== site.origin) return undefined;
  const prefix = site.pathname.endsWith('/') ? site.pathname : `${site.pathname}/`;
  if (url.pathname !== site.pathname && !url.pathname.startsWith(prefix)) return undefined;
  url.hash = '';
  return url;
}

/** Checks the three connect parameters; a reason when they are not acceptable. */
export async function validateConnect(
  ctx: WebContext,
  vendorId: string,
  returnUrl: string,
  state: string,
): Promise<{ ok: true; pending: PendingConnect; origin: string } | { ok: false; reason: string }> {
  if (!VENDOR_ID.test(vendorId) || vendorId === BROKER_VENDOR_ID) return { ok: false, reason: 'No such NetPay site.' };
  const vendor = await findVendor(ctx.deps.db, vendorId);
  if (!vendor) return { ok: false, reason: 'No such NetPay site.' };
  if (!STATE.test(state)) return { ok: false, reason: 'The site sent an invalid or missing state parameter.' };
  const url = returnUnderSite(vendor.url, returnUrl);
  if (!url) {
    return {
      ok: false,
      reason: `The return address is not part of ${vendor.name}'s registered site, so NetPay will not send you there.`,
    };
  }
  return {
    ok: true,
    pending: { vendorId: vendor.id, vendorName: vendor.name, returnUrl: url.toString(), state },
    origin: url.origin,
  };
}

/** The pending connect carried by a login or register form or link; invalid parameters are dropped. */
export async function pendingFrom(ctx: WebContext, source: unknown): Promise<PendingConnect | undefined> {
  const vendorId = formField(source, 'vendor', 100);
  if (vendorId === '') return undefined;
  const checked = await validateConnect(
    ctx,
    vendorId,
    formField(source, 'return', MAX_RETURN_LENGTH + 1),
    formField(source, 'state', 300),
  );
  return checked.ok ? checked.pending : undefined;
}

/** Our own /connect URL for a pending connect (relative: never a redirect off the broker). */
export function connectUrl(pending: PendingConnect): string {
  const q = new URLSearchParams({ vendor: pending.vendorId, return: pending.returnUrl, state: pending.state });
  return `/connect?${q.toString()}`;
}

function backToVendor(pending: PendingConnect, params: Record<string, string>): string {
  const url = new URL(pending.returnUrl);
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  url.searchParams.set('state', pending.state);
  return url.toString();
}

/** Whether a connect can go ahead without money being added now: the balance holds some, or can be topped up. */
function funded(balance: number, settings: CustomerSettings, alreadyConnected: boolean): boolean {
  return (
    balance > 0 ||
    alreadyConnected ||
    (settings.card_token !== null && settings.auto_top_up_minor !== null && settings.auto_top_up_ceiling_minor !== null)
  );
}

/**
 * §7 v1.1 connect: the first time, one consent page stating the limits (with "add money" when the balance is
 * empty) and one button; after that, a further site connects with no page at all, an immediate redirect back with
 * its one-time code, unless the customer asked to be asked. No coin is picked: the site draws on the balance.
 */
export function connectRoutes(web: FastifyInstance, ctx: WebContext): void {
  const { deps } = ctx;
  const r = deps.config.rateLimits;
  const topUpsPerCustomer = new RateLimiter(r.coinPurchasesPerCustomer[0], r.coinPurchasesPerCustomer[1], deps.clock);

  const renderConsent = async (
    reply: FastifyReply,
    customer: WebCustomer,
    pending: PendingConnect,
    origin: string,
    status: number,
    extra: { topUp?: TopUpInput; topUpErrors?: FieldErrors<TopUpField> } = {},
  ) => {
    const settings = await readSettings(deps.db, customer.id);
    const balance = await netPayBalance(deps.db, customer.id);
    const live = await liveConnection(deps.db, customer.id, pending.vendorId);
    const savedCardLast4 = settings.card_token !== null ? settings.card_last4 : null;
    const showTopUp =
      extra.topUp ?? (funded(balance, settings, live !== undefined) ? undefined : emptyTopUp(savedCardLast4 !== null));
    // The consent form's answer is a redirect to the vendor: CSP form-action must allow its origin.
    reply.header('content-security-policy', contentSecurityPolicy([origin]));
    return sendHtml(
      reply,
      status,
      consentPage({
        viewer: viewerOf(ctx, customer),
        pending,
        currency: deps.config.currency,
        balance,
        limits: {
          autoPayMaxMinor: Number(settings.auto_pay_max_minor),
          dailyCapMinor: Number(settings.daily_cap_minor),
          siteCapMinor: live ? Number(live.site_cap_minor) : DEFAULT_LIMITS.siteCapMinor,
          allowanceMaxMinor: deps.config.allowanceMaxMinor,
        },
        savedCardLast4,
        ...(showTopUp ? { topUp: showTopUp } : {}),
        ...(extra.topUpErrors ? { topUpErrors: extra.topUpErrors } : {}),
      }),
    );
  };

  web.get<{ Querystring: Record<string, string> }>('/connect', async (request, reply) => {
    const q = request.query;
    const checked = await validateConnect(
      ctx,
      formField(q, 'vendor', 100),
      formField(q, 'return', MAX_RETURN_LENGTH + 1),
      formField(q, 'state', 300),
    );
    const customer = await ctx.customer(request);
    if (!checked.ok) {
      return sendHtml(
        reply,
        400,
        errorPage('This connect link is not valid', checked.reason, customer ? viewerOf(ctx, customer) : undefined),
      );
    }
    if (!customer) {
      return sendHtml(reply, 200, loginPage({ csrf: ctx.anonCsrf(request, reply), pending: checked.pending }));
    }
    await ensureCustomerSettings(deps.db, customer.id, deps.clock.now());
    const settings = await readSettings(deps.db, customer.id);
    const live = await liveConnection(deps.db, customer.id, checked.pending.vendorId);
    const balance = await netPayBalance(deps.db, customer.id);
    // Without a page only when the reader's own click started this navigation (`Sec-Fetch-User: ?1`, which a browser
    // keeps across the redirects the click leads to). A site that sends browsers here by itself (a redirect on
    // load, a script, a site the customer revoked) gets the one-click page, never a code: otherwise any registered
    // site could attach itself to every logged-in customer who passes by.
    if (
      settings.connected_once === 1 &&
      settings.ask_each_site === 0 &&
      request.headers['sec-fetch-user'] === '?1' &&
      funded(balance, settings, live !== undefined) &&
      // A site the customer revoked asks again with the page: a click on any of its links could lead here.
      (live !== undefined || !(await revokedConnection(deps.db, customer.id, checked.pending.vendorId)))
    ) {
      const { code } = await issueConnectCode(deps, customer.id, checked.pending.vendorId);
      return reply.redirect(backToVendor(checked.pending, { code }), 303);
    }
    return renderConsent(reply, customer, checked.pending, checked.origin, 200);
  });

  web.post('/connect', async (request, reply) => {
    const body = request.body;
    const checked = await validateConnect(
      ctx,
      formField(body, 'vendor', 100),
      formField(body, 'return', MAX_RETURN_LENGTH + 1),
      formField(body, 'state', 300),
    );
    const customer = await ctx.customer(request);
    if (!customer) {
      if (!checked.ok) return reply.redirect('/login', 303);
      return sendHtml(reply, 401, loginPage({ csrf: ctx.anonCsrf(request, reply), pending: checked.pending }));
    }
    if (!ctx.checkSessionCsrf(customer, formField(body, 'csrf'))) return forbidden(reply, viewerOf(ctx, customer));
    if (!checked.ok) {
      return sendHtml(reply, 400, errorPage('This connect link is not valid', checked.reason, viewerOf(ctx, customer)));
    }
    const { pending, origin } = checked;
    if (formField(body, 'action', 20) === 'cancel') {
      return reply.redirect(backToVendor(pending, { error: 'access_denied' }), 303);
    }
    const now = deps.clock.now();
    await ensureCustomerSettings(deps.db, customer.id, now);
    const settings = await readSettings(deps.db, customer.id);
    const input = readTopUpInput(body);
    // The form shown again keeps this top-up's key until it has a final answer (formKeyAfter).
    const keep = { ...input, cvc: '' };
    if (wantsTopUp(input)) {
      const valid = validateTopUp(input, now, settings.card_token !== null);
      if (valid.errors)
        return renderConsent(reply, customer, pending, origin, 422, { topUp: keep, topUpErrors: valid.errors });
      if (!topUpsPerCustomer.take(customer.id)) {
        return renderConsent(reply, customer, pending, origin, 429, {
          topUp: keep,
          topUpErrors: { form: purchaseErrorField('rate_limited', undefined).message },
        });
      }
      try {
        await topUp(deps, customer.id, input.idem, valid.amount, valid.payment);
      } catch (error) {
        if (!(error instanceof ProtocolError) || (error.status >= 500 && error.code !== 'bank_unavailable')) {
          throw error;
        }
        const { field, message } = topUpErrorField(error.code, error.detail);
        return renderConsent(reply, customer, pending, origin, error.status, {
          topUp: formKeyAfter(error.code) === 'renew' ? { ...keep, idem: newFormKey() } : keep,
          topUpErrors: { [field]: message },
        });
      }
    } else {
      const live = await liveConnection(deps.db, customer.id, pending.vendorId);
      if (!funded(await netPayBalance(deps.db, customer.id), settings, live !== undefined)) {
        return renderConsent(reply, customer, pending, origin, 422, {
          topUp: keep,
          topUpErrors: { amount: 'Your balance is empty: enter an amount to add.' },
        });
      }
    }
    await markConnected(deps.db, customer.id, now);
    const { code } = await issueConnectCode(deps, customer.id, pending.vendorId);
    return reply.redirect(backToVendor(pending, { code }), 303);
  });
}
