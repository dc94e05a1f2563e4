import { escapeHtml } from '@netpay/service-kit';

/** A browser-facing answer (redirect or small HTML page) with cookies to set; framework adapters send it. */
export interface WebAnswer {
  status: number;
  headers: Record<string, string>;
  /** `Set-Cookie` values. */
  cookies: string[];
  html?: string;
}

/** A 303 to a local path or the broker, never cached. */
export function redirect(location: string, cookies: string[]): WebAnswer {
  return { status: 303, headers: { location, 'cache-control': 'no-store' }, cookies };
}

/** A link a page offers: where, and its words. */
export interface PageLink {
  href: string;
  text: string;
}

/**
 * A small page in words: what happened and what the reader can do (a link back to the front page, and one to
 * the broker when the reader has something to do there).
 */
export function page(status: number, title: string, detail: string, cookies: string[], link?: PageLink): WebAnswer {
  const action = link ? `<p><a href="${escapeHtml(link.href)}">${escapeHtml(link.text)}</a></p>` : '';
  const html = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;line-height:1.5;color:#222}</style>
</head>
<body><main><h1>${escapeHtml(title)}</h1><p>${escapeHtml(detail)}</p>${action}<p><a href="/">Back to the front page</a></p></main></body>
</html>
`;
  return {
    status,
    headers: { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' },
    cookies,
    html,
  };
}
