/**
 * A registry for cancellation tests: the embedded registry on 127.0.0.1 with one 300 MiB blob
 * of zeros that costs no memory (made up as it is read), an image whose layer it is, and
 * counters of the bytes that really cross the socket: blob bytes the server handed to its
 * connection, upload bytes it read from one, and every request it saw (DELETEs of upload
 * sessions included).
 */
import { createHash } from "node:crypto";
import { createRegistry } from "../../src/server/handler.ts";
import {
  memoryRepositories,
  type Repositories,
} from "../../src/server/repositories.ts";
import { digestOf } from "../../src/oci/digest.ts";
import {
  OCI_CONFIG_MEDIA_TYPE,
  OCI_LAYER_TAR_MEDIA_TYPE,
  OCI_MANIFEST_MEDIA_TYPE,
} from "../../src/oci/media_types.ts";
import type { Descriptor } from "../../src/oci/manifest.ts";

/** The size of the big blob. */
export const BIG_SIZE = 300 << 20;

/** Bytes per chunk the server hands to its connection (small, so the counts are fine-grained). */
const SERVE_CHUNK = 256 << 10;

const ZEROS = new Uint8Array(1 << 20);

let bigDigest: string | undefined;

/** The digest of {@linkcode BIG_SIZE} zero bytes (hashed once per process, about a second). */
export function bigBlobDigest(): string {
  if (bigDigest === undefined) {
    const hash = createHash("sha256");
    for (let done = 0; done < BIG_SIZE; done += ZEROS.byteLength) {
      hash.update(ZEROS);
    }
    bigDigest = `sha256:${hash.digest("hex")}`;
  }
  return bigDigest;
}

/** A sparse file of {@linkcode BIG_SIZE} zeros (made at once, reads as zeros). */
export async function makeBigFile(dir: string): Promise<string> {
  const path = `${dir}/big.bin`;
  using file = await Deno.open(path, { write: true, createNew: true });
  await file.truncate(BIG_SIZE);
  return path;
}

/** `size` zeros, made up as they are read, `SERVE_CHUNK` at a time, counted by `onChunk`. */
function zeroStream(
  size: number,
  onChunk: (bytes: number) => void,
): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent >= size) return controller.close();
      const bytes = Math.min(SERVE_CHUNK, size - sent);
      sent += bytes;
      onChunk(bytes);
      controller.enqueue(new Uint8Array(bytes));
    },
  }, { highWaterMark: 0 });
}

/** Repositories in memory where repository `source` also holds the big blob, made up when read. */
function withBigBlob(
  repositories: Repositories,
  source: string,
  onChunk: (bytes: number) => void,
): Repositories {
  const digest = bigBlobDigest();
  return {
    ...repositories,
    get(name) {
      const repository = repositories.get(name);
      if (name !== source) return repository;
      return {
        ...repository,
        blobSize(wanted, options) {
          if (wanted === digest) return Promise.resolve(BIG_SIZE);
          return repository.blobSize(wanted, options);
        },
        readBlob(wanted, options) {
          if (wanted !== digest) return repository.readBlob(wanted, options);
          const range = options?.range;
          const size = range ? range.end - range.start + 1 : BIG_SIZE;
          return Promise.resolve(zeroStream(size, onChunk));
        },
      };
    },
  };
}

/** A request the registry saw. */
export interface SeenRequest {
  readonly method: string;
  readonly path: string;
}

/** The running registry and its counters. */
export interface BigBlobRegistry extends AsyncDisposable {
  /** `host:port`. */
  readonly host: string;
  /** The repository that holds the big blob and the image `v1` whose only layer it is. */
  readonly source: string;
  /** The big blob's descriptor. */
  readonly blob: Descriptor;
  /** Big-blob bytes handed to connections so far. */
  readonly sent: number;
  /** Upload bytes read from connections so far. */
  readonly received: number;
  /** Every request, in order. */
  readonly requests: readonly SeenRequest[];
  /** Resolves once `sent` (or `received`) reaches `bytes`. */
  whenSent(bytes: number): Promise<void>;
  whenReceived(bytes: number): Promise<void>;
  /** The `DELETE`s of upload sessions. */
  uploadDeletes(): SeenRequest[];
  /** The upload sessions started (`Location`s of 202 answers to POST). */
  readonly sessions: readonly string[];
  /** The sessions started and never finished (no 201 to their PUT). */
  unfinishedSessions(): string[];
}

/** Starts the registry, with the image `v1` in repository `big/source`. */
export async function startBigBlobRegistry(): Promise<BigBlobRegistry> {
  const source = "big/source";
  let sent = 0;
  let received = 0;
  const requests: SeenRequest[] = [];
  const sessions: string[] = [];
  const finished = new Set<string>();
  const waiters: { bytes: number; of: () => number; resolve: () => void }[] =
    [];
  const wake = () => {
    for (const waiter of [...waiters]) {
      if (waiter.of() >= waiter.bytes) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    }
  };
  const repositories = withBigBlob(memoryRepositories(), source, (bytes) => {
    sent += bytes;
    wake();
  });
  const handler = createRegistry({ repositories });
  const countUpload = (body: ReadableStream<Uint8Array>) =>
    body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          received += chunk.byteLength;
          wake();
          controller.enqueue(chunk);
        },
      }),
    );
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      const path = new URL(request.url).pathname;
      requests.push({ method: request.method, path });
      const upload = request.body !== null &&
        (request.method === "PUT" || request.method === "PATCH" ||
          request.method === "POST");
      const forwarded = upload
        ? new Request(request.url, {
          method: request.method,
          headers: request.headers,
          body: countUpload(request.body!),
        })
        : request;
      const response = await handler(forwarded);
      if (request.method === "POST" && response.status === 202) {
        const location = response.headers.get("location");
        if (location) sessions.push(new URL(location, request.url).pathname);
      }
      if (request.method === "PUT" && response.status === 201) {
        finished.add(path);
      }
      return response;
    },
  );
  const host = `127.0.0.1:${server.addr.port}`;

  // The image: a small config, and a manifest whose only layer is the big blob.
  const config = new TextEncoder().encode(JSON.stringify({
    architecture: "amd64",
    os: "linux",
    rootfs: { type: "layers", diff_ids: [bigBlobDigest()] },
  }));
  const configDigest = digestOf(config);
  const put = await handler(
    new Request(
      `http://${host}/v2/${source}/blobs/uploads/?digest=${configDigest}`,
      { method: "POST", body: config },
    ),
  );
  if (put.status !== 201) throw new Error(`config upload: ${put.status}`);
  const blob: Descriptor = {
    mediaType: OCI_LAYER_TAR_MEDIA_TYPE,
    digest: bigBlobDigest(),
    size: BIG_SIZE,
  };
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST_MEDIA_TYPE,
    config: {
      mediaType: OCI_CONFIG_MEDIA_TYPE,
      digest: configDigest,
      size: config.byteLength,
    },
    layers: [blob],
  });
  const tagged = await handler(
    new Request(`http://${host}/v2/${source}/manifests/v1`, {
      method: "PUT",
      headers: { "content-type": OCI_MANIFEST_MEDIA_TYPE },
      body: manifest,
    }),
  );
  if (tagged.status !== 201) {
    throw new Error(`manifest: ${tagged.status} ${await tagged.text()}`);
  }

  const waitFor = (of: () => number) => (bytes: number) => {
    const { promise, resolve } = Promise.withResolvers<void>();
    waiters.push({ bytes, of, resolve });
    wake();
    return promise;
  };
  return {
    host,
    source,
    blob,
    get sent() {
      return sent;
    },
    get received() {
      return received;
    },
    requests,
    sessions,
    unfinishedSessions() {
      return sessions.filter((session) => !finished.has(session));
    },
    whenSent: waitFor(() => sent),
    whenReceived: waitFor(() => received),
    uploadDeletes() {
      return requests.filter((r) =>
        r.method === "DELETE" && /\/blobs\/uploads\/[^/]+$/.test(r.path)
      );
    },
    async [Symbol.asyncDispose]() {
      await server.shutdown();
    },
  };
}

/** Names under a directory that are temporary files (`*.tmp-…`, `.oci-tmp-…`). */
export async function temporariesUnder(root: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (dir: string) => {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(dir));
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return;
      throw error;
    }
    for (const entry of entries) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory) await walk(path);
      else if (/\.tmp-|^\.oci-tmp-/.test(entry.name)) found.push(path);
    }
  };
  await walk(root);
  return found;
}
