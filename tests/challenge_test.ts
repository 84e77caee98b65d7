import assert from "node:assert/strict";
import {
  ChallengeSyntaxError,
  parseChallenges,
} from "../src/transport/challenge.ts";

// spack's test/oci/urlopen.py::test_parse_www_authenticate, plus our own cases.
const VALID: [string, { scheme: string; params: Record<string, string> }[]][] =
  [
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
      [{ scheme: "methoda", params: {} }, { scheme: "methodb", params: {} }, {
        scheme: "methodc",
        params: {},
      }],
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
    ['BASIC REALM="simple"', [{
      scheme: "basic",
      params: { realm: "simple" },
    }]],
    // Ours: whitespace around "=" and ",", tabs, duplicates, empty quoted values, backslashes.
    ['Bearer realm = "r" ,\tservice=s', [{
      scheme: "bearer",
      params: { realm: "r", service: "s" },
    }]],
    ['Bearer realm="first", realm="second"', [{
      scheme: "bearer",
      params: { realm: "first" },
    }]],
    ['Basic realm=""', [{ scheme: "basic", params: { realm: "" } }]],
    ['Basic realm="a\\\\b"', [{ scheme: "basic", params: { realm: "a\\b" } }]],
    ['  Basic realm="x"', [{ scheme: "basic", params: { realm: "x" } }]],
    ["Bearer a=1,, b=2", [{ scheme: "bearer", params: { a: "1", b: "2" } }]],
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
  ];

for (const [header, expected] of VALID) {
  Deno.test(`parseChallenges() reads ${JSON.stringify(header.slice(0, 60))}`, () => {
    assert.deepEqual(parseChallenges(header), expected);
  });
}

// spack's test_invalid_www_authenticate, plus ours.
const INVALID: [string, RegExp][] = [
  ["SchemeA SchemeB SchemeC", /expected "=" after the parameter name/],
  ["SchemeA, SchemeB, SchemeC, ", /another challenge after the comma/],
  ["Scheme x=y, ", /after the comma/],
  ["Scheme key=", /a token or a quoted string/],
  ['"Bearer"', /an authentication scheme at position 0/],
  ['Scheme"xyz"', /a space or a comma/],
  ["Scheme ", /parameters after the scheme/],
  ["Bearer realm=https://auth.example.com", /a comma between parameters/],
  ['Bearer realm="unterminated', /a closing quote/],
  ["", /an authentication scheme/],
  ["   ", /an authentication scheme/],
  ["Bearer abc==", /a token or a quoted string/],
  ['Bearer realm="x" service="y"', /a comma between parameters/],
];

for (const [header, reason] of INVALID) {
  Deno.test(`parseChallenges() refuses ${JSON.stringify(header)}`, () => {
    assert.throws(() => parseChallenges(header), (error: unknown) => {
      assert.ok(error instanceof ChallengeSyntaxError, String(error));
      assert.ok(
        error.message.startsWith(
          `Cannot parse WWW-Authenticate header "${header}"`,
        ),
      );
      assert.match(error.message, reason);
      return true;
    });
  });
}
