import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CookieJar } from '../src/cookie-jar.ts';

describe('CookieJar', () => {
  it('stores each Set-Cookie value by name and sends them all back in one Cookie header', () => {
    const jar = new CookieJar();
    assert.equal(jar.header(), '');
    jar.store(['np_session=abc; Path=/; HttpOnly; SameSite=Lax', 'np_csrf=x=y; Path=/']);
    assert.equal(jar.get('np_session'), 'abc');
    assert.equal(jar.get('np_csrf'), 'x=y', 'a value keeps its own equals signs');
    assert.equal(jar.header(), 'np_session=abc; np_csrf=x=y');
    jar.store(['np_session=def; Path=/']);
    assert.equal(jar.header(), 'np_session=def; np_csrf=x=y', 'a new value replaces the old one in place');
  });

  it('forgets a cookie set empty, with Max-Age=0 or with an Expires in the past, and ignores a line with no pair', () => {
    const now = Date.parse('2026-11-24T00:00:00Z');
    const jar = new CookieJar([
      ['a', '1'],
      ['b', '2'],
      ['c', '3'],
      ['d', '4'],
    ]);
    jar.store(
      [
        'a=; Path=/',
        'b=2; Max-Age=0',
        'c=3; Expires=Thu, 01 Jan 1970 00:00:00 GMT',
        'd=5; Expires=Fri, 01 Jan 2100 00:00:00 GMT',
        'nonsense',
      ],
      now,
    );
    assert.deepEqual([...jar], [['d', '5']]);
  });
});
