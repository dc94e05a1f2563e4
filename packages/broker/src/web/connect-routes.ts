import { ProtocolError } from '@netpay/protocol';
import { RateLimiter } from '@netpay/service-kit';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { buyCoin } from '../coin-purchase.ts';
import { BROKER_VENDOR_ID, findVendor } from '../vendor-registry.ts';
import { connectableCoins, issueWalletGrant } from '../wallet-grants.ts';
import { errorPage, loginPage, type PendingConnect } from './auth-pages.ts';
import {
  type BuyField,
  type BuyInput,
  type FieldErrors,
  formKeyAfter,
  newFormKey,
  purchaseErrorField,
  readBuyInput,
  validateBuy,
} from './buy-form.ts';
import { consentPage } from './connect-page.ts';
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

/** §7 connect: the consent page, its answer, and the redirect back to the vendor with a one-time code. */
export function connectRoutes(web: FastifyInstance, ctx: WebContext): void {
  const { deps } = ctx;
  const r = deps.config.rateLimits;
  const buyPerCustomer = new RateLimiter(r.coinPurchasesPerCustomer[0], r.coinPurchasesPerCustomer[1], deps.clock);

  const renderConsent = async (
    reply: FastifyReply,
    customer: WebCustomer,
    pending: PendingConnect,
    origin: string,
    status: number,
    extra: { selected?: string; buy?: BuyInput; buyErrors?: FieldErrors<BuyField>; choiceError?: string } = {},
  ) => {
    const coins = await connectableCoins(deps, customer.id);
    // The consent form's answer is a redirect to the vendor: CSP form-action must allow its origin.
    reply.header('content-security-policy', contentSecurityPolicy([origin]));
    return sendHtml(
      reply,
      status,
      consentPage({
        viewer: viewerOf(ctx, customer),
        pending,
        coins,
        currency: deps.config.currency,
        buy: extra.buy ?? { amount: '', cardNumber: '', expiry: '', cvc: '', idem: newFormKey() },
        ...(extra.selected ? { selected: extra.selected } : {}),
        ...(extra.buyErrors ? { buyErrors: extra.buyErrors } : {}),
        ...(extra.choiceError ? { choiceError: extra.choiceError } : {}),
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

    const choice = formField(body, 'coin', 100);
    let chainId: string;
    if (choice === 'new') {
      const input = readBuyInput(body);
      // The form shown again keeps this purchase's key until the purchase has a final answer (formKeyAfter).
      const keep = { ...input, cvc: '' };
      const bought = validateBuy(input, deps.clock.now(), deps.config.maxChainLength);
      if (bought.errors) {
        return renderConsent(reply, customer, pending, origin, 422, {
          selected: 'new',
          buy: keep,
          buyErrors: bought.errors,
        });
      }
      if (!buyPerCustomer.take(customer.id)) {
        return renderConsent(reply, customer, pending, origin, 429, {
          selected: 'new',
          buy: keep,
          buyErrors: { form: purchaseErrorField('rate_limited', undefined).message },
        });
      }
      try {
        const text = await buyCoin(deps, customer.id, input.idem, bought.request);
        chainId = (JSON.parse(text) as { chainId: string }).chainId;
      } catch (error) {
        if (!(error instanceof ProtocolError) || (error.status >= 500 && error.code !== 'bank_unavailable')) {
          throw error;
        }
        const { field, message } = purchaseErrorField(error.code, error.detail);
        return renderConsent(reply, customer, pending, origin, error.status, {
          selected: 'new',
          buy: formKeyAfter(error.code) === 'renew' ? { ...keep, idem: newFormKey() } : keep,
          buyErrors: { [field]: message },
        });
      }
    } else {
      const coins = await connectableCoins(deps, customer.id);
      const coin = coins.find((c) => c.chainId === choice);
      if (!coin) {
        return renderConsent(reply, customer, pending, origin, 422, {
          choiceError:
            choice === '' ? 'Choose a coin, or buy a new one.' : 'That coin cannot be used: choose another one.',
        });
      }
      chainId = coin.chainId;
    }
    const { code } = await issueWalletGrant(deps, customer.id, pending.vendorId, chainId);
    return reply.redirect(backToVendor(pending, { code }), 303);
  });
}
