import assert from "node:assert/strict";
import {
  redactError,
  redactSecrets,
  redactUrl,
  RegistryError,
  registryErrorOf,
  rememberSecret,
  UnsafeUrlError,
} from "../../src/transport/errors.ts";
import { everythingAbout } from "../support/errors.ts";

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
