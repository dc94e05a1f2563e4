import { ChainIdSchema, checkWire, ProtocolError } from '@netpay/protocol';
import { RateLimiter } from '@netpay/service-kit';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { netPayBalance, siteSummaries } from '../balance.ts';
import { balanceHistory } from '../balance-history.ts';
import { listCoins } from '../coins-view.ts';
import { createCustomer, createSession, deleteSession } from '../customers.ts';
import { throttledLogin } from '../login-throttle.ts';
import { forgetCard, MAX_LIMIT_MINOR, readSettings, updateAutoTopUp } from '../customer-settings.ts';
import { refundCoin } from '../refund.ts';
import { completeRevocations } from '../revoke.ts';
import { automaticThisMonth, MAX_TOP_UP_MINOR, topUp } from '../top-up.ts';
import { loginPage, type PendingConnect, registerPage } from './auth-pages.ts';
import { formKeyAfter, newFormKey, parseDollars, purchaseErrorField, validateEmail } from './buy-form.ts';
import { connectUrl, pendingFrom } from './connect-routes.ts';
import { forbidden, sendHtml, viewerOf } from './respond.ts';
import { money } from './layout.ts';
import { emptyTopUp, readTopUpInput, topUpErrorField, validateTopUp } from './top-up-form.ts';
import { historyPage, homePage, type WalletState, walletPage } from './wallet-pages.ts';
import { formField, type WebContext, type WebCustomer, WEB_SESSION_COOKIE } from './web-context.ts';

/** Takes a token from each limiter; the seconds to wait when one is empty. */
function limited(checks: Array<[RateLimiter, string]>): number | undefined {
  for (const [limiter, key] of checks) {
    if (!limiter.take(key)) return Math.max(1, limiter.retryAfterSeconds(key));
  }
  return undefined;
}

/**
 * The customer pages: home, register, login, logout, the wallet (NetPay balance, add money, automatic top-up,
 * coins for apps and their refund) and the history.
 */
export function customerRoutes(web: FastifyInstance, ctx: WebContext): void {
  const { deps } = ctx;
  const r = deps.config.rateLimits;
  const loginPerIp = new RateLimiter(r.loginPerIp[0], r.loginPerIp[1], deps.clock);
  const signupPerIp = new RateLimiter(r.signupPerIp[0], r.signupPerIp[1], deps.clock);
  const buyPerCustomer = new RateLimiter(r.coinPurchasesPerCustomer[0], r.coinPurchasesPerCustomer[1], deps.clock);

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
    extra: Partial<
      Pick<WalletState, 'topUp' | 'topUpErrors' | 'autoTopUpInput' | 'autoTopUpErrors' | 'notice' | 'refundError'>
    > = {},
  ) => {
    const now = deps.clock.now();
    await completeRevocations(deps, customer.id);
    const { coins } = await listCoins(deps.db, customer.id, now);
    const settings = await readSettings(deps.db, customer.id);
    const savedCard =
      settings.card_token !== null && settings.card_last4 !== null ? { last4: settings.card_last4 } : null;
    return sendHtml(
      reply,
      status,
      walletPage({
        viewer: viewerOf(ctx, customer),
        currency: deps.config.currency,
        balance: await netPayBalance(deps.db, customer.id),
        sites: await siteSummaries(deps.db, customer.id, now),
        savedCard,
        autoTopUp:
          settings.auto_top_up_minor !== null && settings.auto_top_up_ceiling_minor !== null
            ? {
                amountMinor: Number(settings.auto_top_up_minor),
                ceilingMinor: Number(settings.auto_top_up_ceiling_minor),
                usedThisMonthMinor: await automaticThisMonth(deps.db, customer.id, now),
              }
            : null,
        topUp: extra.topUp ?? emptyTopUp(savedCard !== null),
        coins,
        ...(extra.topUpErrors ? { topUpErrors: extra.topUpErrors } : {}),
        ...(extra.autoTopUpInput ? { autoTopUpInput: extra.autoTopUpInput } : {}),
        ...(extra.autoTopUpErrors ? { autoTopUpErrors: extra.autoTopUpErrors } : {}),
        ...(extra.notice ? { notice: extra.notice } : {}),
        ...(extra.refundError ? { refundError: extra.refundError } : {}),
      }),
    );
  };

  /** The result page's message, read back from the store (a reload says the same, a forged link says nothing). */
  const walletNotice = async (customer: WebCustomer, query: Record<string, string>): Promise<string | undefined> => {
    const currency = deps.config.currency;
    if (typeof query.added === 'string' && /^tu_[A-Za-z0-9_-]{16}$/.test(query.added)) {
      const row = await deps.db
        .selectFrom('top_ups')
        .select(['amount', 'status'])
        .where('id', '=', query.added)
        .where('customer_id', '=', customer.id)
        .executeTakeFirst();
      if (row?.status === 'completed') return `${money(Number(row.amount), currency)} added to your NetPay balance.`;
    }
    if (typeof query.refunded === 'string' && checkWire(ChainIdSchema, query.refunded)) {
      const row = await deps.db
        .selectFrom('chains')
        .select(['refunded_amount', 'status'])
        .where('chain_id', '=', query.refunded)
        .where('customer_id', '=', customer.id)
        .where('connection_id', 'is', null)
        .executeTakeFirst();
      if (row?.status === 'refunded') return `${money(Number(row.refunded_amount), currency)} refunded to your card.`;
    }
    if (query.saved === 'auto') return 'Automatic top-up is saved.';
    if (query.saved === 'auto-off') return 'Automatic top-up is off.';
    if (query.saved === 'card-removed') return 'The saved card is removed; automatic top-up is off.';
    return undefined;
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
    const notice = await walletNotice(customer, request.query);
    return renderWallet(reply, customer, 200, notice ? { notice } : {});
  });

  web.post('/top-ups', async (request, reply) => {
    const customer = await ctx.customer(request);
    if (!customer) return reply.redirect('/login', 303);
    if (!ctx.checkSessionCsrf(customer, formField(request.body, 'csrf'))) {
      return forbidden(reply, viewerOf(ctx, customer));
    }
    const input = readTopUpInput(request.body);
    const settings = await readSettings(deps.db, customer.id);
    // The form shown again keeps this top-up's key until it has a final answer (formKeyAfter).
    const keep = { ...input, cvc: '' };
    const checked = validateTopUp(input, deps.clock.now(), settings.card_token !== null);
    if (checked.errors) return renderWallet(reply, customer, 422, { topUp: keep, topUpErrors: checked.errors });
    if (limited([[buyPerCustomer, customer.id]]) !== undefined) {
      return renderWallet(reply, customer, 429, {
        topUp: keep,
        topUpErrors: { form: purchaseErrorField('rate_limited', undefined).message },
      });
    }
    let topUpId: string;
    try {
      topUpId = (await topUp(deps, customer.id, input.idem, checked.amount, checked.payment)).topUpId;
    } catch (error) {
      if (!(error instanceof ProtocolError) || (error.status >= 500 && error.code !== 'bank_unavailable')) throw error;
      const { field, message } = topUpErrorField(error.code, error.detail);
      const again = formKeyAfter(error.code) === 'renew' ? { ...keep, idem: newFormKey() } : keep;
      return renderWallet(reply, customer, error.status, { topUp: again, topUpErrors: { [field]: message } });
    }
    // A result page, so that reloading it does not add the money again.
    return reply.redirect(`/coins?added=${encodeURIComponent(topUpId)}`, 303);
  });

  web.post('/auto-top-up', async (request, reply) => {
    const customer = await ctx.customer(request);
    if (!customer) return reply.redirect('/login', 303);
    const body = request.body;
    if (!ctx.checkSessionCsrf(customer, formField(body, 'csrf'))) return forbidden(reply, viewerOf(ctx, customer));
    const now = deps.clock.now();
    if (formField(body, 'action', 10) === 'off') {
      await updateAutoTopUp(deps.db, customer.id, null, now);
      return reply.redirect('/coins?saved=auto-off#auto-top-up', 303);
    }
    const input = {
      amount: formField(body, 'auto_amount', 40).trim(),
      ceiling: formField(body, 'auto_ceiling', 40).trim(),
    };
    const amount = parseDollars(input.amount);
    const ceiling = parseDollars(input.ceiling);
    const errors: { amount?: string; ceiling?: string; form?: string } = {};
    if (!amount.ok) errors.amount = amount.error;
    else if (amount.minor > MAX_TOP_UP_MINOR) errors.amount = 'The most one top-up can add is 1,000.00.';
    if (!ceiling.ok) errors.ceiling = ceiling.error;
    else if (amount.ok && ceiling.minor < amount.minor)
      errors.ceiling = 'The monthly ceiling must be at least the top-up amount.';
    else if (ceiling.minor > MAX_LIMIT_MINOR) errors.ceiling = 'The monthly ceiling can be at most 1,000.00.';
    const settings = await readSettings(deps.db, customer.id);
    if (settings.card_token === null) errors.form = 'Save a card first: add money and tick “Save this card”.';
    if (errors.amount || errors.ceiling || errors.form || !amount.ok || !ceiling.ok) {
      return renderWallet(reply, customer, 422, { autoTopUpInput: input, autoTopUpErrors: errors });
    }
    await updateAutoTopUp(deps.db, customer.id, { amountMinor: amount.minor, ceilingMinor: ceiling.minor }, now);
    return reply.redirect('/coins?saved=auto#auto-top-up', 303);
  });

  web.post('/card/forget', async (request, reply) => {
    const customer = await ctx.customer(request);
    if (!customer) return reply.redirect('/login', 303);
    if (!ctx.checkSessionCsrf(customer, formField(request.body, 'csrf'))) {
      return forbidden(reply, viewerOf(ctx, customer));
    }
    await forgetCard(deps.db, customer.id, deps.clock.now());
    return reply.redirect('/coins?saved=card-removed', 303);
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
    return reply.redirect(`/coins?refunded=${encodeURIComponent(chainId)}`, 303);
  });

  web.get('/history', async (request, reply) => {
    const customer = await ctx.customer(request);
    if (!customer) return reply.redirect('/login', 303);
    await completeRevocations(deps, customer.id);
    const rows = await balanceHistory(deps.db, customer.id);
    return sendHtml(reply, 200, historyPage(viewerOf(ctx, customer), rows, deps.config.currency));
  });
}
