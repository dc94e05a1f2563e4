import { constantTimeEqualText, hashToken, RateLimiter } from '@netpay/service-kit';
import type { FastifyInstance } from 'fastify';
import { audit } from '../audit.ts';
import { vendorAccountView } from '../payouts.ts';
import { listVendors } from '../vendor-registry.ts';
import { type OperatorData, operatorLoginPage, operatorPage } from './operator-pages.ts';
import { forbidden, sendHtml } from './respond.ts';
import { formField, OPERATOR_COOKIE, type WebContext } from './web-context.ts';

const OPERATOR_SESSION_SECONDS = 8 * 3600;

/** Everything the operator view shows, read from the store (the same audit as `netpay admin audit`). */
export async function operatorData(ctx: WebContext): Promise<OperatorData> {
  const { db, config } = ctx.deps;
  const vendors: OperatorData['vendors'] = [];
  const fees = new Map(
    (await db.selectFrom('vendor_fees').select(['vendor_id', 'gross', 'fee']).execute()).map((f) => [f.vendor_id, f]),
  );
  for (const v of await listVendors(db)) {
    const account = await vendorAccountView(db, v.vendorId, config.currency);
    vendors.push({
      vendorId: v.vendorId,
      name: v.name,
      url: v.url,
      balance: account.balance,
      pending: account.pending,
      paidOut: account.paidOut,
      redeemedGross: Number(fees.get(v.vendorId)?.gross ?? 0),
      fees: Number(fees.get(v.vendorId)?.fee ?? 0),
    });
  }
  const redemptionRows = await db
    .selectFrom('redemptions')
    .select(['id', 'vendor_id', 'response', 'created_at'])
    .orderBy('created_at', 'desc')
    .limit(50)
    .execute();
  const redemptions = redemptionRows.map((r) => {
    let items = 0;
    let accepted = 0;
    let credited = 0;
    try {
      const parsed = r.response
        ? (JSON.parse(r.response) as { items?: Array<{ status?: string }>; credited?: number })
        : {};
      items = parsed.items?.length ?? 0;
      accepted = parsed.items?.filter((i) => i.status === 'accepted').length ?? 0;
      credited = Number(parsed.credited ?? 0);
    } catch {
      // a batch still in progress has no stored answer yet
    }
    return { id: r.id, vendorId: r.vendor_id, createdAt: r.created_at, items, accepted, credited };
  });
  const payouts = (
    await db
      .selectFrom('payouts')
      .select(['id', 'vendor_id', 'amount', 'status', 'updated_at'])
      .orderBy('updated_at', 'desc')
      .limit(50)
      .execute()
  ).map((p) => ({
    id: p.id,
    vendorId: p.vendor_id,
    amount: Number(p.amount),
    status: p.status,
    updatedAt: p.updated_at,
  }));
  const conflicts = (
    await db.selectFrom('conflicts').selectAll().orderBy('created_at', 'desc').limit(50).execute()
  ).map((c) => ({
    chainId: c.chain_id,
    epoch: c.epoch,
    vendorId: c.vendor_id,
    kind: c.kind,
    from: c.from_index,
    to: c.to_index,
    amount: Number(c.amount),
    at: c.created_at,
  }));
  return { vendors, redemptions, payouts, conflicts, audit: await audit(db), currency: config.currency };
}

/**
 * The operator view, behind the operator token: log in with it once, then an HMAC'd cookie (8 hours) that a
 * new token (a rotated token file) invalidates. With no token configured the view stays closed.
 */
export function operatorRoutes(web: FastifyInstance, ctx: WebContext, operatorToken: string | undefined): void {
  const tokenHash = operatorToken ? hashToken(operatorToken) : undefined;
  const r = ctx.deps.config.rateLimits;
  const perIp = new RateLimiter(r.loginPerIp[0], r.loginPerIp[1], ctx.deps.clock);
  const loggedIn = (request: Parameters<WebContext['checkOperatorCookie']>[0]) =>
    tokenHash !== undefined && ctx.checkOperatorCookie(request, tokenHash);

  web.get('/operator/login', async (request, reply) => {
    if (loggedIn(request)) return reply.redirect('/operator', 303);
    return sendHtml(
      reply,
      tokenHash ? 200 : 503,
      operatorLoginPage({ csrf: ctx.anonCsrf(request, reply), configured: tokenHash !== undefined }),
    );
  });

  web.post('/operator/login', async (request, reply) => {
    if (!ctx.checkAnonCsrf(request, formField(request.body, 'csrf'))) return forbidden(reply);
    const again = (status: number, error?: string) =>
      sendHtml(
        reply,
        status,
        operatorLoginPage({
          csrf: ctx.anonCsrf(request, reply),
          configured: tokenHash !== undefined,
          ...(error ? { error } : {}),
        }),
      );
    if (!operatorToken || !tokenHash) return again(503);
    if (!perIp.take(request.ip)) {
      const wait = Math.max(1, perIp.retryAfterSeconds(request.ip));
      reply.header('retry-after', String(wait));
      return again(429, `Too many attempts. Wait ${wait} seconds and try again.`);
    }
    const submitted = formField(request.body, 'token', 300).trim();
    if (!constantTimeEqualText(submitted, operatorToken)) return again(401, 'That is not the operator token.');
    const expiresAtMs = ctx.deps.clock.now().getTime() + OPERATOR_SESSION_SECONDS * 1000;
    ctx.setCookie(reply, OPERATOR_COOKIE, ctx.operatorCookieValue(tokenHash, expiresAtMs), OPERATOR_SESSION_SECONDS);
    return reply.redirect('/operator', 303);
  });

  web.post('/operator/logout', async (request, reply) => {
    if (loggedIn(request) && !ctx.checkOperatorCsrf(request, formField(request.body, 'csrf'))) return forbidden(reply);
    ctx.clearCookie(reply, OPERATOR_COOKIE);
    return reply.redirect('/operator/login', 303);
  });

  web.get('/operator', async (request, reply) => {
    if (!loggedIn(request)) return reply.redirect('/operator/login', 303);
    return sendHtml(reply, 200, operatorPage(ctx.operatorCsrf(request), await operatorData(ctx)));
  });
}
