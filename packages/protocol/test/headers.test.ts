import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  type AuthChallenge,
  b64uEncode,
  formatAuthorization,
  formatReceipt,
  formatWwwAuthenticate,
  isNetPayAuthorization,
  MAX_AUTH_PARAMS,
  MAX_CHAIN_LENGTH,
  MAX_CHALLENGES,
  MAX_CHALLENGES_LENGTH,
  MAX_HEADER_LENGTH,
  ProtocolError,
  parseAuthorization,
  parseChallenges,
  parseReceipt,
  parseWwwAuthenticate,
  pickNetPayChallenge,
  type WwwAuthenticateParams,
} from '../src/index.ts';
import { vectors } from './vectors.ts';

const chain: string = vectors.chain.chainId;
const payword = vectors.chain.paywords[3] as string;
const valid = `NetPay chain="${chain}", index="3", payword="${payword}"`;

/** Asserts that `fn` either returns or throws a bad_request ProtocolError, nothing else. */
function onlyBadRequest(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ProtocolError, `threw ${String(err)}`);
    assert.equal(err.code, 'bad_request');
  }
}

const b64 = (n: number) => fc.uint8Array({ minLength: n, maxLength: n }).map(b64uEncode);

describe('Authorization', () => {
  it('parses the canonical form', () => {
    assert.deepEqual(parseAuthorization(valid), { chain, index: 3, payword });
  });

  it('accepts any scheme case, any parameter order and optional whitespace', () => {
    const variants = [
      `netpay index="3",payword="${payword}",chain="${chain}"`,
      `NETPAY   payword = "${payword}" ,  chain="${chain}"\t, index="3"  `,
      `  NetPay chain="${chain}",index="3",PAYWORD="${payword}"`,
      // RFC 9110 §11.2: a value is a token or a quoted-string, and a quoted-pair stands for the character it escapes.
      `NetPay chain=${chain}, index=3, payword=${payword}`,
      `NetPay chain="${chain}", index="\\3", payword="${payword.replace(/-/g, '\\-')}"`,
      // RFC 9110 §5.6.1.2: empty list elements are accepted and ignored.
      `NetPay chain="${chain}",, index="3", payword="${payword}",`,
    ];
    for (const v of variants) assert.deepEqual(parseAuthorization(v), { chain, index: 3, payword });
  });

  it('rejects malformed headers with bad_request', () => {
    const bad = [
      undefined,
      '',
      'NetPay',
      'NetPay ',
      `Bearer chain="${chain}", index="3", payword="${payword}"`,
      `NetPayX chain="${chain}", index="3", payword="${payword}"`,
      `NetPay chain="${chain}", index="3"`,
      `NetPay chain="${chain}", index="3", payword="${payword}", extra="1"`,
      `NetPay chain="${chain}", index="3", index="3", payword="${payword}"`,
      `NetPay chain="${chain}", index="03", payword="${payword}"`,
      `NetPay chain="${chain}", index="-1", payword="${payword}"`,
      `NetPay chain="${chain}", index="3.0", payword="${payword}"`,
      `NetPay chain="${chain}", index="1e3", payword="${payword}"`,
      `NetPay chain="${chain}", index="${MAX_CHAIN_LENGTH + 1}", payword="${payword}"`,
      `NetPay chain="${chain}=", index="3", payword="${payword}"`,
      `NetPay chain="${payword}", index="3", payword="${chain}"`,
      `NetPay chain="${chain.slice(0, -1)}x", index="3", payword="${payword}"`,
      `NetPay chain="${chain}" index="3" payword="${payword}"`,
      `NetPay chain="${chain}", index="3", payword="${payword}`,
      `NetPay chain="${chain}", index="3", payword="${payword}\\"`,
      `NetPay chain="${chain}", index="3", payword="${payword}" x`,
      `NetPay chain="${chain}", index="3", payword="${payword}"${' '.repeat(MAX_HEADER_LENGTH)}`,
      `NetPay chain="${chain}", index="3", payword="${payword}", Bearer abc`,
      `Bearer abc, NetPay chain="${chain}", index="3", payword="${payword}"`,
      `, NetPay chain="${chain}", index="3", payword="${payword}"`,
      `NetPay\tchain="${chain}", index="3", payword="${payword}"`,
      `NetPay abc==`,
      `NetPay chain="${chain}", index=, payword="${payword}"`,
      `NetPay chain="${chain}", index="3", payword="${payword}", x="\u0001"`,
      `NetPay chain="${chain}", index="3\u00e9", payword="${payword}"`,
    ];
    for (const header of bad) {
      assert.throws(
        () => parseAuthorization(header),
        (err: unknown) => err instanceof ProtocolError && err.code === 'bad_request',
        String(header),
      );
    }
  });

  it('format → parse roundtrips', () => {
    fc.assert(
      fc.property(b64(16), fc.integer({ min: 0, max: MAX_CHAIN_LENGTH }), b64(32), (c, index, p) => {
        const params = { chain: c, index, payword: p };
        assert.deepEqual(parseAuthorization(formatAuthorization(params)), params);
      }),
    );
  });

  it('formatting refuses invalid values', () => {
    assert.throws(() => formatAuthorization({ chain, index: -1, payword }), ProtocolError);
    assert.throws(() => formatAuthorization({ chain: payword, index: 1, payword }), ProtocolError);
    assert.throws(() => formatAuthorization({ chain, index: 1, payword: 'x"' }), ProtocolError);
  });

  it('parse throws nothing but bad_request on arbitrary strings', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: 'grapheme' }), fc.string({ unit: 'binary' })), (s) => {
        onlyBadRequest(() => parseAuthorization(s));
        onlyBadRequest(() => parseAuthorization(`NetPay ${s}`));
        onlyBadRequest(() => parseWwwAuthenticate(s));
        onlyBadRequest(() => parseReceipt(s));
      }),
      { numRuns: 500 },
    );
  });

  it('parse throws nothing but bad_request on mutated valid headers', () => {
    const mutation = fc.record({
      at: fc.nat({ max: valid.length }),
      remove: fc.nat({ max: 4 }),
      insert: fc.string({ maxLength: 4, unit: 'binary' }),
    });
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 3 }), (mutations) => {
        let header = valid;
        for (const m of mutations) header = header.slice(0, m.at) + m.insert + header.slice(m.at + m.remove);
        onlyBadRequest(() => {
          const parsed = parseAuthorization(header);
          // Anything that still parses must be well formed.
          formatAuthorization(parsed);
        });
      }),
      { numRuns: 1000 },
    );
  });

  it('isNetPayAuthorization checks only the scheme', () => {
    assert.equal(isNetPayAuthorization(valid), true);
    assert.equal(isNetPayAuthorization('netpay whatever'), true);
    assert.equal(isNetPayAuthorization('NetPay'), true);
    assert.equal(isNetPayAuthorization('Bearer abc'), false);
    assert.equal(isNetPayAuthorization('NetPayment x'), false);
    assert.equal(isNetPayAuthorization(undefined), false);
  });
});

describe('WWW-Authenticate', () => {
  const challenge = { realm: 'daily-planet', price: 5, currency: 'NZD', broker: 'https://broker.example' };

  it('formats the documented form and roundtrips', () => {
    const text = formatWwwAuthenticate(challenge);
    assert.equal(text, 'NetPay realm="daily-planet", price="5", currency="NZD", broker="https://broker.example"');
    assert.deepEqual(parseWwwAuthenticate(text), challenge);
    fc.assert(
      fc.property(
        fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,20}$/),
        fc.maxSafeNat(),
        fc.stringMatching(/^[A-Z]{3}$/),
        fc.webUrl({ validSchemes: ['https', 'http'] }).filter((u) => !/["\\\s]/.test(u) && u.length < 500),
        (realm, price, currency, broker) => {
          const params = { realm, price, currency, broker };
          assert.deepEqual(parseWwwAuthenticate(formatWwwAuthenticate(params)), params);
        },
      ),
    );
  });

  it('ignores unknown parameters but rejects missing, duplicate and malformed ones', () => {
    assert.deepEqual(parseWwwAuthenticate(`${formatWwwAuthenticate(challenge)}, future="x"`), challenge);
    for (const bad of [
      'NetPay realm="daily-planet", price="5", currency="NZD"',
      'NetPay realm="daily-planet", price="05", currency="NZD", broker="https://broker.example"',
      'NetPay realm="Daily", price="5", currency="NZD", broker="https://broker.example"',
      'NetPay realm="daily-planet", price="5", currency="nzd", broker="https://broker.example"',
      'NetPay realm="daily-planet", price="5", currency="NZD", broker="ftp://broker.example"',
      'NetPay realm="a", realm="b", price="5", currency="NZD", broker="https://broker.example"',
    ]) {
      assert.throws(() => parseWwwAuthenticate(bad), ProtocolError, bad);
    }
  });
});

// Challenge lists as a test writes them: values quoted (escaping `"` and `\\`) or, when they are tokens, bare.
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const quote = (value: string) => `"${value.replace(/["\\]/g, (c) => `\\${c}`)}"`;
const paramText = (name: string, value: string, bare: boolean) =>
  `${name}=${bare && TOKEN.test(value) ? value : quote(value)}`;
function challengeText(c: AuthChallenge, bare = false): string {
  if (c.token68 !== undefined) return `${c.scheme} ${c.token68}`;
  if (c.params.length === 0) return c.scheme;
  return `${c.scheme} ${c.params.map((p) => paramText(p.name, p.value, bare)).join(', ')}`;
}

const tokenArb = fc.stringMatching(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,12}$/);
const otherScheme = tokenArb.filter((t) => t.toLowerCase() !== 'netpay');
/** Anything a quoted-string can carry: printable ASCII (commas, `=`, `"` and `\\` included), tabs, obs-text. */
const quotable = fc.string({
  unit: fc.oneof(
    fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
    fc.constantFrom('\t', ',', '"', '\\', '=', '\u00e9'),
  ),
  maxLength: 24,
});
/** Records with Object.prototype, as the parser makes them, so deepEqual compares contents only. */
const plain = { noNullPrototype: true } as const;
const otherChallenge: fc.Arbitrary<AuthChallenge> = fc.oneof(
  fc.record({ scheme: otherScheme, params: fc.constant<AuthChallenge['params']>([]) }, plain),
  fc.record(
    {
      scheme: otherScheme,
      token68: fc.stringMatching(/^[A-Za-z0-9\-._~+/]{1,16}={0,2}$/),
      params: fc.constant<AuthChallenge['params']>([]),
    },
    plain,
  ),
  fc.record(
    {
      scheme: otherScheme,
      params: fc.array(
        fc.record({ name: tokenArb.map((t) => t.toLowerCase()), value: fc.oneof(tokenArb, quotable) }, plain),
        {
          minLength: 1,
          maxLength: 4,
        },
      ),
    },
    plain,
  ),
);
const separator = fc.constantFrom(', ', ',', ' ,\t', ' , , ', ',\t,');

describe('Challenge lists (RFC 9110 §11)', () => {
  it('reads the examples of RFC 9110, 7617, 6750 and 7616', () => {
    assert.deepEqual(
      parseChallenges('Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple"'),
      [
        {
          scheme: 'Newauth',
          params: [
            { name: 'realm', value: 'apps' },
            { name: 'type', value: '1' },
            { name: 'title', value: 'Login to "apps"' },
          ],
        },
        { scheme: 'Basic', params: [{ name: 'realm', value: 'simple' }] },
      ],
    );
    assert.deepEqual(parseChallenges('Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=='), [
      { scheme: 'Basic', token68: 'QWxhZGRpbjpvcGVuIHNlc2FtZQ==', params: [] },
    ]);
    assert.deepEqual(
      parseChallenges('Bearer realm="example", error="invalid_token", error_description="The access token expired"'),
      [
        {
          scheme: 'Bearer',
          params: [
            { name: 'realm', value: 'example' },
            { name: 'error', value: 'invalid_token' },
            { name: 'error_description', value: 'The access token expired' },
          ],
        },
      ],
    );
    const digest = parseChallenges(
      'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, ' +
        'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS", ' +
        'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=MD5',
    );
    assert.deepEqual(
      digest.map((c) => [c.scheme, c.params.length]),
      [
        ['Digest', 5],
        ['Digest', 3],
      ],
    );
    assert.equal(digest[0]?.params[1]?.value, 'auth, auth-int');
    assert.equal(digest[0]?.params[2]?.value, 'SHA-256');
    // A scheme alone, empty elements anywhere, parameter names in any case, BWS around `=`.
    assert.deepEqual(parseChallenges(' , Negotiate,, Basic REALM = x ,'), [
      { scheme: 'Negotiate', params: [] },
      { scheme: 'Basic', params: [{ name: 'realm', value: 'x' }] },
    ]);
  });

  it('rejects what the grammar does not allow', () => {
    for (const bad of [
      'realm="x"',
      'Basic abc==, realm="x"',
      'Basic realm="x" Bearer',
      'Basic realm="x', // unterminated
      'Basic realm="x\\',
      'Basic realm=, x=1',
      'Basic realm="a\u0000b"',
      'Basic realm="a\\\u0001"',
      'Basic realm=a"b"',
      'Basic realm="\u0100"',
      'Basic abc= def ghi',
      'Basic\trealm="x"',
      'Basic realm="x" , =y',
      '"Basic"',
    ]) {
      assert.throws(
        () => parseChallenges(bad),
        (err: unknown) => err instanceof ProtocolError && err.code === 'bad_request',
        JSON.stringify(bad),
      );
    }
  });

  it('bounds the length, the challenges and the parameters before reading further', () => {
    const many = (n: number, make: (i: number) => string) => Array.from({ length: n }, (_, i) => make(i)).join(', ');
    assert.equal(parseChallenges(many(MAX_CHALLENGES, (i) => `S${i}`)).length, MAX_CHALLENGES);
    assert.throws(() => parseChallenges(many(MAX_CHALLENGES + 1, (i) => `S${i}`)), ProtocolError);
    assert.equal(parseChallenges(`Basic ${many(MAX_AUTH_PARAMS, (i) => `p${i}=1`)}`)[0]?.params.length, 64);
    assert.throws(() => parseChallenges(`Basic ${many(MAX_AUTH_PARAMS + 1, (i) => `p${i}=1`)}`), ProtocolError);
    const long = `Basic realm="${'a'.repeat(MAX_CHALLENGES_LENGTH)}"`;
    assert.throws(() => parseChallenges(long), ProtocolError);
    assert.throws(() => pickNetPayChallenge(long), ProtocolError);
  });

  it('format → parse roundtrips any list of challenges, quoted or bare', () => {
    fc.assert(
      fc.property(
        fc.array(otherChallenge, { minLength: 1, maxLength: 5 }),
        separator,
        fc.boolean(),
        (list, sep, bare) => {
          assert.deepEqual(parseChallenges(list.map((c) => challengeText(c, bare)).join(sep)), list);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('throws nothing but bad_request on arbitrary strings and on shuffled pieces of the grammar', () => {
    const piece = fc.constantFrom(
      'NetPay',
      'Bearer',
      ' ',
      '\t',
      ',',
      '=',
      '"',
      '\\',
      'realm',
      'price',
      'abc==',
      '5',
      'é',
    );
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.string({ unit: 'binary' }),
          fc.array(piece, { maxLength: 30 }).map((a) => a.join('')),
        ),
        (s) => {
          onlyBadRequest(() => parseChallenges(s));
          onlyBadRequest(() => pickNetPayChallenge(s));
          onlyBadRequest(() => parseAuthorization(s));
          onlyBadRequest(() => parseReceipt(s));
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('picking the NetPay challenge among several', () => {
  const netpay: WwwAuthenticateParams = {
    realm: 'daily-planet',
    price: 5,
    currency: 'NZD',
    broker: 'https://broker.example',
  };
  const netpayText = formatWwwAuthenticate(netpay);

  it('finds it before, after and between other challenges, with the same params', () => {
    const randomCase = (text: string, flips: boolean[]) =>
      [...text].map((ch, i) => (flips[i % flips.length] ? ch.toUpperCase() : ch.toLowerCase())).join('');
    fc.assert(
      fc.property(
        fc.array(otherChallenge, { maxLength: 3 }),
        fc.array(otherChallenge, { maxLength: 3 }),
        separator,
        fc.boolean(),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 6 }),
        (before, after, sep, bare, flips) => {
          // The NetPay challenge itself in any RFC 9110 spelling: scheme and names in any case, bare tokens.
          const params = [
            ['realm', netpay.realm],
            ['price', String(netpay.price)],
            ['currency', netpay.currency],
            ['broker', netpay.broker],
          ] as const;
          const ours = `${randomCase('NetPay', flips)} ${params
            .map(([name, value]) => paramText(randomCase(name, flips), value, bare))
            .join(', ')}`;
          const header = [
            ...before.map((c) => challengeText(c, bare)),
            ours,
            ...after.map((c) => challengeText(c)),
          ].join(sep);
          assert.deepEqual(pickNetPayChallenge(header), netpay, header);
          assert.deepEqual(parseWwwAuthenticate(header), netpay);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('is not fooled by token68s, quoted commas and escaped quotes of other challenges', () => {
    for (const header of [
      `Bearer abc==, ${netpayText}`,
      `${netpayText}, Bearer abc==`,
      `Bearer realm="x", ${netpayText}`,
      `Bearer realm="a, NetPay realm=\\"evil\\", price=\\"1\\"", ${netpayText}`,
      `${netpayText}, Basic realm="\\", price=\\"1"`,
      `Digest qop="auth, auth-int", algorithm=SHA-256,${netpayText},Negotiate`,
      `Bearer error_description="price=\\"1\\", broker=\\"https://evil\\"", ${netpayText}, NetPay realm="b", price=1, currency=USD, broker="https://other.example"`,
    ]) {
      assert.deepEqual(pickNetPayChallenge(header), netpay, header);
    }
  });

  it('accepts token-form parameters and quoted-pairs in the NetPay challenge', () => {
    assert.deepEqual(
      parseWwwAuthenticate('NetPay realm=daily-planet, price=3, currency=NZD, broker="https://broker.example"'),
      { ...netpay, price: 3 },
    );
    assert.deepEqual(
      parseWwwAuthenticate(
        'netpay REALM="daily\\-planet", Price = "\\5", currency=NZD, broker="https:\\/\\/broker.example"',
      ),
      netpay,
    );
  });

  it('answers undefined when no challenge is NetPay, and bad_request when the NetPay one is wrong', () => {
    assert.equal(pickNetPayChallenge('Bearer realm="x", Basic abc=='), undefined);
    assert.equal(pickNetPayChallenge('NetPayment realm="x"'), undefined);
    assert.throws(() => parseWwwAuthenticate('Bearer realm="x"'), ProtocolError);
    for (const bad of [
      `Bearer realm="x", NetPay abc==`,
      `Bearer realm="x", NetPay`,
      `Bearer realm="x", ${netpayText}, price="6"`,
      `Bearer realm="x", NetPay realm="daily-planet", price=5, currency=NZD, broker=https`,
      `Bearer realm="x", NetPay realm="daily-planet", price=5, currency="NZD"`,
      `Bearer realm="x, ${netpayText}`,
    ]) {
      assert.throws(
        () => pickNetPayChallenge(bad),
        (err: unknown) => err instanceof ProtocolError && err.code === 'bad_request',
        bad,
      );
    }
  });
});

describe('NetPay-Receipt', () => {
  it('roundtrips', () => {
    fc.assert(
      fc.property(b64(16), fc.integer({ min: 0, max: MAX_CHAIN_LENGTH }), fc.maxSafeNat(), (c, index, balance) => {
        const params = { chain: c, index, balance };
        assert.deepEqual(parseReceipt(formatReceipt(params)), params);
      }),
    );
    assert.equal(formatReceipt({ chain, index: 3, balance: 13 }), `chain="${chain}", index="3", balance="13"`);
    assert.deepEqual(parseReceipt(`chain=${chain}, INDEX=3 ,, balance="1\\3"`), { chain, index: 3, balance: 13 });
  });

  it('rejects malformed receipts', () => {
    assert.throws(() => parseReceipt(`chain="${chain}", index="3"`), ProtocolError);
    assert.throws(() => parseReceipt(`chain="${chain}", index="3", balance="-1"`), ProtocolError);
    assert.throws(() => formatReceipt({ chain, index: 3, balance: 1.5 }), ProtocolError);
  });
});
