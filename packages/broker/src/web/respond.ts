import type { FastifyReply } from 'fastify';
import { errorPage } from './auth-pages.ts';
import type { Viewer } from './layout.ts';
import type { WebContext, WebCustomer } from './web-context.ts';

/** Content-Security-Policy of every page: no scripts at all, styles from our stylesheet only, no framing. */
export function contentSecurityPolicy(formActionOrigins: string[] = []): string {
  const formAction = ["'self'", ...formActionOrigins].join(' ');
  return `default-src 'none'; style-src 'self'; img-src 'self'; form-action ${formAction}; frame-ancestors 'none'; base-uri 'none'`;
}

/** Sends a rendered page; the security headers are added by the web context's onSend hook. */
export function sendHtml(reply: FastifyReply, status: number, body: string): FastifyReply {
  return reply.code(status).type('text/html; charset=utf-8').send(body);
}

export function viewerOf(ctx: WebContext, customer: WebCustomer): Viewer {
  return { email: customer.email, csrf: ctx.sessionCsrf(customer) };
}

/** The answer to a form whose CSRF token is missing or wrong: 403, and nothing was changed. */
export function forbidden(reply: FastifyReply, viewer?: Viewer): FastifyReply {
  return sendHtml(
    reply,
    403,
    errorPage(
      'This form has expired',
      'The form was not sent from this NetPay page, or it has expired. Nothing was changed. Go back, reload the page and try again.',
      viewer,
    ),
  );
}
