/**
 * Small values a vendor hands to a browser and must get back unchanged (the connect state, a confirmed payment):
 * base64url(JSON) '.' base64url(HMAC-SHA256), the MAC bound to what the value is for, so one kind of value never
 * passes for another.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { b64uDecode, b64uEncode } from '@netpay/protocol';

const MAX_SEALED_LENGTH = 4096;

function mac(secret: Uint8Array, purpose: string, payload: string): Uint8Array {
  return createHmac('sha256', secret).update(`${purpose}\n${payload}`).digest();
}

/**
 * Seals a JSON value for `purpose`.
 *
 * @example
 * const v = sealValue(secret, 'connect', { state: 's', returnTo: '/' });
 */
export function sealValue(secret: Uint8Array, purpose: string, data: unknown): string {
  const payload = b64uEncode(new TextEncoder().encode(JSON.stringify(data)));
  return `${payload}.${b64uEncode(mac(secret, purpose, payload))}`;
}

/** The JSON value sealed for `purpose` under `secret`; undefined when forged, malformed or for another purpose. */
export function openValue(secret: Uint8Array, purpose: string, value: string | undefined): unknown {
  if (!value || value.length > MAX_SEALED_LENGTH) return undefined;
  const dot = value.indexOf('.');
  if (dot <= 0) return undefined;
  const payload = value.slice(0, dot);
  let given: Uint8Array;
  try {
    given = b64uDecode(value.slice(dot + 1), 32);
  } catch {
    return undefined;
  }
  if (!timingSafeEqual(mac(secret, purpose, payload), given)) return undefined;
  try {
    return JSON.parse(new TextDecoder().decode(b64uDecode(payload))) as unknown;
  } catch {
    return undefined;
  }
}
