import { ProtocolError } from './error-codes.ts';

/**
 * The syntax of HTTP authentication (RFC 9110 §11), scheme-agnostic: a `WWW-Authenticate` field value is a list of
 * challenges, an `Authorization` value is one of them (credentials have the same shape), and `NetPay-Receipt` is a
 * bare list of auth-params.
 *
 *   challenge  = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
 *   auth-param = token BWS "=" BWS ( token / quoted-string )
 *   token68    = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
 *
 * A 402 may offer several schemes at once (`Bearer realm="x", NetPay realm="…"`), and another scheme's parameters
 * may hold anything a quoted-string allows (commas, escaped quotes), so a client finds its own challenge only by
 * reading the whole list with this grammar, never by splitting on commas.
 */

/** One challenge of a `WWW-Authenticate` value, or the credentials of an `Authorization` value. */
export interface AuthChallenge {
  /** The auth-scheme as sent; schemes compare case-insensitively. */
  scheme: string;
  /** The token68, when the challenge carries one instead of parameters (`Basic QWxh…==`). */
  token68?: string;
  /** The auth-params in the order sent: names lower-cased (they compare case-insensitively), values unescaped. */
  params: AuthParam[];
}

export interface AuthParam {
  name: string;
  value: string;
}

/** Longest `WWW-Authenticate` value parsed: room for other schemes' challenges beside NetPay's. */
export const MAX_CHALLENGES_LENGTH = 8192;
/** Most challenges read from one value. */
export const MAX_CHALLENGES = 16;
/** Most auth-params read from one value, over all its challenges. */
export const MAX_AUTH_PARAMS = 64;

const SP = 0x20;
const HTAB = 0x09;
const COMMA = 0x2c;
const EQUALS = 0x3d;
const DQUOTE = 0x22;
const BACKSLASH = 0x5c;

function bad(detail: string): never {
  throw new ProtocolError('bad_request', detail);
}

const TCHAR = new Uint8Array(128);
for (const ch of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") {
  TCHAR[ch.charCodeAt(0)] = 1;
}
const TOKEN68 = /[A-Za-z0-9\-._~+/]+=*/y;

/** qdtext: HTAB, SP, VCHAR except `"` and `\`, obs-text. */
function isQdtext(c: number): boolean {
  return (
    c === HTAB || c === SP || c === 0x21 || (c >= 0x23 && c <= 0x7e && c !== BACKSLASH) || (c >= 0x80 && c <= 0xff)
  );
}

/** What may follow `\` in a quoted-pair: HTAB, SP, VCHAR, obs-text. */
function isQuotable(c: number): boolean {
  return c === HTAB || (c >= 0x20 && c <= 0x7e) || (c >= 0x80 && c <= 0xff);
}

/** A cursor over one field value. Every read either advances over what it returns or leaves `pos` alone. */
class Reader {
  pos = 0;
  constructor(readonly text: string) {}

  done(): boolean {
    return this.pos >= this.text.length;
  }

  at(): number {
    return this.text.charCodeAt(this.pos);
  }

  skipOws(): void {
    while (this.at() === SP || this.at() === HTAB) this.pos++;
  }

  /** Empty list elements (RFC 9110 §5.6.1.2: a recipient accepts them), and the commas between elements. */
  skipSeparators(): void {
    for (;;) {
      this.skipOws();
      if (this.at() !== COMMA) return;
      this.pos++;
    }
  }

  token(): string {
    const start = this.pos;
    while (TCHAR[this.at()] === 1) this.pos++;
    return this.text.slice(start, this.pos);
  }

  /** A token68, but only when nothing but OWS stands between it and the next comma or the end. */
  token68(): string | undefined {
    TOKEN68.lastIndex = this.pos;
    const match = TOKEN68.exec(this.text);
    if (match === null) return undefined;
    let end = this.pos + match[0].length;
    while (this.text.charCodeAt(end) === SP || this.text.charCodeAt(end) === HTAB) end++;
    if (end < this.text.length && this.text.charCodeAt(end) !== COMMA) return undefined;
    this.pos += match[0].length;
    return match[0];
  }

  quotedString(name: string): string {
    this.pos++; // the opening quote
    let out = '';
    for (;;) {
      const c = this.at();
      if (Number.isNaN(c)) bad(`unterminated quoted string in ${name}`);
      this.pos++;
      if (c === DQUOTE) return out;
      if (c === BACKSLASH) {
        const escaped = this.at();
        if (!isQuotable(escaped)) bad(`invalid quoted-pair in ${name}`);
        this.pos++;
        out += String.fromCharCode(escaped);
      } else if (isQdtext(c)) {
        out += String.fromCharCode(c);
      } else {
        bad(`invalid character in ${name}`);
      }
    }
  }

  /** The rest of an auth-param after its name: BWS "=" BWS ( token / quoted-string ). */
  paramValue(name: string): string {
    this.skipOws();
    if (this.at() !== EQUALS) bad(`expected '=' after ${name}`);
    this.pos++;
    this.skipOws();
    if (this.at() === DQUOTE) return this.quotedString(name);
    const value = this.token();
    if (value === '') bad(`${name} has no value`);
    return value;
  }

  /** After an element: OWS, then the end or a comma (and any empty elements after it). */
  endOfElement(): void {
    this.skipOws();
    if (this.done()) return;
    if (this.at() !== COMMA) bad(`expected a comma at position ${this.pos}`);
    this.skipSeparators();
  }
}

function checkText(value: unknown, maxLength: number): string {
  if (typeof value !== 'string') bad('missing header');
  if (value.length > maxLength) bad('header too long');
  return value;
}

/**
 * Reads a `WWW-Authenticate` field value: every challenge in order. After a comma, a token followed by `=` is one
 * more parameter of the challenge before it, anything else starts a new challenge; a challenge's first word after
 * its scheme is a token68 when a comma or the end follows it, else its first parameter. Duplicate parameters are
 * kept (whether they are an error is each scheme's business).
 *
 * @throws ProtocolError('bad_request') for a value that is not a challenge list, longer than `maxLength`, or with
 *   more than MAX_CHALLENGES challenges or MAX_AUTH_PARAMS parameters; and nothing else
 * @example
 * parseChallenges('Bearer realm="x", NetPay realm="daily-planet", price=5');
 * // [{ scheme: 'Bearer', params: [{ name: 'realm', value: 'x' }] },
 * //  { scheme: 'NetPay', params: [{ name: 'realm', value: 'daily-planet' }, { name: 'price', value: '5' }] }]
 */
export function parseChallenges(value: string | undefined, maxLength = MAX_CHALLENGES_LENGTH): AuthChallenge[] {
  const r = new Reader(checkText(value, maxLength));
  const challenges: AuthChallenge[] = [];
  let current: AuthChallenge | undefined;
  let params = 0;
  /** Right after `scheme 1*SP` that was not a token68: what follows must be a parameter. */
  let paramDue = false;
  r.skipSeparators();
  while (!r.done()) {
    const start = r.pos;
    const word = r.token();
    if (word === '') bad(`expected a scheme or a parameter at position ${start}`);
    r.skipOws();
    if (r.at() === EQUALS) {
      if (current === undefined || current.token68 !== undefined) bad(`parameter ${word} belongs to no challenge`);
      if (++params > MAX_AUTH_PARAMS) bad('too many parameters');
      const name = word.toLowerCase();
      current.params.push({ name, value: r.paramValue(name) });
    } else {
      if (paramDue) bad(`expected '=' after ${word}`);
      r.pos = start + word.length;
      current = { scheme: word, params: [] };
      if (challenges.push(current) > MAX_CHALLENGES) bad('too many challenges');
      if (r.at() === SP) {
        while (r.at() === SP) r.pos++;
        const token68 = r.token68();
        if (token68 !== undefined) current.token68 = token68;
        else if (!r.done() && r.at() !== COMMA && r.at() !== HTAB) {
          paramDue = true;
          continue;
        }
      }
    }
    paramDue = false;
    r.endOfElement();
  }
  return challenges;
}

/**
 * Reads an `Authorization` value: exactly one set of credentials, of the same shape as a challenge.
 *
 * @throws ProtocolError('bad_request') for anything else
 */
export function parseCredentials(value: string | undefined, maxLength: number): AuthChallenge {
  const text = checkText(value, maxLength);
  // Authorization is not a list: no leading comma, and a second scheme is an error rather than a second element.
  if (/^[ \t]*,/.test(text)) bad('expected a scheme');
  const challenges = parseChallenges(text, maxLength);
  if (challenges.length !== 1) bad(challenges.length === 0 ? 'no credentials' : 'more than one scheme');
  return challenges[0] as AuthChallenge;
}

/**
 * Reads a bare list of auth-params (`name=value, name="value"`), as `NetPay-Receipt` carries.
 *
 * @throws ProtocolError('bad_request') for anything else, or more than MAX_AUTH_PARAMS parameters
 */
export function parseAuthParams(value: string | undefined, maxLength: number): AuthParam[] {
  const r = new Reader(checkText(value, maxLength));
  const params: AuthParam[] = [];
  r.skipSeparators();
  while (!r.done()) {
    const start = r.pos;
    const name = r.token().toLowerCase();
    if (name === '') bad(`expected a parameter name at position ${start}`);
    if (params.length >= MAX_AUTH_PARAMS) bad('too many parameters');
    params.push({ name, value: r.paramValue(name) });
    r.endOfElement();
  }
  return params;
}
