import { isProblem } from '@netpay/protocol';
import { createLogger, createService, sendProblem } from '@netpay/service-kit';
import { type NetPayVendor, netpayFastify, prefersHtml } from '@netpay/vendor-sdk';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { type AccountSummary, renderAccountPage } from './pages/account-page.ts';
import { type PaymentNote, renderArticlePage } from './pages/article-page.ts';
import { renderFrontPage } from './pages/front-page.ts';
import { renderNotFoundPage } from './pages/not-found-page.ts';
import { renderPaywallPage } from './pages/paywall-page.ts';
import { buyCoinsUrl } from './pages/article-page.ts';
import type { WalletNote } from './pages/layout.ts';
import { type Article, findArticle, type Site } from './site.ts';

export interface NewspaperAppOptions {
  site: Site;
  /** The vendor built by `createNetPayVendor`; the app does not close it (its creator does). */
  vendor: NetPayVendor;
  /** The broker's base URL, for "buy more coins" links. */
  brokerUrl: string;
  logger?: Logger;
}

const HTML = 'text/html; charset=utf-8';

/** The resource name of an article: the same for its page and its API, so a chain that bought one may read both. */
export function articleResource(id: string): string {
  return `article/${id}`;
}

function articleOf(site: Site, request: FastifyRequest): Article | undefined {
  const id = (request.params as { id?: unknown } | undefined)?.id;
  return typeof id === 'string' ? findArticle(site, id) : undefined;
}

/** The payment note for a page, from what the SDK put on the request; none for a free article. */
function paymentNote(request: FastifyRequest, article: Article): PaymentNote | undefined {
  const paid = request.netpay;
  if (!paid || article.priceMinor === 0) return undefined;
  // No Authorization header: the session's connected balance paid (or it was bought before), not a coin.
  const fromBalance = request.headers.authorization === undefined;
  return { chargedMinor: paid.charged ? article.priceMinor : 0, balanceMinor: paid.balanceMinor, fromBalance };
}

/** The ids of the site's articles a browser session bought. */
function boughtIds(site: Site, request: FastifyRequest): ReadonlySet<string> {
  const bought = request.netpayBought;
  return new Set(site.articles.filter((a) => bought?.has(articleResource(a.id))).map((a) => a.id));
}

/**
 * Builds one newspaper site as a Fastify app: front page, article pages behind the NetPay paywall, the vendor's
 * account page, and a small JSON API with the same prices.
 *
 * The vendor SDK's plugin decides free / paid / problem for every route that declares `config.netpay`; this app
 * only renders. A 402 sent to a browser on an article page is re-rendered as the site's own paywall, keeping the
 * SDK's status and challenge header, so a reader whose coin ran out sees a link to buy more.
 *
 * @example
 * const app = createNewspaperApp({ site: SITES['daily-planet'], vendor, brokerUrl: 'http://127.0.0.1:4000' });
 * await app.listen({ port: 4001 });
 */
export function createNewspaperApp(options: NewspaperAppOptions): FastifyInstance {
  const { site, vendor } = options;
  const brokerUrl = options.brokerUrl.replace(/\/+$/, '');
  const app = createService({ name: site.vendorId, logger: options.logger ?? createLogger(site.vendorId) });
  app.register(netpayFastify, { vendor });

  const priceOf = (request: FastifyRequest) => articleOf(site, request)?.priceMinor ?? 0;
  const resourceOf = (request: FastifyRequest) => articleResource((request.params as { id: string }).id);
  const titleOf = (request: FastifyRequest) => articleOf(site, request)?.title ?? resourceOf(request);
  const netpay = { price: priceOf, resource: resourceOf, description: titleOf };

  // Replaces the SDK's generic 402 page (or JSON problem) with the site's paywall when a browser asks.
  const sitePaywall = async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    if (reply.statusCode !== 402 || !prefersHtml(request.headers.accept)) return payload;
    const article = articleOf(site, request);
    if (!article) return payload;
    let code = request.netpayRefusal ?? 'payment_required';
    const type = String(reply.getHeader('content-type') ?? '');
    if (!request.netpayRefusal && type.includes('json') && typeof payload === 'string') {
      try {
        const problem: unknown = JSON.parse(payload);
        if (isProblem(problem)) code = problem.code;
      } catch {
        // not a problem body: keep payment_required
      }
    }
    reply.header('content-type', HTML);
    reply.header('cache-control', 'no-store');
    // The button runs connect here (server-side wallet), which sends the reader to the broker and back.
    const connectUrl = vendor.serverWallets
      ? `/netpay/connect?return_to=${encodeURIComponent(request.url)}`
      : `${brokerUrl}/connect?vendor=${encodeURIComponent(site.vendorId)}`;
    return renderPaywallPage(site, article, {
      code,
      brokerUrl,
      connectUrl,
      wallet: walletOf(request),
      refusal: request.netpayPaywall,
    }).toString();
  };

  const walletOf = (request: FastifyRequest): WalletNote | null => {
    const w = request.netpayWallet;
    if (!w) return null;
    return {
      allowanceLeftMinor: w.allowanceLeftMinor,
      balanceMinor: w.balanceMinor,
      balanceAtMs: w.balanceAtMs,
      balanceFresh: w.balanceFresh,
      autoPayMaxMinor: w.autoPayMaxMinor,
      addMoneyUrl: buyCoinsUrl(brokerUrl),
    };
  };

  app.get('/', async (request, reply) => {
    // The figures and "Bought" marks are this reader's, as of now: never cached.
    reply.header('cache-control', 'private, no-store');
    return reply.type(HTML).send(renderFrontPage(site, walletOf(request), boughtIds(site, request)).toString());
  });

  app.get<{ Params: { id: string } }>(
    '/articles/:id',
    { config: { netpay }, onSend: sitePaywall },
    async (request, reply) => {
      const article = findArticle(site, request.params.id);
      if (!article) {
        if (prefersHtml(request.headers.accept)) {
          return reply
            .code(404)
            .type(HTML)
            .send(renderNotFoundPage(site, request.url.split('?')[0] ?? '', walletOf(request)).toString());
        }
        return sendProblem(reply, 'not_found', `no article ${request.params.id}`);
      }
      const payment = paymentNote(request, article);
      if (article.priceMinor > 0) reply.header('cache-control', 'private, no-store');
      const wallet = walletOf(request);
      const options = payment ? { brokerUrl, payment, wallet } : { brokerUrl, wallet };
      return reply.type(HTML).send(renderArticlePage(site, article, options).toString());
    },
  );

  app.get('/account', async (request, reply) => {
    const summary = await accountSummary(vendor, site.currency);
    return reply
      .type(HTML)
      .header('cache-control', 'no-store')
      .send(renderAccountPage(site, summary, walletOf(request)).toString());
  });

  app.get('/api/articles', async () => ({
    articles: site.articles.map((a) => ({
      id: a.id,
      title: a.title,
      priceMinor: a.priceMinor,
      currency: site.currency,
    })),
  }));

  app.get<{ Params: { id: string } }>('/api/articles/:id', { config: { netpay } }, async (request, reply) => {
    const article = findArticle(site, request.params.id);
    if (!article) return sendProblem(reply, 'not_found', `no article ${request.params.id}`);
    if (article.priceMinor > 0) reply.header('cache-control', 'private, no-store');
    return { id: article.id, title: article.title, author: article.author, date: article.date, body: article.body };
  });

  return app;
}

/** The vendor's account view mapped onto the page's figures; the broker being down is shown, not thrown. */
export async function accountSummary(vendor: NetPayVendor, currency: string): Promise<AccountSummary> {
  try {
    const view = await vendor.account();
    const summary: AccountSummary = {
      currency: view.currency ?? currency,
      earnedMinor: view.earnedMinor,
      pendingMinor: view.pendingMinor,
      redeemedMinor: view.redeemedMinor,
    };
    if (view.paidOutMinor !== null) summary.paidOutMinor = view.paidOutMinor;
    if (view.balanceMinor !== null) summary.balanceMinor = view.balanceMinor;
    if (view.paidOutMinor === null || view.balanceMinor === null) {
      summary.brokerError = 'showing our own records only; paid-out and balance figures come from the broker';
    }
    return summary;
  } catch (err) {
    return {
      currency,
      earnedMinor: 0,
      pendingMinor: 0,
      redeemedMinor: 0,
      brokerError: err instanceof Error ? err.message : String(err),
    };
  }
}
