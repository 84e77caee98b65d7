// Attacks of the issue "Safety" on this part of the stack (contract: tests/support/attacks.ts):
// hostile registries on 127.0.0.1 (and, for https, in-process ones behind the real opener) that
// send us to `file:`/`data:`/plain-http URLs (class 3) or echo back the credentials they were
// sent (class 8).
import type { Attack } from "../support/attacks.ts";
import { everythingAbout } from "../support/errors.ts";
import { runCli } from "../support/cli.ts";
import { createOpener } from "../../src/transport/opener.ts";
import { staticCredentials } from "../../src/transport/credentials.ts";
import { parseReference } from "../../src/oci/reference.ts";
import { digestOf } from "../../src/oci/digest.ts";
import { fetchManifest } from "../../src/store/remote/manifests.ts";
import { listTags } from "../../src/store/remote/tags.ts";
import { fetchBlob } from "../../src/store/remote/blobs.ts";
import { remoteStore } from "../../src/store/remote_store.ts";
import {
  bytesSource,
  type Transport,
} from "../../src/transport/request_body.ts";

/** Pushes bytes as a blob: the remote store's one upload session. */
function pushBlob(ref: string, bytes: Uint8Array, transport: Transport) {
  return remoteStore(parseReference(ref), { transport }).push({
    mediaType: "application/octet-stream",
    digest: digestOf(bytes),
    size: bytes.byteLength,
  }, bytesSource(bytes));
}

/** A hostile registry on 127.0.0.1. */
function serve(
  handler: (request: Request, url: URL) => Response | Promise<Response>,
) {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) => handler(request, new URL(request.url)),
  );
  return {
    host: `127.0.0.1:${server.addr.port}`,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

/** A local file only this machine has: whatever of it shows up came from disk. */
async function localFile(content: (marker: string) => string) {
  const marker = `local-file-${crypto.randomUUID()}`;
  const path = await Deno.makeTempFile({ prefix: "oci-attack-" });
  await Deno.writeTextFile(path, content(marker));
  return {
    marker,
    path,
    url: `file://${path}`,
    [Symbol.asyncDispose]: () => Deno.remove(path),
  };
}

const MANIFEST = (marker: string) =>
  JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: {
      mediaType: "application/vnd.oci.image.config.v1+json",
      digest: `sha256:${"0".repeat(64)}`,
      size: 2,
    },
    layers: [],
    annotations: { marker },
  });
const TAGS = (marker: string) => JSON.stringify({ name: "a", tags: [marker] });

function opener(options: { transport?: Transport; password?: string } = {}) {
  return createOpener({
    retry: false,
    transport: options.transport,
    credentials: staticCredentials(
      options.password === undefined
        ? {}
        : { username: "alice", password: options.password },
    ),
  });
}

/** Resolves when `attempt` was refused with an UnsafeUrlError (anywhere in its cause chain)
 * and nothing it shows holds one of `leaks`; throws with what got through otherwise. */
async function expectUnsafeUrl(
  attempt: () => Promise<unknown>,
  leaks: string[] = [],
  header?: RegExp,
): Promise<void> {
  let result: unknown;
  try {
    result = await attempt();
  } catch (error) {
    const text = everythingAbout(error);
    for (const leak of leaks) {
      if (text.includes(leak)) {
        throw new Error(`the error shows ${leak}: ${text.slice(0, 300)}`);
      }
    }
    // By name, so that this module also loads on code without the error class.
    let unsafe: unknown = error;
    while (unsafe instanceof Error && unsafe.name !== "UnsafeUrlError") {
      unsafe = unsafe.cause;
    }
    if (!(unsafe instanceof Error)) {
      throw new Error(`not refused as an unsafe URL: ${String(error)}`);
    }
    const named = String((unsafe as { header?: unknown }).header);
    if (header && !header.test(named)) {
      throw new Error(`refused, but naming the header "${named}"`);
    }
    return;
  }
  const shown = typeof result === "string"
    ? result
    : JSON.stringify(result, (_k, v) =>
      v instanceof Uint8Array ? new TextDecoder().decode(v) : v);
  throw new Error(`followed: got ${String(shown).slice(0, 200)}`);
}

/** An in-process "https://registry.test" behind the real opener; records every URL sent. */
function httpsRegistry(answer: (url: URL, request: Request) => Response) {
  const sent: string[] = [];
  const transport: Transport = async (request) => {
    await request.body?.cancel();
    sent.push(request.url);
    const response = answer(new URL(request.url), request);
    Object.defineProperty(response, "url", { value: request.url });
    return response;
  };
  return { sent, open: opener({ transport }) };
}

const redirectTo = (location: string) =>
  new Response(null, { status: 307, headers: { location } });

const class3: Attack[] = [
  {
    class: 3,
    name: "307 Location: file:/// makes fetchManifest return a local file",
    async attempt() {
      await using file = await localFile(MANIFEST);
      await using registry = serve(() => redirectTo(file.url));
      await expectUnsafeUrl(
        () =>
          fetchManifest(parseReference(`${registry.host}/a:v1`), {
            transport: opener(),
          }),
        [file.marker],
        /^Location$/,
      );
    },
  },
  {
    class: 3,
    name: "307 Location: data: makes listTags return tags the registry made up",
    async attempt() {
      await using registry = serve(() =>
        redirectTo(
          `data:application/json,${encodeURIComponent(TAGS("from-data-url"))}`,
        )
      );
      await expectUnsafeUrl(
        () =>
          listTags(parseReference(`${registry.host}/a`), {
            transport: opener(),
          }),
        // The error may quote the data: URL; what matters is that no tag came from it.
      );
    },
  },
  {
    class: 3,
    name:
      "307 Location: FILE:/// (uppercase) makes fetchBlob stream a local file",
    async attempt() {
      await using file = await localFile((marker) => `blob ${marker}`);
      const digest = digestOf(await Deno.readFile(file.path));
      await using registry = serve(() =>
        redirectTo(file.url.replace("file:", "FILE:"))
      );
      await expectUnsafeUrl(async () =>
        await new Response(
          await fetchBlob(parseReference(`${registry.host}/a`), digest, {
            transport: opener(),
          }),
        ).text(), [file.marker]);
    },
  },
  {
    class: 3,
    name:
      'Link: <file:///…>; rel="next" makes listTags read a local file as the next page',
    async attempt() {
      await using file = await localFile(TAGS);
      await using registry = serve(() =>
        new Response(JSON.stringify({ name: "a", tags: ["v1"] }), {
          headers: { link: `<${file.url}>; rel="next"` },
        })
      );
      await expectUnsafeUrl(
        () =>
          listTags(parseReference(`${registry.host}/a`), {
            transport: opener(),
          }),
        [file.marker],
        /^Link$/,
      );
    },
  },
  {
    class: 3,
    name:
      "upload Location: file:/// of a POST answer takes the blob's PUT to a local file",
    async attempt() {
      await using file = await localFile((marker) => marker);
      await using registry = serve((request, url) => {
        if (request.method === "HEAD") {
          return new Response(null, { status: 404 });
        }
        if (url.pathname.endsWith("/uploads/")) {
          return new Response(null, {
            status: 202,
            headers: { location: file.url },
          });
        }
        return new Response(null, { status: 201 });
      });
      const bytes = new TextEncoder().encode("layer");
      await expectUnsafeUrl(
        () => pushBlob(`${registry.host}/a`, bytes, opener()),
        [file.marker],
        /Location/,
      );
    },
  },
  {
    class: 3,
    name: 'WWW-Authenticate realm="file:///…" (token request to a local file)',
    async attempt() {
      await using file = await localFile((marker) =>
        JSON.stringify({ token: marker })
      );
      await using registry = serve(() =>
        new Response(null, {
          status: 401,
          headers: {
            "www-authenticate": `Bearer realm="${file.url}",service="s"`,
          },
        })
      );
      await expectUnsafeUrl(
        () =>
          listTags(parseReference(`${registry.host}/a`), {
            transport: opener(),
          }),
        [file.marker],
        /realm/,
      );
    },
  },
  {
    class: 3,
    name:
      "token realm redirects to a local JSON file whose token is then sent to the registry",
    async attempt() {
      await using file = await localFile((marker) =>
        JSON.stringify({ token: marker })
      );
      let received = "";
      await using registry = serve((request, url) => {
        if (url.pathname === "/token") return redirectTo(file.url);
        const authorization = request.headers.get("authorization");
        if (authorization) received = authorization;
        return new Response(null, {
          status: 401,
          headers: {
            "www-authenticate":
              `Bearer realm="http://${url.host}/token",service="s"`,
          },
        });
      });
      await expectUnsafeUrl(
        () =>
          listTags(parseReference(`${registry.host}/a`), {
            transport: opener(),
          }),
        [file.marker],
      );
      if (received.includes(file.marker)) {
        throw new Error(`the registry got ${received}`);
      }
    },
  },
  {
    class: 3,
    name:
      "`oci inspect` follows Location: fi<TAB>le:/// (a tab the URL parser drops)",
    async attempt() {
      await using file = await localFile(MANIFEST);
      await using registry = serve(() =>
        redirectTo(file.url.replace("file:", "fi\tle:"))
      );
      const run = await runCli(["inspect", `${registry.host}/a:v1`, "--json"]);
      const text = run.stdout + run.stderr;
      if (text.includes(file.marker)) {
        throw new Error(`printed the local file: ${text}`);
      }
      if (run.code !== 1 || !/only http: and https: URLs/.test(run.stderr)) {
        throw new Error(
          `exit ${run.code}, not refused as an unsafe URL: ${run.stderr}`,
        );
      }
    },
  },
  {
    class: 3,
    name: "307 Location: blob: and javascript: URLs",
    async attempt() {
      for (
        const location of ["blob:http://127.0.0.1/x", "javascript:alert(1)"]
      ) {
        await using registry = serve(() => redirectTo(location));
        await expectUnsafeUrl(() =>
          listTags(parseReference(`${registry.host}/a`), {
            transport: opener(),
          })
        );
      }
    },
  },
  {
    class: 3,
    name:
      "https registry redirects a blob read down to plain http on another host",
    async attempt() {
      const bytes = new TextEncoder().encode("blob");
      const { sent, open } = httpsRegistry((url) =>
        url.protocol === "https:"
          ? redirectTo("http://storage.test/blob?sig=1")
          : new Response(bytes)
      );
      await expectUnsafeUrl(async () =>
        await new Response(
          await fetchBlob(parseReference("registry.test/a"), digestOf(bytes), {
            transport: open,
          }),
        ).text()
      );
      if (sent.some((url) => url.startsWith("http:"))) {
        throw new Error(`sent over plain http: ${sent.join(", ")}`);
      }
    },
  },
  {
    class: 3,
    name:
      "https registry's upload Location takes the blob's bytes to plain http",
    async attempt() {
      const { sent, open } = httpsRegistry((url, request) => {
        if (request.method === "HEAD") {
          return new Response(null, { status: 404 });
        }
        if (url.pathname.endsWith("/uploads/")) {
          return new Response(null, {
            status: 202,
            headers: { location: "http://uploads.test/session?_state=x" },
          });
        }
        return new Response(null, { status: 201 });
      });
      const bytes = new TextEncoder().encode("layer");
      await expectUnsafeUrl(() => pushBlob("registry.test/a", bytes, open));
      if (sent.some((url) => url.startsWith("http:"))) {
        throw new Error(`sent over plain http: ${sent.join(", ")}`);
      }
    },
  },
  {
    class: 3,
    name: "https registry's tag Link sends the next page request to plain http",
    async attempt() {
      const { sent, open } = httpsRegistry(() =>
        new Response(JSON.stringify({ name: "a", tags: ["v1"] }), {
          headers: {
            link: '<http://registry.test/v2/a/tags/list?last=v1>; rel="next"',
          },
        })
      );
      await expectUnsafeUrl(() =>
        listTags(parseReference("registry.test/a"), { transport: open })
      );
      if (sent.some((url) => url.startsWith("http:"))) {
        throw new Error(`sent over plain http: ${sent.join(", ")}`);
      }
    },
  },
];

/** A password with characters that encode differently in a URL, JSON and base64. */
const password = () => `pw "q\\ ${crypto.randomUUID()} +/&`;

/** The password of a Basic header, as a registry would read it. */
function passwordOf(request: Request): string | undefined {
  const value = request.headers.get("authorization")?.replace(/^Basic /, "");
  if (value === undefined) return undefined;
  return new TextDecoder().decode(
    Uint8Array.from(atob(value), (c) => c.charCodeAt(0)),
  )
    .split(":").slice(1).join(":");
}

/** A registry asking for Basic that answers a logged-in request with `echo(password)`. */
function echoing(echo: (password: string, request: Request) => Response) {
  return serve((request) => {
    const sent = passwordOf(request);
    if (sent === undefined) {
      return new Response(null, {
        status: 401,
        headers: { "www-authenticate": 'Basic realm="echo"' },
      });
    }
    return echo(sent, request);
  });
}

const denied = (message: string, detail?: unknown, status = 403) =>
  Response.json(
    {
      errors: [{
        code: "DENIED",
        message,
        ...(detail === undefined ? {} : { detail }),
      }],
    },
    { status },
  );

/** Every form of a secret that would give it away. */
function formsOf(secret: string): string[] {
  return [
    secret,
    encodeURIComponent(secret),
    new URLSearchParams({ v: secret }).toString().slice(2),
    JSON.stringify(secret).slice(1, -1),
    btoa(secret),
    btoa(`alice:${secret}`),
  ];
}

/** Resolves when `attempt` failed with nothing that shows any form of `secrets`. */
async function expectNoLeak(
  attempt: () => Promise<unknown>,
  secrets: string[],
): Promise<void> {
  try {
    await attempt();
  } catch (error) {
    const text = everythingAbout(error);
    for (const secret of secrets) {
      for (const form of formsOf(secret)) {
        if (text.includes(form)) {
          throw new Error(
            `the error shows the secret (${form.slice(0, 6)}…): ${
              text.slice(0, 300)
            }`,
          );
        }
      }
    }
    return;
  }
  throw new Error("the hostile registry's answer was accepted");
}

const class8: Attack[] = [
  {
    class: 8,
    name:
      "`oci tags` prints a registry message `you sent password=<the password>`",
    async attempt() {
      const secret = `pw-${crypto.randomUUID()}`;
      await using registry = echoing((sent) =>
        denied(`you sent password=${sent}`)
      );
      const run = await runCli(
        [
          "tags",
          `${registry.host}/a`,
          "-v",
          "--username",
          "alice",
          "--password-stdin",
        ],
        { stdin: secret, env: { OCI_USERNAME: "", OCI_PASSWORD: "" } },
      );
      const text = run.stdout + run.stderr;
      if (run.code !== 1) throw new Error(`exit ${run.code}`);
      if (text.includes(secret)) {
        throw new Error(`printed the password: ${text}`);
      }
    },
  },
  {
    class: 8,
    name: "registry echoes the password in an error's detail string",
    async attempt() {
      const secret = password();
      await using registry = echoing((sent) =>
        denied("login failed", `user alice with ${sent}`)
      );
      await expectNoLeak(
        () =>
          listTags(parseReference(`${registry.host}/a`), {
            transport: opener({ password: secret }),
          }),
        [secret],
      );
    },
  },
  {
    class: 8,
    name:
      "registry echoes the password URL-, form- and JSON-escaped in a non-OCI error body",
    async attempt() {
      const secret = password();
      await using registry = echoing((sent) =>
        new Response(
          `form=${new URLSearchParams({ p: sent })} url=${
            encodeURIComponent(sent)
          } json=${JSON.stringify({ got: sent })}`,
          { status: 400 },
        )
      );
      await expectNoLeak(
        () =>
          fetchManifest(parseReference(`${registry.host}/a:v1`), {
            transport: opener({ password: secret }),
          }),
        [secret],
      );
    },
  },
  {
    class: 8,
    name: "token server echoes the password it was sent in its 401 error",
    async attempt() {
      const secret = password();
      await using registry = serve((request, url) => {
        if (url.pathname === "/token") {
          return denied(
            `bad credentials alice/${passwordOf(request)}`,
            undefined,
            401,
          );
        }
        return new Response(null, {
          status: 401,
          headers: {
            "www-authenticate":
              `Bearer realm="http://${url.host}/token",service="s"`,
          },
        });
      });
      await expectNoLeak(
        () =>
          listTags(parseReference(`${registry.host}/a`), {
            transport: opener({ password: secret }),
          }),
        [secret],
      );
    },
  },
  {
    class: 8,
    name: "token server echoes the identity (refresh) token it was POSTed",
    async attempt() {
      const identityToken = `idt${crypto.randomUUID().replaceAll("-", "")}`;
      await using registry = serve(async (request, url) => {
        if (url.pathname === "/token") {
          const form = new URLSearchParams(await request.text());
          return denied(
            `refresh token ${form.get("refresh_token")} has expired`,
            undefined,
            401,
          );
        }
        return new Response(null, {
          status: 401,
          headers: {
            "www-authenticate":
              `Bearer realm="http://${url.host}/token",service="s"`,
          },
        });
      });
      const open = createOpener({
        retry: false,
        credentials: staticCredentials({ identityToken }),
      });
      await expectNoLeak(
        () =>
          listTags(parseReference(`${registry.host}/a`), { transport: open }),
        [identityToken],
      );
    },
  },
  {
    class: 8,
    name: "registry echoes the token it issued, bare, in the error message",
    async attempt() {
      const token = `tok${crypto.randomUUID().replaceAll("-", "")}`;
      await using registry = serve((request, url) => {
        if (url.pathname === "/token") return Response.json({ token });
        if (request.headers.get("authorization") === `Bearer ${token}`) {
          return denied(`token ${token} is not valid for this repository`);
        }
        return new Response(null, {
          status: 401,
          headers: {
            "www-authenticate":
              `Bearer realm="http://${url.host}/token",service="s"`,
          },
        });
      });
      await expectNoLeak(
        () =>
          listTags(parseReference(`${registry.host}/a`), {
            transport: opener(),
          }),
        [token],
      );
    },
  },
  {
    class: 8,
    name:
      "registry echoes the password in a malformed WWW-Authenticate header (cause chain)",
    async attempt() {
      const secret = `pw-${crypto.randomUUID()}`;
      let loggedIn = 0;
      await using registry = serve((request) => {
        const sent = passwordOf(request);
        if (sent === undefined) {
          return new Response(null, {
            status: 401,
            headers: { "www-authenticate": 'Basic realm="echo"' },
          });
        }
        // The first logged-in request works; the next gets a challenge quoting the password.
        if (++loggedIn === 1) return Response.json({ name: "a", tags: ["v1"] });
        return new Response(null, {
          status: 401,
          headers: { "www-authenticate": `Basic realm="you sent ${sent}` },
        });
      });
      const open = opener({ password: secret });
      const ref = parseReference(`${registry.host}/a`);
      await listTags(ref, { transport: open });
      await expectNoLeak(() => listTags(ref, { transport: open }), [secret]);
    },
  },
  {
    class: 8,
    name:
      "redirect to a pre-signed URL on a dead port: the fetch error quotes X-Amz-Signature",
    async attempt() {
      const signature = `sig${crypto.randomUUID().replaceAll("-", "")}`;
      const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const port = listener.addr.port;
      listener.close();
      await using registry = serve(() =>
        redirectTo(
          `http://127.0.0.1:${port}/blob?X-Amz-Signature=${signature}&X-Amz-Expires=60`,
        )
      );
      await expectNoLeak(
        () =>
          fetchBlob(
            parseReference(`${registry.host}/a`),
            `sha256:${"1".repeat(64)}`,
            {
              transport: opener(),
            },
          ),
        [signature],
      );
    },
  },
];

/** The attacks this module contributes to tests/reliability/attacks_test.ts. */
export const attacks: Attack[] = [...class3, ...class8];
