import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ERROR_CODES, isProblem, PROBLEM_CONTENT_TYPE, ProtocolError, problemDetails } from '../src/index.ts';

describe('error codes', () => {
  it('have the documented statuses', () => {
    const expected: Record<string, number> = {
      bad_request: 400,
      payment_required: 402,
      already_spent: 402,
      idempotency_conflict: 422,
      chain_exists: 409,
      broker_unavailable: 503,
      previous_holder_unavailable: 503,
      invalid_card: 400,
      unknown_vendor: 404,
    };
    for (const [code, status] of Object.entries(expected)) {
      assert.equal(ERROR_CODES[code as keyof typeof ERROR_CODES].status, status, code);
    }
    for (const code of Object.keys(ERROR_CODES)) assert.match(code, /^[a-z][a-z0-9_]*$/);
    assert.equal(PROBLEM_CONTENT_TYPE, 'application/problem+json');
  });

  it('ProtocolError carries code, status, detail and extra', () => {
    const err = new ProtocolError('already_spent', 'index 3 <= 5', { lastIndex: 5 });
    assert.ok(err instanceof Error);
    assert.equal(err.status, 402);
    assert.equal(err.detail, 'index 3 <= 5');
    assert.deepEqual(err.extra, { lastIndex: 5 });
    assert.equal(new ProtocolError('conflict', undefined, undefined, 418).status, 418);
    assert.deepEqual(err.toProblem(), {
      type: 'urn:netpay:error:already_spent',
      title: ERROR_CODES.already_spent.title,
      status: 402,
      code: 'already_spent',
      detail: 'index 3 <= 5',
      lastIndex: 5,
    });
  });

  it('problemDetails never lets extras overwrite identity', () => {
    const p = problemDetails('bad_request', undefined, { code: 'x', status: 200, path: '/a' });
    assert.equal(p.code, 'bad_request');
    assert.equal(p.status, 400);
    assert.equal(p.path, '/a');
    assert.equal('detail' in p, false);
  });

  it('isProblem recognises problems', () => {
    assert.equal(isProblem(problemDetails('overlap')), true);
    assert.equal(isProblem({ code: 'nope', status: 400, type: 'x' }), false);
    assert.equal(isProblem(null), false);
    assert.equal(isProblem([]), false);
  });
});
