/**
 * The closed registry of NetPay error codes. Every problem a party puts on the wire uses one of these codes,
 * so clients can branch on `code` without parsing prose (PROTOCOL.md, conventions; RFC 9457).
 */
export const ERROR_CODES = {
  bad_request: { status: 400, title: 'The request is malformed' },
  unauthorized: { status: 401, title: 'Authentication is required' },
  forbidden: { status: 403, title: 'The caller may not do this' },
  not_found: { status: 404, title: 'No such resource' },
  method_not_allowed: { status: 405, title: 'Method not allowed' },
  conflict: { status: 409, title: 'The request conflicts with the current state' },
  chain_exists: { status: 409, title: 'A chain with this chainId already exists' },
  email_taken: { status: 409, title: 'An account with this email already exists' },
  idempotency_conflict: { status: 422, title: 'The idempotency key was used with another request' },
  payload_too_large: { status: 413, title: 'The request body is too large' },
  unsupported_media_type: { status: 415, title: 'Unsupported content type' },
  rate_limited: { status: 429, title: 'Too many requests' },
  internal_error: { status: 500, title: 'Internal error' },
  payment_required: { status: 402, title: 'Payment required' },
  invalid_payword: { status: 402, title: 'The payword does not verify' },
  already_spent: { status: 402, title: 'The index has already been spent' },
  insufficient_amount: { status: 402, title: 'The payment is less than the price' },
  chain_exhausted: { status: 402, title: 'The chain has no units left' },
  chain_expired: { status: 402, title: 'The chain has expired' },
  currency_mismatch: { status: 402, title: 'The chain is in another currency' },
  unknown_chain: { status: 402, title: 'The broker does not know this chain' },
  broker_unavailable: { status: 503, title: 'The broker cannot be reached' },
  previous_holder_unavailable: { status: 503, title: 'The previous holder cannot be reached' },
  bank_unavailable: { status: 503, title: 'The bank cannot be reached' },
  card_declined: { status: 402, title: 'The card was declined' },
  insufficient_funds: { status: 402, title: 'The card has insufficient funds' },
  invalid_card: { status: 400, title: 'The card details are invalid' },
  invalid_credentials: { status: 401, title: 'Wrong email or password' },
  not_holder: { status: 409, title: 'The caller does not hold this chain epoch' },
  lease_superseded: { status: 409, title: 'A later claim superseded this lease' },
  overlap: { status: 409, title: 'The range overlaps one already redeemed' },
  beyond_release: { status: 409, title: 'The range passes the caller’s own release' },
  not_refundable: { status: 409, title: 'The chain cannot be refunded' },
  grant_invalid: { status: 400, title: 'The wallet grant code is invalid or expired' },
  invalid_signature: { status: 400, title: 'A signature does not verify' },
  unknown_vendor: { status: 404, title: 'No such vendor' },
  // v1.1
  too_far_ahead: { status: 402, title: 'The index is too far ahead of the vendor’s last index' },
  end_unknown: { status: 409, title: 'The end of this superseded epoch is not known yet' },
  chain_refunding: { status: 409, title: 'The chain is being refunded' },
  connection_revoked: { status: 403, title: 'The customer revoked this connection' },
  limit_reached: { status: 402, title: 'A limit the customer set is reached' },
  balance_exhausted: { status: 402, title: 'The customer’s balance is exhausted' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Media type of RFC 9457 problem details. */
export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** Prefix of a problem's `type`; the code follows it. */
export const PROBLEM_TYPE_PREFIX = 'urn:netpay:error:';

/** RFC 9457 problem details as NetPay sends them: `code` duplicates the tail of `type` for easy branching. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  code: ErrorCode;
  detail?: string;
  [member: string]: unknown;
}

/**
 * Whether `code` is a registered error code.
 *
 * @example
 * isErrorCode('overlap'); // true
 */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CODES, code);
}

/**
 * An expected failure that maps onto a problem response. Throw it from pure code; the HTTP edge turns it into
 * `problemDetails(err.code, err.detail, err.extra, err.status)`.
 *
 * @example
 * throw new ProtocolError('already_spent', 'index 3 <= last 5', { lastIndex: 5 });
 */
export class ProtocolError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly detail?: string;
  readonly extra?: Record<string, unknown>;

  constructor(code: ErrorCode, detail?: string, extra?: Record<string, unknown>, status?: number) {
    super(detail === undefined ? code : `${code}: ${detail}`);
    this.name = 'ProtocolError';
    this.code = code;
    this.status = status ?? ERROR_CODES[code].status;
    if (detail !== undefined) this.detail = detail;
    if (extra !== undefined) this.extra = extra;
  }

  /** The problem-details body for this error. */
  toProblem(): Problem {
    return problemDetails(this.code, this.detail, this.extra, this.status);
  }
}

/**
 * Builds an RFC 9457 problem-details body.
 *
 * @example
 * problemDetails('already_spent', undefined, { lastIndex: 5 });
 * // { type: 'urn:netpay:error:already_spent', title: '…', status: 402, code: 'already_spent', lastIndex: 5 }
 */
export function problemDetails(
  code: ErrorCode,
  detail?: string,
  extra?: Record<string, unknown>,
  status?: number,
): Problem {
  const entry = ERROR_CODES[code];
  const problem: Problem = {
    type: PROBLEM_TYPE_PREFIX + code,
    title: entry.title,
    status: status ?? entry.status,
    code,
  };
  if (detail !== undefined) problem.detail = detail;
  if (extra !== undefined) {
    for (const [key, value] of Object.entries(extra)) {
      // Extras must not be able to forge the identity of the problem.
      if (key === 'type' || key === 'title' || key === 'status' || key === 'code') continue;
      problem[key] = value;
    }
  }
  return problem;
}

/**
 * Whether a parsed JSON value looks like a NetPay problem (has a registered `code` and a numeric `status`).
 *
 * @example
 * if (isProblem(body) && body.code === 'already_spent') resync(body.lastIndex);
 */
export function isProblem(value: unknown): value is Problem {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const v = value as Record<string, unknown>;
  return isErrorCode(v.code) && typeof v.status === 'number' && typeof v.type === 'string';
}
