import assert from "node:assert/strict";
import {
  type Challenge,
  ChallengeSyntaxError,
  findChallenge,
  parseChallenges,
} from "../../src/transport/challenge.ts";
import { redactSecrets, rememberSecret } from "../../src/transport/errors.ts";
import { AuthenticationError } from "../../src/transport/auth.ts";
import { assertTyped, challenging, get, REALM } from "../support/bad_input.ts";

type Case = [header: string, expected: Challenge[]];

// spack's test/oci/urlopen.py::test_parse_www_authenticate, every row.
const SPACK_VALID: Case[] = [
  [
    'Bearer realm="https://spack.io/authenticate",service="spack-registry",scope="repository:spack-registry:pull,push"',
    [{
      scheme: "bearer",
      params: {
        realm: "https://spack.io/authenticate",
        service: "spack-registry",
        scope: "repository:spack-registry:pull,push",
      },
    }],
  ],
  ["Bearer", [{ scheme: "bearer", params: {} }]],
  [
    "MethodA, MethodB,MethodC",
    [
      { scheme: "methoda", params: {} },
      { scheme: "methodb", params: {} },
      { scheme: "methodc", params: {} },
    ],
  ],
  [
    'Digest realm="Digest Realm", nonce="1234567890", algorithm=MD5, qop="auth"',
    [{
      scheme: "digest",
      params: {
        realm: "Digest Realm",
        nonce: "1234567890",
        algorithm: "MD5",
        qop: "auth",
      },
    }],
  ],
  [
    'Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple"',
    [
      {
        scheme: "newauth",
        params: { realm: "apps", type: "1", title: 'Login to "apps"' },
      },
      { scheme: "basic", params: { realm: "simple" } },
    ],
  ],
  ['BASIC REALM="simple"', [{ scheme: "basic", params: { realm: "simple" } }]],
];

// Ours: whitespace, escapes, duplicates, list edge cases and real registries' headers.
const OUR_VALID: Case[] = [
  ['Bearer realm = "r" ,\tservice=s', [{
    scheme: "bearer",
    params: { realm: "r", service: "s" },
  }]],
  ['Bearer\trealm="r",\tservice="s"', [{
    scheme: "bearer",
    params: { realm: "r", service: "s" },
  }]],
  ['  Basic realm="x"', [{ scheme: "basic", params: { realm: "x" } }]],
  ['Bearer realm="first", realm="second", REALM="third"', [{
    scheme: "bearer",
    params: { realm: "first" },
  }]],
  ['Basic realm=""', [{ scheme: "basic", params: { realm: "" } }]],
  ['Basic realm="a\\\\b"', [{ scheme: "basic", params: { realm: "a\\b" } }]],
  ['Basic realm="\\"quoted\\" \\x"', [{
    scheme: "basic",
    params: { realm: '"quoted" x' },
  }]],
  ['Basic realm="tab\there, comma"', [{
    scheme: "basic",
    params: { realm: "tab\there, comma" },
  }]],
  ['Basic realm="caf\u00e9"', [{
    scheme: "basic",
    params: { realm: "caf\u00e9" },
  }]],
  ['Basic Realm="Keep Case"', [{
    scheme: "basic",
    params: { realm: "Keep Case" },
  }]],
  ["Bearer a=1,, b=2", [{ scheme: "bearer", params: { a: "1", b: "2" } }]],
  ["MethodA,, ,MethodB", [
    { scheme: "methoda", params: {} },
    { scheme: "methodb", params: {} },
  ]],
  ["Bearer , Basic", [
    { scheme: "bearer", params: {} },
    { scheme: "basic", params: {} },
  ]],
  ['Bearer __proto__="x", constructor=y', [{
    scheme: "bearer",
    params: Object.fromEntries([["__proto__", "x"], ["constructor", "y"]]),
  }]],
  [
    'Basic realm="x", Bearer realm="https://auth.docker.io/token",service="registry.docker.io"',
    [
      { scheme: "basic", params: { realm: "x" } },
      {
        scheme: "bearer",
        params: {
          realm: "https://auth.docker.io/token",
          service: "registry.docker.io",
        },
      },
    ],
  ],
  [
    'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull"',
    [{
      scheme: "bearer",
      params: {
        realm: "https://auth.docker.io/token",
        service: "registry.docker.io",
        scope: "repository:library/ubuntu:pull",
      },
    }],
  ],
  [
    'Basic realm="https://123456789012.dkr.ecr.us-east-1.amazonaws.com/",service="ecr.amazonaws.com"',
    [{
      scheme: "basic",
      params: {
        realm: "https://123456789012.dkr.ecr.us-east-1.amazonaws.com/",
        service: "ecr.amazonaws.com",
      },
    }],
  ],
];

for (const [header, expected] of [...SPACK_VALID, ...OUR_VALID]) {
  Deno.test(`parseChallenges() reads ${JSON.stringify(header)}`, () => {
    assert.deepEqual(parseChallenges(header), expected);
  });
}

type FailCase = [header: string, reason: RegExp];

// spack's test_invalid_www_authenticate, every row.
const SPACK_INVALID: FailCase[] = [
  ["SchemeA SchemeB SchemeC", /expected "=" after "SchemeB" at position 16/],
  [
    "SchemeA, SchemeB, SchemeC, ",
    /expected another challenge after the comma at position 27/,
  ],
  [
    "Scheme x=y, ",
    /expected an auth-param or a challenge after the comma at position 12/,
  ],
  ["Scheme key=", /token68 is not supported\) at position 7/],
  ['"Bearer"', /expected an authentication scheme at position 0/],
  ['Scheme"xyz"', /expected a space or a comma after the scheme at position 6/],
  ["Scheme ", /expected auth-params after the scheme at position 7/],
];

// Ours.
const OUR_INVALID: FailCase[] = [
  [
    "Bearer realm=https://auth.example.com",
    /expected a comma between auth-params at position 18/,
  ],
  ['Bearer realm="unterminated', /expected a closing quote at position 26/],
  ['Bearer realm="ends in \\', /a character after the backslash/],
  ['Bearer realm="bell\u0007"', /a visible character or a closing quote/],
  ["", /expected an authentication scheme at position 0/],
  ["   ", /expected an authentication scheme at position 3/],
  [", Bearer", /expected an authentication scheme at position 0/],
  ["Bearer realm=", /token68 is not supported/],
  ['Bearer realm= , service="s"', /token68 is not supported/],
  [
    'Bearer service="s", realm= , scope="x"',
    /expected a token or a quoted string as the value of "realm" at position 27/,
  ],
  ["Bearer abc==", /token68 is not supported/],
  ["Basic dXNlcjpwYXNzd29yZA==", /token68 is not supported/],
  ['Basic realm="x", Negotiate YIIGhg==', /token68 is not supported/],
  ['Bearer realm="x" service="y"', /a comma between auth-params/],
  ['Bearer realm="x",, ', /an auth-param or a challenge after the comma/],
  ["Bearer =x", /an auth-param name/],
];

for (const [header, reason] of [...SPACK_INVALID, ...OUR_INVALID]) {
  Deno.test(`parseChallenges() refuses ${JSON.stringify(header)}`, () => {
    assert.throws(() => parseChallenges(header), (error: unknown) => {
      assert.ok(error instanceof ChallengeSyntaxError, String(error));
      assert.ok(error instanceof SyntaxError);
      assert.equal(error.name, "ChallengeSyntaxError");
      // A header that holds a credential ("Basic dXNl…") is quoted with it redacted.
      const shown = redactSecrets(header);
      assert.equal(error.input, shown);
      assert.ok(
        error.message.startsWith(
          `Cannot parse WWW-Authenticate header "${shown}": expected `,
        ),
        error.message,
      );
      assert.match(error.message, reason);
      assert.ok(error.message.endsWith(`at position ${error.position}`));
      return true;
    });
  });
}

Deno.test("parseChallenges() returns frozen challenges", () => {
  const [challenge] = parseChallenges('Bearer realm="r"');
  assert.ok(Object.isFrozen(challenge));
  assert.ok(Object.isFrozen(challenge.params));
});

Deno.test("findChallenge() matches the scheme without regard to case and takes the first", () => {
  const challenges = parseChallenges(
    'Basic realm="one", Bearer realm="https://a.io/token", BASIC realm="two"',
  );
  assert.equal(findChallenge(challenges, "basic")?.params.realm, "one");
  assert.equal(findChallenge(challenges, "BASIC")?.params.realm, "one");
  assert.equal(
    findChallenge(challenges, "Bearer")?.params.realm,
    "https://a.io/token",
  );
  assert.equal(findChallenge(challenges, "Digest"), undefined);
  assert.equal(findChallenge([], "Basic"), undefined);
});

Deno.test("ChallengeSyntaxError quotes a header that echoes a credential with the credential redacted", () => {
  const password = `pw-${crypto.randomUUID()}`;
  rememberSecret(password);
  for (
    const header of [
      `Basic realm="you sent ${password}`,
      `Bearer realm="x", error="${encodeURIComponent(password)}" nope`,
      `Basic ${btoa(`alice:${password}`)}`,
    ]
  ) {
    rememberSecret(btoa(`alice:${password}`));
    assert.throws(() => parseChallenges(header), (error: unknown) => {
      assert.ok(error instanceof ChallengeSyntaxError, String(error));
      for (const text of [error.message, error.input, String(error.stack)]) {
        assert.ok(!text.includes(password), text);
        assert.ok(!text.includes(encodeURIComponent(password)), text);
        assert.ok(!text.includes(btoa(`alice:${password}`)), text);
      }
      assert.match(error.message, /REDACTED/);
      return true;
    });
  }
});

// Bad input from the outside world (issue 7, item 3): malformed WWW-Authenticate headers, through
// an opener.

const HUGE_UNTERMINATED = 'Bearer realm="' + "x".repeat(1_000_000);

const BAD_CHALLENGES: [string, string | null, RegExp[]][] = [
  ["no header at all", null, [/401 without a WWW-Authenticate header/]],
  ["an empty header", "", [
    /Cannot parse WWW-Authenticate header "": expected an authentication scheme at position 0/,
  ]],
  ["garbage", "@@@ !!!", [
    /header "@@@ !!!": expected an authentication scheme/,
  ]],
  ["a scheme and a lone comma", "Bearer ,", [
    /expected another challenge after the comma/,
  ]],
  ["an unterminated quote (Bearer)", 'Bearer realm="https://auth.example', [
    /expected a closing quote at position 34/,
  ]],
  ["an unterminated quote (Basic)", 'Basic realm="r', [
    /header "Basic realm="r": expected a closing quote/,
  ]],
  ["a parameter without a value", "Bearer realm=", [
    /header "Bearer realm=": expected .* at position 7/,
  ]],
  ["an unquoted URL", "Bearer realm=http://127.0.0.1:5000/token", [
    /expected a comma between auth-params/,
  ]],
  ["token68", "Negotiate YWJjZA==", [/token68 is not supported/]],
  ["a Bearer challenge without realm", 'Bearer service="registry"', [
    /the Bearer challenge names no realm to get a token from: "Bearer service="registry""/,
  ]],
  ["a realm that is not a URL", 'Bearer realm="not a url"', [
    /the token realm "not a url" is not a URL/,
  ]],
  ["an ftp realm", 'Bearer realm="ftp://127.0.0.1/token"', [
    /the token realm "ftp:\/\/127\.0\.0\.1\/token" is not an http or https URL/,
  ]],
  ["a file realm", 'Bearer realm="file:///etc/passwd"', [
    /"file:\/\/\/etc\/passwd" is not an http or https URL/,
  ]],
  ["a javascript realm", 'Bearer realm="javascript:alert(1)"', [
    /"javascript:alert\(1\)" is not an http or https URL/,
  ]],
  ["a data realm", 'Bearer realm="data:,{\\"token\\":\\"x\\"}"', [
    /is not an http or https URL/,
  ]],
  [
    "a duplicate realm whose first value is bad",
    `Bearer realm="ftp://127.0.0.1/token",realm="${REALM}"`,
    [/"ftp:\/\/127\.0\.0\.1\/token" is not an http or https URL/],
  ],
  ["an unsupported scheme", 'Digest realm="r", nonce="n"', [
    /unsupported authentication scheme in "Digest realm="r", nonce="n""/,
  ]],
  ["Basic without credentials", 'Basic realm="registry"', [
    /asks for Basic credentials and none were found/,
  ]],
  ["a 1 MB unterminated header", HUGE_UNTERMINATED, [
    /expected a closing quote at position 1000014/,
    /…" \(1000014 characters\)/,
  ]],
];

for (const [what, challenge, patterns] of BAD_CHALLENGES) {
  Deno.test(`bad input: WWW-Authenticate with ${what} gives an AuthenticationError`, async () => {
    const { transport, requests, tokenRequests } = challenging(challenge);
    await assert.rejects(get(transport), (error: unknown) => {
      assertTyped(
        error,
        AuthenticationError,
        /Cannot log in to 127\.0\.0\.1:5000 for repository:app:pull: /,
        ...patterns,
      );
      const e = error as AuthenticationError;
      assert.equal(e.status, 401);
      assert.ok(e.message.length < 2_000, "the message stays short");
      if (e.message.includes("Cannot parse WWW-Authenticate")) {
        assert.ok(e.cause instanceof ChallengeSyntaxError);
      }
      return true;
    });
    assert.equal(requests.length, 1, "no token request, no second try");
    assert.equal(tokenRequests(), 0);
  });
}

Deno.test("bad input: a duplicate realm keeps the first value, as RFC 7235 parsers do", async () => {
  const { transport, tokenRequests } = challenging(
    `Bearer realm="${REALM}",realm="ftp://127.0.0.1/token",service="s"`,
  );
  assert.equal(await (await get(transport)).text(), "ok");
  assert.equal(tokenRequests(), 1);
});

Deno.test("bad input: a huge but valid challenge (10,000 params) is read and answered", async () => {
  const params = Array.from({ length: 10_000 }, (_, i) => `p${i}="${i}"`);
  const { transport } = challenging(
    `Bearer realm="${REALM}",${params.join(",")}`,
  );
  assert.equal(await (await get(transport)).text(), "ok");
});
