import assert from "node:assert/strict";
import {
  ensureStatus,
  redactError,
  redactSecrets,
  redactUrl,
  RegistryError,
  registryErrorOf,
  rememberSecret,
  UnsafeUrlError,
} from "../../src/transport/errors.ts";
import { everythingAbout } from "../support/errors.ts";
import { fetchManifest } from "../../src/store/remote/manifests.ts";
import {
  assertTyped,
  endlessBody,
  json,
  MiB,
  openerOver,
  REF,
  REGISTRY,
} from "../support/bad_input.ts";

/** A fresh secret with characters every encoding writes differently. */
function secret(): string {
  return `p@ss "w\\rd" +/&= ${crypto.randomUUID()} é`;
}

function base64(text: string): string {
  return btoa(String.fromCharCode(...new TextEncoder().encode(text)));
}

Deno.test("redactSecrets() redacts a remembered secret in every written form", () => {
  const value = secret();
  rememberSecret(value);
  const forms = {
    raw: value,
    url: encodeURIComponent(value),
    "url, lowercase hex": encodeURIComponent(value).replace(
      /%[0-9A-F]{2}/g,
      (hex) => hex.toLowerCase(),
    ),
    form: new URLSearchParams({ v: value }).toString().slice(2),
    json: JSON.stringify(value).slice(1, -1),
    base64: base64(value),
    "base64 unpadded": base64(value).replace(/=+$/, ""),
  };
  for (const [what, form] of Object.entries(forms)) {
    const text = redactSecrets(`the registry says: you sent ${form}!`);
    assert.equal(text, "the registry says: you sent REDACTED!", what);
  }
});

Deno.test("redactSecrets() redacts the base64 of user:password once the auth layer remembers it", () => {
  const value = secret();
  const basic = base64(`alice:${value}`);
  rememberSecret(basic);
  assert.equal(redactSecrets(`header was ${basic}`), "header was REDACTED");
  assert.equal(
    redactSecrets(`header was ${encodeURIComponent(basic)}`),
    "header was REDACTED",
  );
});

Deno.test("rememberSecret() ignores values too short to tell from prose", () => {
  rememberSecret("ab");
  assert.equal(redactSecrets("a tab and a slab"), "a tab and a slab");
});

for (
  const [what, text, expected] of [
    [
      "password= in prose",
      "you sent password=hunter2",
      "you sent password=REDACTED",
    ],
    [
      "password: in prose",
      "password: hunter2 is wrong",
      "password: REDACTED is wrong",
    ],
    [
      "refresh_token in a form body",
      "grant_type=refresh_token&refresh_token=abc123",
      "grant_type=refresh_token&refresh_token=REDACTED",
    ],
    [
      "an escaped quote in a JSON token",
      '{"token":"a\\"b"}',
      '{"token":"REDACTED"}',
    ],
    [
      "a signed URL in a fetch error",
      "error sending request for url (http://s/b?X-Amz-Signature=abc&n=1): refused",
      "error sending request for url (http://s/b?X-Amz-Signature=REDACTED&n=1): refused",
    ],
    [
      "userinfo in a URL in prose",
      "cannot reach https://u:pw@r.example/v2/.",
      "cannot reach https://REDACTED@r.example/v2/.",
    ],
    [
      "a URL without secrets, left as it is",
      "GET http://127.0.0.1:5000/v2/app/manifests/v1: 404",
      "GET http://127.0.0.1:5000/v2/app/manifests/v1: 404",
    ],
  ]
) {
  Deno.test(`redactSecrets() redacts ${what}`, () => {
    assert.equal(redactSecrets(text), expected);
  });
}

for (
  const [what, url, expected] of [
    [
      "a malformed escape in the query",
      "http://h/x?%zz=1&sig=abc",
      "http://h/x?%zz=1&sig=REDACTED",
    ],
    [
      "an encoded key",
      "http://h/x?X%2DAmz%2DSignature=abc",
      "http://h/x?X%2DAmz%2DSignature=REDACTED",
    ],
    [
      "Azure and S3 v2 signatures",
      "https://a.blob.core.windows.net/c/b?sv=1&sig=abc&AWSAccessKeyId=k",
      "https://a.blob.core.windows.net/c/b?sv=1&sig=REDACTED&AWSAccessKeyId=REDACTED",
    ],
    ["a data: URL", "data:text/plain,hello", "data:text/plain,hello"],
    [
      "userinfo with only a user",
      "https://token@r.example/",
      "https://REDACTED@r.example/",
    ],
    [
      "an unparseable URL with a query",
      "http://[::1/x?token=abc",
      "http://[::1/x?token=REDACTED",
    ],
  ]
) {
  Deno.test(`redactUrl() handles ${what}`, () => {
    assert.equal(redactUrl(url), expected);
  });
}

Deno.test("redactUrl() redacts a remembered secret anywhere in the URL", () => {
  const value = `pathsecret${crypto.randomUUID()}`;
  rememberSecret(value);
  assert.equal(
    redactUrl(`https://r.example/v2/${value}/x`),
    "https://r.example/v2/REDACTED/x",
  );
});

Deno.test("RegistryError redacts remembered secrets in message, codes, detail and its cause chain", async () => {
  const value = secret();
  rememberSecret(value);
  const response = Response.json({
    errors: [{
      code: "DENIED",
      message: `you sent ${value}`,
      detail: {
        note: `again ${encodeURIComponent(value)}`,
        list: [JSON.stringify(value)],
      },
    }],
  }, { status: 403 });
  const error = await registryErrorOf(
    new Request("http://r/v2/a/tags/list"),
    response,
  );
  const wrapped = new RegistryError({
    method: "GET",
    url: "http://r/v2/",
    status: 401,
    reason: "failed",
    cause: new Error("outer", { cause: new SyntaxError(`bad ${value}`) }),
  });
  for (const text of [everythingAbout(error), everythingAbout(wrapped)]) {
    for (
      const form of [
        value,
        encodeURIComponent(value),
        JSON.stringify(value).slice(1, -1),
      ]
    ) {
      assert.ok(!text.includes(form), text);
    }
  }
  assert.match(error.message, /DENIED: you sent REDACTED/);
});

Deno.test("redactError() redacts in place and keeps the error's class", () => {
  const value = secret();
  rememberSecret(value);
  const cause = new TypeError(`fetch of http://s/?sig=abc with ${value}`);
  const error = redactError(new Error("outer", { cause }));
  assert.equal(error.cause, cause);
  assert.ok(cause instanceof TypeError);
  assert.equal(cause.message, "fetch of http://s/?sig=REDACTED with REDACTED");
  assert.ok(!String(cause.stack).includes(value));
  assert.equal(redactError("not an error"), "not an error");
});

Deno.test("UnsafeUrlError names the header, the redacted URL, where it came from and the rule", () => {
  const error = new UnsafeUrlError({
    header: "Link",
    url: "http://u:p@storage.example/x?sig=abc",
    from: "https://r.example/v2/app/tags/list?token=t",
    rule: "downgrade",
  });
  assert.equal(error.name, "UnsafeUrlError");
  assert.equal(error.url, "http://REDACTED@storage.example/x?sig=REDACTED");
  assert.equal(error.from, "https://r.example/v2/app/tags/list?token=REDACTED");
  assert.equal(
    error.message,
    'Refusing the Link "http://REDACTED@storage.example/x?sig=REDACTED" sent by https://r.example/v2/app/tags/list?token=REDACTED: a URL from https: may not lead to plain http: on a host that is not loopback',
  );
  assert.ok(
    !(error instanceof TypeError),
    "not a network error: never retried",
  );
});

// Bad input from the outside world (issue 7, item 3): registry error bodies that are not JSON,
// endless or broken.

const ERROR_BODIES: [
  string,
  number,
  () => BodyInit | null,
  RegExp[],
  string[],
][] = [
  ["plain text", 500, () => "internal error, try later", [
    /: 500: expected 200: internal error, try later$/,
  ], []],
  [
    "HTML",
    502,
    () =>
      "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
    [/: 502: expected 200: 502 Bad Gateway 502 Bad Gateway nginx$/],
    [],
  ],
  ["an empty body", 404, () => null, [/: 404: expected 200$/], []],
  ["JSON without errors", 404, () => '{"message":"not here"}', [
    /\{"message":"not here"\}/,
  ], []],
  ["errors that is not an array", 400, () => '{"errors":"bad"}', [
    /: 400: expected 200: \{"errors":"bad"\}$/,
  ], []],
  [
    "errors with junk entries",
    403,
    () =>
      json({
        errors: [null, 5, { code: 7 }, {
          code: "DENIED",
          message: { text: "x" },
        }, { code: "TOOMANYREQUESTS", message: "slow down", detail: [1] }],
      }),
    [/: 403: expected 200: DENIED: ; TOOMANYREQUESTS: slow down$/],
    ["DENIED", "TOOMANYREQUESTS"],
  ],
  [
    "an OCI error",
    404,
    () =>
      json({
        errors: [{
          code: "MANIFEST_UNKNOWN",
          message: "manifest unknown",
          detail: { tag: "v1" },
        }],
      }),
    [/MANIFEST_UNKNOWN: manifest unknown$/],
    ["MANIFEST_UNKNOWN"],
  ],
  [
    "binary garbage with control characters",
    500,
    () =>
      new Uint8Array([0, 1, 2, 27, 91, 50, 74, 7, 0xff, 0xfe, 65, 10, 13, 66]),
    [/: expected 200: \[2J \uFFFD\uFFFDA B$/],
    [],
  ],
  ["a 1 MB body of '<'", 500, () => "<".repeat(MiB), [
    /: 500: expected 200: <{200}…$/,
  ], []],
];

for (const [what, status, body, patterns, codes] of ERROR_BODIES) {
  Deno.test(`bad input: a registry error body with ${what} gives a RegistryError with the status`, async () => {
    const { transport } = openerOver(() => new Response(body(), { status }));
    const started = performance.now();
    await assert.rejects(
      fetchManifest(REF, { transport }),
      (error: unknown) => {
        assertTyped(
          error,
          RegistryError,
          /^GET http:\/\/127\.0\.0\.1:5000\/v2\/app\/manifests\/v1: /,
          ...patterns,
        );
        const e = error as RegistryError;
        assert.equal(e.status, status);
        assert.deepEqual(e.codes.map((c) => c.code), codes);
        assert.doesNotMatch(
          e.message,
          // deno-lint-ignore no-control-regex
          /[\u0000-\u001f\u007f]/,
          "one printable line",
        );
        assert.ok(e.message.length < 500);
        return true;
      },
    );
    assert.ok(performance.now() - started < 2_000);
  });
}

Deno.test("bad input: an endless error body is read only up to its cap", async () => {
  const endless = endlessBody(new TextEncoder().encode("x".repeat(16 * 1024)));
  const { transport } = openerOver(() =>
    new Response(endless.body, { status: 500 })
  );
  await assert.rejects(
    fetchManifest(REF, { transport }),
    (error) =>
      assertTyped(
        error,
        RegistryError,
        /: 500: expected 200: x{200}…$/,
      ),
  );
  assert.ok(endless.pulled() <= 128 * 1024, `read ${endless.pulled()} bytes`);
});

Deno.test("bad input: an error body that breaks mid-stream still gives the status", async () => {
  let sent = false;
  const broken = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent) return controller.error(new TypeError("connection reset"));
      sent = true;
      controller.enqueue(new TextEncoder().encode('{"errors":[{"code":"UNKN'));
    },
  });
  const request = new Request(`${REGISTRY}/v2/app/tags/list`);
  await assert.rejects(
    ensureStatus(request, new Response(broken, { status: 503 }), 200),
    (error) =>
      assertTyped(
        error,
        RegistryError,
        /: 503: expected 200: \{"errors":\[\{"code":"UNKN$/,
      ),
  );
  const head = await registryErrorOf(
    new Request(request, { method: "HEAD" }),
    new Response(null, { status: 404 }),
  );
  assert.equal(head.status, 404);
  assert.match(
    head.message,
    /^HEAD http:\/\/127\.0\.0\.1:5000\/v2\/app\/tags\/list: 404$/,
  );
});
