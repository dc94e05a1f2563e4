/**
 * Strict HTML templating: every interpolated value is escaped unless it is already `SafeHtml` (the result of
 * another `html` template or of `raw`). Arrays are joined without separators, so a list of rows can be
 * interpolated directly; `null`, `undefined` and `false` render as nothing.
 *
 * @example
 * const row = html`<td>${coin.holder}</td>`; // `<` in holder becomes `&lt;`
 */
export class SafeHtml {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

type Interpolated = SafeHtml | string | number | boolean | null | undefined | Interpolated[];

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
  '`': '&#96;',
};

/** Escapes text for an element body or a quoted attribute value. */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"'`]/g, (c) => ESCAPES[c] ?? c);
}

function render(value: Interpolated): string {
  if (value instanceof SafeHtml) return value.text;
  if (Array.isArray(value)) return value.map(render).join('');
  if (value === null || value === undefined || value === false) return '';
  return escapeHtml(String(value));
}

export function html(strings: TemplateStringsArray, ...values: Interpolated[]): SafeHtml {
  let out = strings[0] ?? '';
  for (let i = 0; i < values.length; i++) out += render(values[i] as Interpolated) + (strings[i + 1] ?? '');
  return new SafeHtml(out);
}

/** Marks trusted markup (constants written in this code, never input) as safe. */
export function raw(text: string): SafeHtml {
  return new SafeHtml(text);
}
