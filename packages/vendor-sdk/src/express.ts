import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { WalletPaywall } from './challenge.ts';
import { payFormProblem } from './connect-pages.ts';
import { corsForExpressRoute, type NetPayCorsOptions } from './cors.ts';
import {
  chargeInput,
  requestOriginOf,
  chargeOutcome,
  defaultResource,
  type HttpReply,
  type NetPayPaid,
  releaseReply,
  webReply,
} from './http-reply.ts';
import type { RequestOrigin } from './navigation.ts';
import type { NetPayVendor } from './vendor.ts';

/** What a route charges: a price in minor units (or a function of the request) and what is bought. */
export interface NetPayExpressOptions {
  price: number | ((req: Request) => number | Promise<number>);
  /** Answer CORS for this route (mount the middleware for OPTIONS too: `app.options(path, paid)`). */
  cors?: NetPayCorsOptions;
  /** Default: method + path without the query. */
  resource?: (req: Request) => string;
  /** What is bought in words, for the reader's history at the broker; default: the resource. */
  description?: (req: Request) => string;
}

declare global {
  namespace Express {
    interface Locals {
      netpay?: NetPayPaid;
      /** Why the session's server-side wallet did not pay, and what the reader can do. */
      netpayPaywall?: WalletPaywall;
    }
  }
}

/**
 * Express middleware that charges for the route it guards: a 402 challenge or problem, or the `NetPay-Receipt`
 * header and `res.locals.netpay` (also `req.netpay`) before `next()`.
 *
 * @example
 * app.get('/articles/:id', netpayExpress(vendor, { price: 2 }), (req, res) => res.json({ text: '…' }));
 */
export function netpayExpress(vendor: NetPayVendor, options: NetPayExpressOptions): RequestHandler {
  const cors = options.cors && corsForExpressRoute(options.cors);
  return (req: Request, res: Response, next: NextFunction) => {
    if (cors?.(req, res, next)) return;
    void (async () => {
      const price = typeof options.price === 'function' ? await options.price(req) : options.price;
      const path = req.originalUrl ?? req.url;
      const decision = await vendor.charge(
        chargeInput((name) => req.get(name), {
          resource: options.resource ? options.resource(req) : defaultResource(req.method, path),
          priceMinor: price,
          path,
          description: options.description ? options.description(req) : undefined,
        }),
      );
      const outcome = chargeOutcome(decision);
      if (outcome.kind === 'free') return next();
      if (outcome.kind === 'paid') {
        res.setHeader(outcome.receiptHeader, outcome.receipt);
        res.locals.netpay = outcome.paid;
        (req as Request & { netpay?: NetPayPaid }).netpay = outcome.paid;
        return next();
      }
      if (outcome.paywall) res.locals.netpayPaywall = outcome.paywall;
      send(res, outcome.reply);
    })().catch(next);
  };
}

/**
 * The §6 release endpoint for Express; mount it after `express.json()` at the path registered as releaseUrl.
 *
 * @example
 * app.post('/netpay/release', express.json(), netpayReleaseHandler(vendor));
 */
export function netpayReleaseHandler(vendor: NetPayVendor): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    vendor
      .release(req.body)
      .then((answer) => send(res, releaseReply(answer)))
      .catch(next);
  };
}

function send(res: Response, reply: HttpReply): void {
  res.status(reply.status);
  for (const name in reply.headers) res.setHeader(name, reply.headers[name] as string | string[]);
  res.send(reply.body);
}

function origin(req: Request): RequestOrigin {
  return requestOriginOf((name) => req.get(name));
}

/**
 * Server-side wallets (§7 connect) for Express: `GET /netpay/connect`, `GET /netpay/callback` and
 * `POST /netpay/pay` (the paywall's "Read for 12c" form). Needs the vendor's `publicUrl` (or a releaseUrl ending
 * in `/netpay/release`).
 *
 * @example
 * app.get('/netpay/connect', netpayConnectHandler(vendor));
 * app.get('/netpay/callback', netpayCallbackHandler(vendor));
 * app.post('/netpay/pay', netpayPayHandler(vendor));
 */
export function netpayConnectHandler(vendor: NetPayVendor): RequestHandler {
  return (req: Request, res: Response) => {
    send(
      res,
      webReply(vendor.connect({ returnTo: req.query.return_to, cookie: req.get('cookie'), request: origin(req) })),
    );
  };
}

export function netpayCallbackHandler(vendor: NetPayVendor): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    vendor
      .connectCallback({ query: req.query as Record<string, unknown>, cookie: req.get('cookie') })
      .then((answer) => send(res, webReply(answer)))
      .catch(next);
  };
}

const MAX_FORM_BYTES = 4096;

const TOO_LARGE = Symbol('too large');

/** The request's form body: as parsed by `express.urlencoded()` when mounted before, else read here (bounded). */
async function formBody(req: Request): Promise<unknown> {
  if (req.body !== undefined && req.body !== null && typeof req.body === 'object') return req.body;
  let text = '';
  for await (const chunk of req) {
    text += typeof chunk === 'string' ? chunk : (chunk as Buffer).toString('utf8');
    if (text.length > MAX_FORM_BYTES) return TOO_LARGE;
  }
  return text;
}

export function netpayPayHandler(vendor: NetPayVendor): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    formBody(req)
      .then((body) => {
        // Oversized is said as a problem, as the Fastify adapter does, not as a form this site did not show.
        if (body === TOO_LARGE) return send(res, payFormProblem(413));
        send(res, webReply(vendor.confirmPayment({ body, cookie: req.get('cookie'), request: origin(req) })));
      })
      .catch(next);
  };
}
