// Attacks of the issue "Safety" on this part of the stack (contract: tests/support/attacks.ts):
// hostile clients of `oci serve` that exhaust its descriptors and memory with unfinished upload
// sessions (class 4), and that pick repository names colliding with the `--root` layout's own
// files (class 5). Each drives the real handler over HTTP on 127.0.0.1.
import type { Attack } from "../support/attacks.ts";
import { ALL_PERMISSIONS, CLI } from "../support/cli.ts";
import { serveRegistry } from "../../src/server/serve.ts";
import { memoryRepositories } from "../../src/server/repositories.ts";
import { digestOf } from "../../src/oci/digest.ts";
import { concatBytes } from "../../src/io/bytes.ts";

// ---------------------------------------------------------------------------------------------
// Helpers: a registry in a child process (`oci serve --root`, optionally under `ulimit -n`), and
// raw HTTP/1.1 for requests fetch would rewrite.

/** `oci serve --root` in a child process, its descriptors limited by `ulimit -n`. */
interface ChildRegistry extends AsyncDisposable {
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** Whether the process still runs. */
  running(): Promise<boolean>;
}

async function serveInChild(
  root: string,
  maxDescriptors: number,
): Promise<ChildRegistry> {
  const command = [
    `ulimit -n ${maxDescriptors}`,
    `exec "$0" run ${
      ALL_PERMISSIONS.join(" ")
    } "$1" serve --port 0 --root "$2" --json`,
  ].join(" && ");
  const child = new Deno.Command("bash", {
    args: ["-c", command, Deno.execPath(), CLI, root],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream())
    .getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  if (!text.includes("\n")) {
    await child.status;
    throw new Error(`oci serve did not start: ${await stderr}`);
  }
  const { url, host } = JSON.parse(text.split("\n")[0]);
  let ended = false;
  const status = child.status.then((s) => {
    ended = true;
    return s;
  });
  return {
    url,
    host,
    port: Number(new URL(url).port),
    running: async () => {
      await new Promise((resolve) => setTimeout(resolve, 50));
      return !ended;
    },
    async [Symbol.asyncDispose]() {
      if (!ended) child.kill("SIGKILL");
      await reader.cancel().catch(() => {});
      await status;
      await stderr;
    },
  };
}

/**
 * Sends one raw HTTP/1.1 request (the head exactly as given), then `body` in 16 KiB pieces
 * while reading the answer, and stops sending once an answer came (a server that refuses early
 * closes a connection whose bytes it did not read: sending on would reset it). Reads to EOF;
 * with `hangUp`, closes its sending side after the body (so a server waiting for more of a
 * declared length sees the end; Deno.serve drops the answer of a request whose client did).
 */
async function rawRequest(
  port: number,
  head: string,
  body: Uint8Array = new Uint8Array(),
  hangUp = false,
): Promise<{ status: number; text: string }> {
  const connection = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const chunks: Uint8Array[] = [];
    const reading = (async () => {
      const buffer = new Uint8Array(64 << 10);
      for (;;) {
        const n = await connection.read(buffer).catch(() => null);
        if (n === null) return;
        chunks.push(buffer.slice(0, n));
      }
    })();
    try {
      await writeAll(
        connection,
        new TextEncoder().encode(head.replaceAll("\n", "\r\n")),
      );
      for (let sent = 0; sent < body.length && chunks.length === 0;) {
        sent += await connection.write(body.subarray(sent, sent + (16 << 10)));
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      if (hangUp) await connection.closeWrite();
    } catch {
      // The server answered and closed before reading everything: read what it said.
    }
    await reading;
    const text = new TextDecoder().decode(concatBytes(chunks));
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
    return { status, text };
  } finally {
    connection.close();
  }
}

async function writeAll(connection: Deno.Conn, bytes: Uint8Array) {
  for (let sent = 0; sent < bytes.length;) {
    sent += await connection.write(bytes.subarray(sent));
  }
}

async function statusOf(response: Response): Promise<number> {
  await response.body?.cancel();
  return response.status;
}

async function errorCodeOf(response: Response): Promise<string> {
  const text = await response.text();
  try {
    return JSON.parse(text).errors?.[0]?.code ?? text;
  } catch {
    return text;
  }
}

/** Answers from a new connection each time (`Connection: close`), so an accept is needed. */
function freshFetch(url: string, init: RequestInit = {}): Promise<Response> {
  return fetch(url, {
    ...init,
    headers: { ...init.headers, connection: "close" },
  });
}

/** Whether the registry answers a complete push and pull from a new connection. */
async function servesOthers(url: string): Promise<string | undefined> {
  const content = `still serving ${crypto.randomUUID()}`;
  const digest = digestOf(content);
  const push = await freshFetch(
    `${url}/v2/bystander/blobs/uploads/?digest=${digest}`,
    { method: "POST", body: content },
  );
  if (push.status !== 201) {
    return `a bystander's push got ${push.status}: ${await push.text()}`;
  }
  await push.body?.cancel();
  const pull = await freshFetch(`${url}/v2/bystander/blobs/${digest}`);
  const text = await pull.text();
  return text === content ? undefined : `a bystander's pull got ${pull.status}`;
}

/** Polls `check` (which answers a problem or undefined) until it passes or tries run out. */
async function eventually(
  check: () => Promise<string | undefined>,
  tries = 40,
  every = 250,
): Promise<string | undefined> {
  let problem: string | undefined;
  for (let i = 0; i < tries; i++) {
    problem = await check().catch((error) => String(error));
    if (problem === undefined) return undefined;
    await new Promise((resolve) => setTimeout(resolve, every));
  }
  return problem;
}

// ---------------------------------------------------------------------------------------------
// Class 4: upload sessions exhaust file descriptors (and memory).

/** Opens `count` sessions (and PATCHes `chunk` into each when given); tallies the answers. */
async function openSessions(
  url: string,
  count: number,
  chunk?: Uint8Array,
): Promise<
  { statuses: Map<number, number>; bodies: string[]; locations: URL[] }
> {
  const statuses = new Map<number, number>();
  const bodies: string[] = [];
  const locations: URL[] = [];
  const tally = async (response: Response) => {
    statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
    const text = await response.text();
    if (response.status >= 400 && bodies.length < 3) bodies.push(text);
  };
  for (let i = 0; i < count; i++) {
    const post = await fetch(`${url}/v2/hoarder/blobs/uploads/`, {
      method: "POST",
    });
    const location = post.headers.get("location");
    await tally(post);
    if (location !== null) locations.push(new URL(location, url));
    if (chunk === undefined || post.status !== 202 || location === null) {
      continue;
    }
    await tally(
      await fetch(new URL(location, url), {
        method: "PATCH",
        body: chunk as Uint8Array<ArrayBuffer>,
        headers: { "content-type": "application/octet-stream" },
      }),
    );
  }
  return { statuses, bodies, locations };
}

/** Answers other than these mean the server broke (500) rather than refused. */
function unexpected(
  statuses: Map<number, number>,
  allowed: number[],
): string | undefined {
  const other = [...statuses].filter(([status]) => !allowed.includes(status));
  return other.length === 0
    ? undefined
    : other.map(([status, n]) => `${n}× ${status}`).join(", ");
}

async function hoardOnRoot(chunk?: Uint8Array): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "oci-attack-fds-" });
  try {
    await using registry = await serveInChild(root, 1024);
    const { statuses, bodies } = await openSessions(registry.url, 1100, chunk);
    const problems = [];
    const broke = unexpected(statuses, [202, 429]);
    if (broke) problems.push(`answers ${broke} (${bodies.join(" | ")})`);
    if (!(await registry.running())) problems.push("oci serve exited");
    const others = await eventually(() => servesOthers(registry.url), 8);
    if (others) problems.push(others);
    if (problems.length > 0) {
      throw new Error(
        `1,100 unfinished sessions on oci serve --root (ulimit -n 1024): ${
          problems.join("; ")
        }`,
      );
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

const class4: Attack[] = [
  {
    class: 4,
    name:
      "1,100 POSTs without a PUT run oci serve --root out of descriptors (ulimit -n 1024)",
    attempt: () => hoardOnRoot(),
  },
  {
    class: 4,
    name:
      "a PATCH chunk into each of 1,100 sessions on oci serve --root (ulimit -n 1024)",
    attempt: () => hoardOnRoot(new Uint8Array(4096).fill(7)),
  },
  {
    class: 4,
    name:
      "100 idle connections exhaust `ulimit -n 64`: the process must answer 503, not end, and serve after",
    async attempt() {
      const root = await Deno.makeTempDir({ prefix: "oci-attack-emfile-" });
      try {
        await using registry = await serveInChild(root, 64);
        // A connection opened before the flood, kept alive, so that requests reach the handler
        // while accepts fail.
        const keptAlive = await fetch(`${registry.url}/v2/`);
        await keptAlive.body?.cancel();
        const held: Deno.Conn[] = [];
        for (let i = 0; i < 100; i++) {
          try {
            held.push(
              await Deno.connect({
                hostname: "127.0.0.1",
                port: registry.port,
              }),
            );
          } catch {
            break;
          }
        }
        const statuses = new Map<number, number>();
        for (let i = 0; i < 20; i++) {
          const post = await fetch(`${registry.url}/v2/flood/blobs/uploads/`, {
            method: "POST",
          }).catch(() => undefined);
          if (post === undefined) continue;
          statuses.set(post.status, (statuses.get(post.status) ?? 0) + 1);
          await post.body?.cancel();
        }
        for (const connection of held) connection.close();
        const problems = [];
        const broke = unexpected(statuses, [202, 503]);
        if (broke) problems.push(`uploads answered ${broke}`);
        if (!(await registry.running())) problems.push("oci serve exited");
        const others = await eventually(() => servesOthers(registry.url));
        if (others) {
          problems.push(`after the connections closed: ${others}`);
        }
        if (problems.length > 0) {
          throw new Error(`out of descriptors: ${problems.join("; ")}`);
        }
      } finally {
        await Deno.remove(root, { recursive: true });
      }
    },
  },
  {
    class: 4,
    name: "1,100 POSTs without a PUT on the in-memory registry are not capped",
    async attempt() {
      await using registry = await serveRegistry();
      const { statuses } = await openSessions(registry.url, 1100);
      const accepted = statuses.get(202) ?? 0;
      const broke = unexpected(statuses, [202, 429]);
      const others = await servesOthers(registry.url);
      if (accepted > 1024 || broke || others) {
        throw new Error(
          `one client keeps ${accepted} unfinished sessions in memory${
            broke ? `; answers ${broke}` : ""
          }${others ? `; ${others}` : ""}`,
        );
      }
    },
  },
  {
    class: 4,
    name:
      "PATCH 64 KiB into 64 in-memory sessions: unfinished bytes must stay under the cap (1 MiB)",
    async attempt() {
      const cap = 1 << 20;
      await using registry = await serveRegistry({
        repositories: memoryRepositories({ maxUploadBytes: cap }),
      });
      const { statuses, locations } = await openSessions(
        registry.url,
        64,
        new Uint8Array(64 << 10).fill(1),
      );
      const patched = (statuses.get(202) ?? 0) - 64;
      const held = patched * (64 << 10);
      const broke = unexpected(statuses, [202, 429]);
      if (held > cap || broke || (statuses.get(429) ?? 0) === 0) {
        throw new Error(
          `unfinished in-memory uploads hold ${held} bytes past a cap of ${cap}${
            broke ? `; answers ${broke}` : ""
          }`,
        );
      }
      // The room comes back once the hoarder's sessions end.
      for (const location of locations) {
        await statusOf(await fetch(location, { method: "DELETE" }));
      }
      const others = await servesOthers(registry.url);
      if (others) throw new Error(`after the sessions ended: ${others}`);
    },
  },
  {
    class: 4,
    name:
      "a PATCH declaring Content-Length: 1 TiB is read into memory instead of refused at once",
    async attempt() {
      await using registry = await serveRegistry();
      const post = await fetch(`${registry.url}/v2/big/blobs/uploads/`, {
        method: "POST",
      });
      const location = post.headers.get("location")!;
      await post.body?.cancel();
      const port = Number(new URL(registry.url).port);
      const { status, text } = await rawRequest(
        port,
        [
          `PATCH ${location} HTTP/1.1`,
          `Host: 127.0.0.1:${port}`,
          "Content-Type: application/octet-stream",
          `Content-Length: ${2 ** 40}`,
          "",
          "",
        ].join("\n"),
        new Uint8Array(256 << 10),
        true,
      );
      const after = await fetch(new URL(location, registry.url));
      const range = after.headers.get("range");
      await after.body?.cancel();
      if (status !== 413 || !text.includes("SIZE_INVALID") || range !== "0-0") {
        throw new Error(
          `a 1 TiB declared PATCH got ${
            status || "no answer"
          }, and the session now holds ${range}`,
        );
      }
    },
  },
  {
    class: 4,
    name:
      "sessions left open with no further POST stay on disk: idle ones must expire on a timer",
    async attempt() {
      const root = await Deno.makeTempDir({ prefix: "oci-attack-idle-" });
      try {
        await using registry = await serveRegistry({
          root,
          uploadTimeout: 100,
        });
        const { statuses } = await openSessions(
          registry.url,
          20,
          new Uint8Array(1000),
        );
        if (statuses.get(202) !== 40) {
          throw new Error(`the sessions were not opened: ${[...statuses]}`);
        }
        // Only reads from now on: nothing but a timer can drop the sessions.
        const left = await eventually(async () => {
          await statusOf(await fetch(`${registry.url}/v2/`));
          const files = [...Deno.readDirSync(`${root}/.uploads`)];
          return files.length === 0
            ? undefined
            : `${files.length} abandoned upload files are still in ${root}/.uploads`;
        });
        if (left) throw new Error(left);
      } finally {
        await Deno.remove(root, { recursive: true });
      }
    },
  },
];

// ---------------------------------------------------------------------------------------------
// Class 5: repository names collide with the --root layout's own files.

const MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json";

/** Pushes a blob by single POST; answers the response's status and error code. */
async function pushBlob(
  url: string,
  repository: string,
  content: string,
): Promise<{ status: number; code?: string }> {
  const response = await fetch(
    `${url}/v2/${repository}/blobs/uploads/?digest=${digestOf(content)}`,
    { method: "POST", body: content },
  );
  if (response.status === 201) {
    await response.body?.cancel();
    return { status: 201 };
  }
  return { status: response.status, code: await errorCodeOf(response) };
}

/** Pushes a one-layer image under a tag; answers the manifest push's status and code. */
async function pushImage(
  url: string,
  repository: string,
  tag: string,
  layer = `layer of ${repository}`,
): Promise<{ status: number; code?: string }> {
  const config =
    `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"for":"${repository}"}`;
  for (const content of [config, layer]) {
    const pushed = await pushBlob(url, repository, content);
    if (pushed.status !== 201) return pushed;
  }
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: MANIFEST_TYPE,
    config: {
      mediaType: "application/vnd.oci.image.config.v1+json",
      digest: digestOf(config),
      size: new TextEncoder().encode(config).length,
    },
    layers: [{
      mediaType: "application/vnd.oci.image.layer.v1.tar",
      digest: digestOf(layer),
      size: new TextEncoder().encode(layer).length,
    }],
  });
  const response = await fetch(`${url}/v2/${repository}/manifests/${tag}`, {
    method: "PUT",
    body: manifest,
    headers: { "content-type": MANIFEST_TYPE },
  });
  if (response.status === 201) {
    await response.body?.cancel();
    return { status: 201 };
  }
  return { status: response.status, code: await errorCodeOf(response) };
}

/** What is wrong with the layouts of these repositories and with the shared blob store. */
async function layoutProblems(
  root: string,
  repositories: string[],
): Promise<string[]> {
  const problems: string[] = [];
  for (const repository of repositories) {
    const dir = `${root}/${repository}`;
    try {
      const index = JSON.parse(await Deno.readTextFile(`${dir}/index.json`));
      if (!Array.isArray(index.manifests) || index.manifests.length === 0) {
        problems.push(`${repository}/index.json lists no manifests`);
      }
      const layout = JSON.parse(await Deno.readTextFile(`${dir}/oci-layout`));
      if (layout.imageLayoutVersion !== "1.0.0") {
        problems.push(`${repository}/oci-layout is ${JSON.stringify(layout)}`);
      }
      if (
        (await Deno.realPath(`${dir}/blobs`)) !==
          (await Deno.realPath(`${root}/.blobs`))
      ) {
        problems.push(`${repository}/blobs is not the shared blob store`);
      }
    } catch (error) {
      problems.push(`${repository}'s layout is unreadable: ${error}`);
    }
  }
  for await (const entry of Deno.readDir(`${root}/.blobs`)) {
    if (entry.name !== "sha256") {
      problems.push(`the shared blob store holds .blobs/${entry.name}`);
    }
  }
  for await (const entry of Deno.readDir(`${root}/.blobs/sha256`)) {
    const path = `${root}/.blobs/sha256/${entry.name}`;
    if (!entry.isFile) {
      problems.push(`the shared blob store holds a directory ${path}`);
      continue;
    }
    if (digestOf(await Deno.readFile(path)) !== `sha256:${entry.name}`) {
      problems.push(`.blobs/sha256/${entry.name} is not named by its digest`);
    }
  }
  return problems;
}

/**
 * Runs a name attack on a fresh `--root` registry: `victims` are pushed first, then `attack`
 * runs and answers what got through; afterwards every victim's layout must still be valid.
 */
async function onRoot(
  victims: string[],
  attack: (url: string, port: number) => Promise<string[]>,
): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "oci-attack-names-" });
  try {
    await using registry = await serveRegistry({ root });
    for (const victim of victims) {
      const pushed = await pushImage(registry.url, victim, "v1");
      if (pushed.status !== 201) {
        throw new Error(`setup: pushing ${victim} got ${pushed.status}`);
      }
    }
    const port = Number(new URL(registry.url).port);
    const problems = await attack(registry.url, port);
    problems.push(...await layoutProblems(root, victims));
    if (problems.length > 0) throw new Error(problems.join("; "));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

/** A push to a crafted name must be refused with 400 NAME_INVALID naming `component`. */
function refusedName(
  name: string,
  component: string,
  outcome: { status: number; code?: string },
): string[] {
  return outcome.status === 400 && outcome.code === "NAME_INVALID" ? [] : [
    `pushing to ${name} (component "${component}") got ${outcome.status} ${
      outcome.code ?? ""
    }, not 400 NAME_INVALID`,
  ];
}

/** Whether `repository` can read a blob it never received. */
async function leaked(
  url: string,
  repository: string,
  content: string,
): Promise<string[]> {
  const response = await fetch(
    `${url}/v2/${repository}/blobs/${digestOf(content)}`,
  );
  const text = await response.text();
  return response.status === 200
    ? [`${repository} reads a blob it never received: "${text}"`]
    : [];
}

const SECRET = "the victim's secret layer";
const SECRET_HEX = digestOf(SECRET).slice("sha256:".length);

const class5: Attack[] = [
  {
    class: 5,
    name: "a push to team/app/blobs writes a layout into the shared blob store",
    attempt: () =>
      onRoot(["team/app"], async (url) =>
        refusedName(
          "team/app/blobs",
          "blobs",
          await pushImage(url, "team/app/blobs", "v1"),
        )),
  },
  {
    class: 5,
    name: "a push to first/app/blobs/sha256 writes index.json among the blobs",
    attempt: () =>
      onRoot(["first/app"], async (url) =>
        refusedName(
          "first/app/blobs/sha256",
          "blobs",
          await pushImage(url, "first/app/blobs/sha256", "v1"),
        )),
  },
  {
    class: 5,
    name:
      "a push to victim/sha256/<hex> makes a blob visible in victim that victim never received",
    attempt: () =>
      onRoot(["victim"], async (url) => {
        const planted = "a blob the attacker plants";
        const hex = digestOf(planted).slice("sha256:".length);
        await pushBlob(url, "mallory", planted);
        // A name of its own (allowed), whose storage must not be any of victim's.
        await pushBlob(url, `victim/sha256/${hex}`, "anything");
        return await leaked(url, "victim", planted);
      }),
  },
  {
    class: 5,
    name:
      "a push to mallory/sha256/<hex of victim's blob> lets mallory read victim's blob",
    attempt: () =>
      onRoot(["victim"], async (url) => {
        await pushBlob(url, "victim", SECRET);
        await pushBlob(url, `mallory/sha256/${SECRET_HEX}`, "anything");
        return await leaked(url, "mallory", SECRET);
      }),
  },
  {
    class: 5,
    name:
      "the same through encoded dot segments: POST /v2/mallory/x/%2e%2E/sha256/<hex>/blobs/uploads/",
    attempt: () =>
      onRoot(["victim"], async (url, port) => {
        await pushBlob(url, "victim", SECRET);
        const problems: string[] = [];
        for (const dots of ["%2e%2E", ".%2e", "%2E."]) {
          // The empty blob, linked to whatever name the path resolves to.
          const { status } = await rawRequest(
            port,
            [
              `POST /v2/mallory/x/${dots}/sha256/${SECRET_HEX}/blobs/uploads/?digest=${
                digestOf("")
              } HTTP/1.1`,
              `Host: 127.0.0.1:${port}`,
              "Content-Length: 0",
              "Connection: close",
              "",
              "",
            ].join("\n"),
          );
          // Either refused, or stored under a name of its own: never a 500, never dropped.
          if (status !== 201 && status !== 400) {
            problems.push(`the ${dots} push got ${status || "no answer"}`);
          }
        }
        problems.push(...await leaked(url, "mallory", SECRET));
        return problems;
      }),
  },
  {
    class: 5,
    name:
      "a push to team/index.json first leaves team's layout unwritable (its index.json a directory)",
    async attempt() {
      const root = await Deno.makeTempDir({ prefix: "oci-attack-names-" });
      try {
        await using registry = await serveRegistry({ root });
        const problems = refusedName(
          "team/index.json",
          "index.json",
          await pushImage(registry.url, "team/index.json", "v1"),
        );
        const victim = await pushImage(registry.url, "team", "v1");
        if (victim.status !== 201) {
          problems.push(`team's own push then got ${victim.status}`);
        }
        problems.push(...await layoutProblems(root, ["team"]));
        if (problems.length > 0) throw new Error(problems.join("; "));
      } finally {
        await Deno.remove(root, { recursive: true });
      }
    },
  },
  {
    class: 5,
    name:
      "a push to team/oci-layout first breaks team's layout (its oci-layout a directory)",
    async attempt() {
      const root = await Deno.makeTempDir({ prefix: "oci-attack-names-" });
      try {
        await using registry = await serveRegistry({ root });
        const problems = refusedName(
          "team/oci-layout",
          "oci-layout",
          await pushImage(registry.url, "team/oci-layout", "v1"),
        );
        const victim = await pushImage(registry.url, "team", "v1");
        if (victim.status !== 201) {
          problems.push(`team's own push then got ${victim.status}`);
        }
        problems.push(...await layoutProblems(root, ["team"]));
        if (problems.length > 0) throw new Error(problems.join("; "));
      } finally {
        await Deno.remove(root, { recursive: true });
      }
    },
  },
];

/** The attacks this module contributes to tests/reliability/attacks_test.ts. */
export const attacks: Attack[] = [...class4, ...class5];
