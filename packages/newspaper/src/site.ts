import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** One article of a newspaper site. `priceMinor` 0 means free. */
export interface Article {
  /** URL slug, unique within the site. */
  id: string;
  title: string;
  section: string;
  author: string;
  /** Publication date, `YYYY-MM-DD`. */
  date: string;
  summary: string;
  /** The article text, one string a paragraph. */
  body: string[];
  /** Price in minor units of the site's currency (cents); 0 for a free article. */
  priceMinor: number;
}

/** The look of a site: colours and fonts rendered into CSS custom properties. */
export interface Theme {
  background: string;
  surface: string;
  text: string;
  muted: string;
  accent: string;
  accentText: string;
  rule: string;
  link: string;
  bodyFont: string;
  headingFont: string;
  uiFont: string;
  /** `broadsheet`: quiet masthead on the page colour; `tabloid`: heavy masthead on the accent colour. */
  masthead: 'broadsheet' | 'tabloid';
  mastheadAlign: 'left' | 'center';
  mastheadCase: 'none' | 'uppercase';
}

/** A newspaper site: who it is as a vendor, how it looks, and what it sells. */
export interface Site {
  vendorId: string;
  name: string;
  tagline: string;
  /** The port the site listens on unless told otherwise. */
  port: number;
  currency: string;
  locale: string;
  theme: Theme;
  articles: Article[];
}

const SLUG = /^[a-z0-9][a-z0-9-]{0,63}$/;
const DATE = /^\d{4}-\d{2}-\d{2}$/;
const CURRENCY = /^[A-Z]{3}$/;
// Theme values end up inside a <style> element; allow only what colours and font lists need.
const CSS_VALUE = /^[#A-Za-z0-9 ,.'()%-]{1,120}$/;
const MAX_PRICE_MINOR = 10_000;

function fail(source: string, detail: string): never {
  throw new Error(`invalid site config ${source}: ${detail}`);
}

function str(source: string, value: unknown, name: string, max = 10_000): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > max) {
    fail(source, `${name} must be a non-empty string of at most ${max} characters`);
  }
  return value;
}

/**
 * Checks a parsed site config and returns it typed. Configs are operator input, so everything that reaches
 * HTML, CSS or a URL is checked here once.
 *
 * @throws Error naming the file and the field
 * @example
 * const site = parseSite(JSON.parse(text), 'sites/my-paper.json');
 */
export function parseSite(value: unknown, source = 'site'): Site {
  if (typeof value !== 'object' || value === null) fail(source, 'must be a JSON object');
  const v = value as Record<string, unknown>;
  const vendorId = str(source, v.vendorId, 'vendorId', 64);
  if (!SLUG.test(vendorId)) fail(source, 'vendorId must be a slug [a-z0-9][a-z0-9-]{0,63}');
  const port = v.port;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
    fail(source, 'port must be an integer in 1..65535');
  }
  const currency = str(source, v.currency ?? 'NZD', 'currency', 3);
  if (!CURRENCY.test(currency)) fail(source, 'currency must be an ISO 4217 code');
  const t = (v.theme ?? {}) as Record<string, unknown>;
  const css = (name: keyof Theme): string => {
    const s = str(source, t[name], `theme.${name}`, 120);
    if (!CSS_VALUE.test(s)) fail(source, `theme.${name} has characters not allowed in CSS values`);
    return s;
  };
  const theme: Theme = {
    background: css('background'),
    surface: css('surface'),
    text: css('text'),
    muted: css('muted'),
    accent: css('accent'),
    accentText: css('accentText'),
    rule: css('rule'),
    link: css('link'),
    bodyFont: css('bodyFont'),
    headingFont: css('headingFont'),
    uiFont: css('uiFont'),
    masthead: t.masthead === 'tabloid' ? 'tabloid' : 'broadsheet',
    mastheadAlign: t.mastheadAlign === 'center' ? 'center' : 'left',
    mastheadCase: t.mastheadCase === 'uppercase' ? 'uppercase' : 'none',
  };
  if (!Array.isArray(v.articles) || v.articles.length === 0) fail(source, 'articles must be a non-empty array');
  const seen = new Set<string>();
  const articles = v.articles.map((raw: unknown, i: number): Article => {
    const a = (raw ?? {}) as Record<string, unknown>;
    const where = `articles[${i}]`;
    const id = str(source, a.id, `${where}.id`, 64);
    if (!SLUG.test(id)) fail(source, `${where}.id must be a slug`);
    if (seen.has(id)) fail(source, `${where}.id ${id} is used twice`);
    seen.add(id);
    const date = str(source, a.date, `${where}.date`, 10);
    if (!DATE.test(date) || Number.isNaN(Date.parse(date))) fail(source, `${where}.date must be YYYY-MM-DD`);
    const price = a.priceMinor;
    if (typeof price !== 'number' || !Number.isSafeInteger(price) || price < 0 || price > MAX_PRICE_MINOR) {
      fail(source, `${where}.priceMinor must be an integer in 0..${MAX_PRICE_MINOR}`);
    }
    if (!Array.isArray(a.body) || a.body.length === 0) fail(source, `${where}.body must be a non-empty array`);
    return {
      id,
      title: str(source, a.title, `${where}.title`, 300),
      section: str(source, a.section, `${where}.section`, 60),
      author: str(source, a.author, `${where}.author`, 120),
      date,
      summary: str(source, a.summary, `${where}.summary`, 1000),
      body: a.body.map((p: unknown, j: number) => str(source, p, `${where}.body[${j}]`)),
      priceMinor: price,
    };
  });
  return {
    vendorId,
    name: str(source, v.name, 'name', 120),
    tagline: str(source, v.tagline ?? ' ', 'tagline', 300),
    port,
    currency,
    locale: str(source, v.locale ?? 'en', 'locale', 35),
    theme,
    articles,
  };
}

const SITES_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'sites');

/** Names of the built-in sites, usable as `--site <name>`. */
export const SITE_NAMES = ['daily-planet', 'the-bugle'] as const;
export type SiteName = (typeof SITE_NAMES)[number];

/**
 * Loads a site by built-in name (`daily-planet`, `the-bugle`) or from a JSON file path.
 *
 * @throws Error when the file is missing or the config is invalid
 * @example
 * const site = loadSite('daily-planet');
 * const mine = loadSite('./my-paper.json');
 */
export function loadSite(nameOrPath: string): Site {
  const path = (SITE_NAMES as readonly string[]).includes(nameOrPath)
    ? join(SITES_DIR, `${nameOrPath}.json`)
    : nameOrPath;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new Error(`unknown site ${nameOrPath}: expected ${SITE_NAMES.join(' or ')} or a path to a site .json file`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`invalid site config ${path}: ${(err as Error).message}`);
  }
  return parseSite(json, path);
}

/**
 * The built-in sites by name.
 *
 * @example
 * SITES['the-bugle'].articles.length; // 8
 */
export const SITES: Readonly<Record<SiteName, Site>> = Object.freeze({
  'daily-planet': loadSite('daily-planet'),
  'the-bugle': loadSite('the-bugle'),
});

/** The article with this id, or undefined. */
export function findArticle(site: Site, id: string): Article | undefined {
  return site.articles.find((a) => a.id === id);
}
