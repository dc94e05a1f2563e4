import { ProtocolError } from '@netpay/protocol';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { netPayBalance, siteSummaries } from '../balance.ts';
import { setSiteCap } from '../connections.ts';
import { MAX_LIMIT_MINOR, readSettings, updateLimits } from '../customer-settings.ts';
import { completeRevocations, revokeConnection } from '../revoke.ts';
import { parseDollars } from './buy-form.ts';
import { money } from './layout.ts';
import { forbidden, sendHtml, viewerOf } from './respond.ts';
import { type SitesState, sitesPage } from './sites-page.ts';
import { formField, type WebContext, type WebCustomer } from './web-context.ts';

const CONNECTION_ID = /^con_[A-Za-z0-9_-]{16}$/;

/** A limit typed in dollars: 0.00 up to the most a limit may be. */
function limitOf(text: string): { ok: true; minor: number } | { ok: false; error: string } {
  if (/^\s*(NZ)?\$?\s*0+(\.0{1,2})?\s*$/i.test(text)) return { ok: true, minor: 0 };
  const parsed = parseDollars(text);
  if (!parsed.ok) return parsed;
  if (parsed.minor > MAX_LIMIT_MINOR) return { ok: false, error: 'A limit can be at most 1,000.00.' };
  return parsed;
}

/** The connected sites page: list, per-site limit, Revoke (CSRF-protected POSTs), and the limits across sites. */
export function sitesRoutes(web: FastifyInstance, ctx: WebContext): void {
  const { deps } = ctx;

  const render = async (
    reply: FastifyReply,
    customer: WebCustomer,
    status: number,
    extra: Partial<Pick<SitesState, 'notice' | 'settingsInput' | 'settingsErrors' | 'capError'>> = {},
  ) => {
    await completeRevocations(deps, customer.id);
    const now = deps.clock.now();
    const settings = await readSettings(deps.db, customer.id);
    return sendHtml(
      reply,
      status,
      sitesPage({
        viewer: viewerOf(ctx, customer),
        currency: deps.config.currency,
        balance: await netPayBalance(deps.db, customer.id),
        sites: await siteSummaries(deps.db, customer.id, now),
        limits: {
          autoPayMaxMinor: Number(settings.auto_pay_max_minor),
          dailyCapMinor: Number(settings.daily_cap_minor),
          askEachSite: settings.ask_each_site === 1,
        },
        ...extra,
      }),
    );
  };

  /** The revoke's result as the page says it, from what the store holds now (so a reload says the same). */
  const revokedNotice = async (customer: WebCustomer, connectionId: string): Promise<string | undefined> => {
    if (!CONNECTION_ID.test(connectionId)) return undefined;
    const connection = await deps.db
      .selectFrom('connections')
      .innerJoin('vendors', 'vendors.id', 'connections.vendor_id')
      .select(['connections.id', 'connections.revoked_at', 'connections.chain_id', 'vendors.name'])
      .where('connections.id', '=', connectionId)
      .where('connections.customer_id', '=', customer.id)
      .executeTakeFirst();
    if (!connection || connection.revoked_at === null) return undefined;
    const returned = connection.chain_id
      ? await deps.db
          .selectFrom('allowances')
          .select('amount')
          .where('chain_id', '=', connection.chain_id)
          .where('kind', '=', 'return')
          .executeTakeFirst()
      : undefined;
    if (returned || connection.chain_id === null) {
      const amount = -Number(returned?.amount ?? 0);
      return `${connection.name} is disconnected. ${money(amount, deps.config.currency)} of its allowance is back in your NetPay balance.`;
    }
    return `${connection.name} is disconnected and can take nothing more. What it still holds comes back to your balance when it releases it (see below).`;
  };

  web.get<{ Querystring: Record<string, string> }>('/sites', async (request, reply) => {
    const customer = await ctx.customer(request);
    if (!customer) return reply.redirect('/login', 303);
    // Before the notice: a revoke whose site's lease ran out is finished now, and the notice says so.
    await completeRevocations(deps, customer.id);
    const notice =
      request.query.saved === 'limits'
        ? 'Your limits are saved.'
        : typeof request.query.revoked === 'string'
          ? await revokedNotice(customer, request.query.revoked)
          : undefined;
    return render(reply, customer, 200, notice ? { notice } : {});
  });

  web.post<{ Params: { id: string } }>('/sites/:id/revoke', async (request, reply) => {
    const customer = await ctx.customer(request);
    if (!customer) return reply.redirect('/login', 303);
    if (!ctx.checkSessionCsrf(customer, formField(request.body, 'csrf'))) {
      return forbidden(reply, viewerOf(ctx, customer));
    }
    const { id } = request.params;
    if (!CONNECTION_ID.test(id)) return render(reply, customer, 404, { notice: 'No such connected site.' });
    try {
      await revokeConnection(deps, customer.id, id);
    } catch (error) {
      if (error instanceof ProtocolError && error.code === 'not_found') {
        return render(reply, customer, 404, { notice: 'No such connected site.' });
      }
      throw error;
    }
    return reply.redirect(`/sites?revoked=${encodeURIComponent(id)}`, 303);
  });

  web.post<{ Params: { id: string } }>('/sites/:id/limit', async (request, reply) => {
    const customer = await ctx.customer(request);
    if (!customer) return reply.redirect('/login', 303);
    if (!ctx.checkSessionCsrf(customer, formField(request.body, 'csrf'))) {
      return forbidden(reply, viewerOf(ctx, customer));
    }
    const { id } = request.params;
    const value = formField(request.body, 'site_cap', 40).trim();
    const cap = limitOf(value);
    if (!cap.ok) return render(reply, customer, 422, { capError: { connectionId: id, message: cap.error, value } });
    try {
      await setSiteCap(deps.db, customer.id, id, cap.minor);
    } catch (error) {
      if (error instanceof ProtocolError && error.code === 'not_found') {
        return render(reply, customer, 404, { notice: 'No such connected site.' });
      }
      throw error;
    }
    return reply.redirect('/sites?saved=limits', 303);
  });

  web.post('/sites/settings', async (request, reply) => {
    const customer = await ctx.customer(request);
    if (!customer) return reply.redirect('/login', 303);
    const body = request.body;
    if (!ctx.checkSessionCsrf(customer, formField(body, 'csrf'))) return forbidden(reply, viewerOf(ctx, customer));
    const input = {
      autoPay: formField(body, 'auto_pay', 40).trim(),
      dailyCap: formField(body, 'daily_cap', 40).trim(),
      askEachSite: formField(body, 'ask_each_site', 10) === 'on',
    };
    const autoPay = limitOf(input.autoPay);
    const dailyCap = limitOf(input.dailyCap);
    if (!autoPay.ok || !dailyCap.ok) {
      return render(reply, customer, 422, {
        settingsInput: input,
        settingsErrors: {
          ...(autoPay.ok ? {} : { autoPay: autoPay.error }),
          ...(dailyCap.ok ? {} : { dailyCap: dailyCap.error }),
        },
      });
    }
    await updateLimits(
      deps.db,
      customer.id,
      { autoPayMaxMinor: autoPay.minor, dailyCapMinor: dailyCap.minor, askEachSite: input.askEachSite },
      deps.clock.now(),
    );
    return reply.redirect('/sites?saved=limits', 303);
  });
}
