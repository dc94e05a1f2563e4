import { ChainIdSchema, checkWire, ProtocolError } from '@netpay/protocol';
import { RateLimiter } from '@netpay/service-kit';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { buyCoin } from '../coin-purchase.ts';
import { customerHistory, listCoins } from '../coins-view.ts';
import { createCustomer, createSession, deleteSession } from '../customers.ts';
import { throttledLogin } from '../login-throttle.ts';
import { refundCoin } from '../refund.ts';
import { loginPage, type PendingConnect, registerPage } from './auth-pages.ts';
import {
  type BuyField,
  type BuyInput,
  type FieldErrors,
  formKeyAfter,
  newFormKey,
  purchaseErrorField,
  readBuyInput,
  validateBuy,
  validateEmail,
} from './buy-form.ts';
import { connectUrl, pendingFrom } from './connect-routes.ts';
import { forbidden, sendHtml, viewerOf } from './respond.ts';
import { historyPage, homePage, walletPage } from './wallet-pages.ts';
import { formField, type WebContext, type WebCustomer, WEB_SESSION_COOKIE } from './web-context.ts';

/** Takes a token from each limiter; the seconds to wait when one is empty. */
function limited(checks: Array<[RateLimiter, string]>): number | undefined {
  for (const [limiter, key] of checks) {
    if (!limiter.take(key)) return Math.max(1, limiter.retryAfterSeconds(key));
  }
  return undefined;
}

/** The customer pages: home, register, login, logout, wallet (buy, refund) and history. */
export function customerRoutes(web: FastifyInstance, ctx: WebContext): void {
  const { deps } = ctx;
  const r = deps.config.rateLimits;
  const loginPerIp = new RateLimiter(r.loginPerIp[0], r.loginPerIp[1], deps.clock);
  const signupPerIp = new RateLimiter(r.signupPerIp[0], r.signupPerIp[1], deps.clock);
  const buyPerCustomer = new RateLimiter(r.coinPurchasesPerCustomer[0], r.coinPurchasesPerCustomer[1], deps.clock);
  const maxMinor = deps.config.maxChainLength; // unit 1: one payword per cent

  const startSession = async (request: FastifyRequest, reply: FastifyReply, email: string, password: string) => {
    const old = ctx.cookie(request, WEB_SESSION_COOKIE);
    if (old) await deleteSession(deps.db, old);
    const session = await createSession(deps, email, password, 'web');
    ctx.setCookie(reply, WEB_SESSION_COOKIE, session.token, deps.config.sessionTtlSeconds);
  };
  const afterLogin = (pending: PendingConnect | undefined) => (pending ? connectUrl(pending) : '/coins');

  const renderWallet = async (
    reply: FastifyReply,
    customer: WebCustomer,
    status: number,
    extra: {
      buy?: BuyInput;
      buyErrors?: FieldErrors<BuyField>;
      notice?: string;
      refundError?: { chainId: string; message: string };
    } = {},
  ) => {
    const { coins } = await listCoins(deps.db, customer.id, deps.clock.now());
    return sendHtml(
      reply,
      status,
      walletPage({
        viewer: viewerOf(ctx, customer),
        coins,
        currency: deps.config.currency,
        buy: extra.buy ?? { amount: '', cardNumber: '', expiry: '', cvc: '', idem: newFormKey() },
        ...(extra.buyErrors ? { buyErrors: extra.buyErrors } : {}),
        ...(extra.notice ? { notice: extra.notice } : {}),
        ...(extra.refundError ? { refundError: extra.refundError } : {}),
      }),
    );
  };

  web.get('/', async (request, reply) => {
    const customer = await ctx.customer(request);
    if (customer) return renderWallet(reply, customer, 200);
    return sendHtml(reply, 200, homePage());
  });

  web.get<{ Querystring: Record<string, string> }>('/register', async (request, reply) => {
    const pending = await pendingFrom(ctx, request.query);
    if (await ctx.customer(request)) return reply.redirect(afterLogin(pending), 303);
    return sendHtml(reply, 200, registerPage({ csrf: ctx.anonCsrf(request, reply), pending }));
  });

  web.post('/register', async (request, reply) => {
    const body = request.body;
    if (!ctx.checkAnonCsrf(request, formField(body, 'csrf'))) return forbidden(reply);
    const pending = await pendingFrom(ctx, body);
    const email = formField(body, 'email', 300).trim();
    const password = formField(body, 'password', 1000);
    const errors: { email?: string; password?: string; form?: string } = {};
    const emailError = validateEmail(email);
    if (emailError) errors.email = emailError;
    if (password.length < 8) errors.password = 'Choose a password of at least 8 characters.';
    else if (password.length > 200) errors.password = 'The password can be at most 200 characters.';
    const again = (status: number) =>
      sendHtml(reply, status, registerPage({ csrf: ctx.anonCsrf(request, reply), email, errors, pending }));
    if (errors.email || errors.password) return again(422);
    const wait = limited([[signupPerIp, request.ip]]);
    if (wait !== undefined) {
      reply.header('retry-after', String(wait));
      errors.form = `Too many sign-ups from your network. Try again in ${wait} seconds.`;
      return again(429);
    }
    try {
      await createCustomer(deps, email, password);
    } catch (error) {
      if (error instanceof ProtocolError && error.code === 'email_taken') {
        errors.email = 'An account with this email already exists. Log in instead.';
        return again(409);
      }
      throw error;
    }
    await startSession(request, reply, email, password);
    return reply.redirect(afterLogin(pending), 303);
  });

  web.get<{ Querystring: Record<string, string> }>('/login', async (request, reply) => {
    const pending = await pendingFrom(ctx, request.query);
    if (await ctx.customer(request)) return reply.redirect(afterLogin(pending), 303);
    return sendHtml(reply, 200, loginPage({ csrf: ctx.anonCsrf(request, reply), pending }));
  });

  web.post('/login', async (request, reply) => {
    const body = request.body;
    if (!ctx.checkAnonCsrf(request, formField(body, 'csrf'))) return forbidden(reply);
    const pending = await pendingFrom(ctx, body);
    const email = formField(body, 'email', 300).trim();
    const password = formField(body, 'password', 1000);
    const errors: { email?: string; password?: string; form?: string } = {};
    const emailError = validateEmail(email);
    if (emailError) errors.email = emailError;
    if (password === '') errors.password = 'Enter your password.';
    else if (password.length > 200) errors.password = 'Wrong email or password.';
    const again = (status: number) =>
      sendHtml(reply, status, loginPage({ csrf: ctx.anonCsrf(request, reply), email, errors, pending }));
    if (errors.email || errors.password) return again(422);
    const tooMany = (wait: number) => {
      reply.header('retry-after', String(wait));
      errors.form = `Too many login attempts. Wait ${wait} seconds and try again.`;
      return again(429);
    };
    const wait = limited([[loginPerIp, request.ip]]);
    if (wait !== undefined) return tooMany(wait);
    try {
      // The same failure limits as the API's POST /sessions (login-throttle.ts).
      const result = await throttledLogin(deps, { email, ip: request.ip }, () =>
        startSession(request, reply, email, password),
      );
      if (!result.ok) return tooMany(result.retryAfterSeconds);
    } catch (error) {
      if (error instanceof ProtocolError && error.code === 'invalid_credentials') {
        errors.password = 'Wrong email or password.';
        return again(401);
      }
      throw error;
    }
    return reply.redirect(afterLogin(pending), 303);
  });

  web.post('/logout', async (request, reply) => {
    const customer = await ctx.customer(request);
    if (customer) {
      if (!ctx.checkSessionCsrf(customer, formField(request.body, 'csrf'))) {
        return forbidden(reply, viewerOf(ctx, customer));
      }
      await deleteSession(deps.db, customer.token);
    }
    ctx.clearCookie(reply, WEB_SESSION_COOKIE);
    return reply.redirect('/', 303);
  });

  web.get<{ Querystring: Record<string, string> }>('/coins', async (request, reply) => {
    const customer = await ctx.customer(request);
    if (!customer) return reply.redirect('/login', 303);
    const notice =
      request.query.done === 'bought'
        ? 'Your new coin is ready. Spend it at any NetPay site.'
        : request.query.done === 'refunded'
          ? 'The unspent rest of the coin is refunded to your card.'
          : undefined;
    return renderWallet(reply, customer, 200, notice ? { notice } : {});
  });

  web.post('/coins', async (request, reply) => {
    const customer = await ctx.customer(request);
    if (!customer) return reply.redirect('/login', 303);
    if (!ctx.checkSessionCsrf(customer, formField(request.body, 'csrf'))) {
      return forbidden(reply, viewerOf(ctx, customer));
    }
    const input = readBuyInput(request.body);
    const checked = validateBuy(input, deps.clock.now(), maxMinor);
    // The form shown again keeps this purchase's key until the purchase has a final answer (formKeyAfter).
    const keep = { ...input, cvc: '' };
    if (checked.errors) return renderWallet(reply, customer, 422, { buy: keep, buyErrors: checked.errors });
    if (limited([[buyPerCustomer, customer.id]]) !== undefined) {
      return renderWallet(reply, customer, 429, {
        buy: keep,
        buyErrors: { form: purchaseErrorField('rate_limited', undefined).message },
      });
    }
    try {
      await buyCoin(deps, customer.id, input.idem, checked.request);
    } catch (error) {
      if (!(error instanceof ProtocolError) || (error.status >= 500 && error.code !== 'bank_unavailable')) throw error;
      const { field, message } = purchaseErrorField(error.code, error.detail);
      const buy = formKeyAfter(error.code) === 'renew' ? { ...keep, idem: newFormKey() } : keep;
      return renderWallet(reply, customer, error.status, { buy, buyErrors: { [field]: message } });
    }
    // A result page, so that reloading it does not submit the purchase again.
    return reply.redirect('/coins?done=bought', 303);
  });

  web.post<{ Params: { chainId: string } }>('/coins/:chainId/refund', async (request, reply) => {
    const customer = await ctx.customer(request);
    if (!customer) return reply.redirect('/login', 303);
    if (!ctx.checkSessionCsrf(customer, formField(request.body, 'csrf'))) {
      return forbidden(reply, viewerOf(ctx, customer));
    }
    const { chainId } = request.params;
    if (!checkWire(ChainIdSchema, chainId)) {
      return renderWallet(reply, customer, 404, { refundError: { chainId, message: 'No such coin in your wallet.' } });
    }
    try {
      await refundCoin(deps, customer.id, chainId);
    } catch (error) {
      if (!(error instanceof ProtocolError) || error.code === 'internal_error') throw error;
      const message =
        error.code === 'unknown_chain'
          ? 'No such coin in your wallet.'
          : error.code === 'not_refundable'
            ? 'This coin was already refunded.'
            : error.code === 'previous_holder_unavailable'
              ? 'The site holding this coin cannot be reached. Try again in a few minutes.'
              : error.code === 'bank_unavailable'
                ? 'The bank cannot be reached right now. Try again shortly.'
                : (error.detail ?? 'The refund did not go through.');
      return renderWallet(reply, customer, error.status, { refundError: { chainId, message } });
    }
    return reply.redirect('/coins?done=refunded', 303);
  });

  web.get('/history', async (request, reply) => {
    const customer = await ctx.customer(request);
    if (!customer) return reply.redirect('/login', 303);
    const { events } = await customerHistory(deps.db, customer.id);
    return sendHtml(reply, 200, historyPage(viewerOf(ctx, customer), events, deps.config.currency));
  });
}
