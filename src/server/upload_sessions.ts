/**
 * The embedded registry's unfinished upload sessions: capped in total and per client, and
 * dropped with their bytes once idle for too long, by a timer that `close()` stops.
 *
 * @module
 */
import type { BlobUpload } from "../store/store.ts";

/** Options of {@linkcode UploadSessions}. */
export interface UploadSessionsOptions {
  /** Milliseconds after which a session no request has touched is dropped with its bytes. */
  readonly idleTimeout: number;
  /** Most unfinished sessions at once. */
  readonly maxSessions: number;
  /** Most unfinished sessions of one client (by remote address) at once. */
  readonly maxSessionsPerClient: number;
}

/** One open session and who opened it. */
export interface OpenUpload {
  /** The repository it uploads to. */
  readonly name: string;
  /** Who opened it (its remote address). */
  readonly client: string;
  /** The repository's upload. */
  readonly session: BlobUpload;
}

/**
 * A session refused because too many are unfinished: in total, or for this one client.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { UploadSessionLimitError } from "./upload_sessions.ts";
 * assert.match(new UploadSessionLimitError("client", 2, "127.0.0.1").message, /127\.0\.0\.1/);
 * ```
 */
export class UploadSessionLimitError extends Error {
  /** Which limit was reached. */
  readonly scope: "total" | "client";
  /** The limit. */
  readonly limit: number;
  /**
   * @param scope `"total"` or `"client"`.
   * @param limit The limit that was reached.
   * @param client The client that asked.
   */
  constructor(scope: "total" | "client", limit: number, client: string) {
    super(
      scope === "client"
        ? `${client} already has ${limit} unfinished uploads, the most one client may have; finish or cancel some`
        : `the registry already has ${limit} unfinished uploads, the most it keeps; try again later`,
    );
    this.name = "UploadSessionLimitError";
    this.scope = scope;
    this.limit = limit;
  }
}

interface Entry extends OpenUpload {
  touched: number;
  busy: number;
}

/** The longest time between two sweeps for idle sessions, in milliseconds. */
const MAX_SWEEP_INTERVAL = 60_000;

/**
 * The open upload sessions of one registry. A sweep timer runs while any session is open (it
 * does not keep a process alive), and drops the sessions idle for longer than `idleTimeout`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { UploadSessions } from "./upload_sessions.ts";
 * import { memoryStore } from "../store/memory_store.ts";
 * const store = memoryStore();
 * await using sessions = new UploadSessions({ idleTimeout: 60_000, maxSessions: 2, maxSessionsPerClient: 1 });
 * const id = await sessions.open("app", "10.0.0.1", () => store.startUpload());
 * assert.equal(sessions.get(id, "app")?.client, "10.0.0.1");
 * await assert.rejects(sessions.open("app", "10.0.0.1", () => store.startUpload()), /unfinished/);
 * ```
 */
export class UploadSessions implements AsyncDisposable {
  readonly #options: UploadSessionsOptions;
  readonly #entries = new Map<string, Entry>();
  /** Sessions per client, counting those being opened. */
  readonly #perClient = new Map<string, number>();
  #opening = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  /** @param options Idle timeout and limits. */
  constructor(options: UploadSessionsOptions) {
    this.#options = options;
  }

  /** How many sessions are open. */
  get size(): number {
    return this.#entries.size;
  }

  /**
   * Opens a session for a client, within the limits.
   *
   * @param name The repository.
   * @param client Who asks.
   * @param start Starts the repository's upload (called only when there is room).
   * @returns The session's id.
   * @throws {UploadSessionLimitError} When a limit is reached.
   */
  async open(
    name: string,
    client: string,
    start: () => Promise<BlobUpload>,
  ): Promise<string> {
    if (this.#closed) throw new Error("the registry is closed");
    this.#reserve(client);
    let session: BlobUpload;
    try {
      session = await start();
    } catch (error) {
      this.#release(client);
      throw error;
    } finally {
      this.#opening--;
    }
    const id = crypto.randomUUID();
    this.#entries.set(id, {
      name,
      client,
      session,
      touched: Date.now(),
      busy: 0,
    });
    this.#arm();
    return id;
  }

  /**
   * A session of a repository by id.
   *
   * @param id The id.
   * @param name The repository it must belong to.
   * @returns The session, or undefined when unknown (or of another repository).
   */
  get(id: string, name: string): OpenUpload | undefined {
    const entry = this.#entries.get(id);
    return entry?.name === name ? entry : undefined;
  }

  /**
   * Runs one request on a session: it is not swept meanwhile, and counts as touched after.
   *
   * @param upload A session from {@linkcode UploadSessions.get}.
   * @param work The request.
   * @returns What `work` returns.
   */
  async use<T>(upload: OpenUpload, work: () => Promise<T>): Promise<T> {
    const entry = upload as Entry;
    entry.busy++;
    try {
      return await work();
    } finally {
      entry.busy--;
      entry.touched = Date.now();
    }
  }

  /**
   * Forgets a session (finished or cancelled by the client), without touching its bytes.
   *
   * @param id The id.
   */
  remove(id: string): void {
    const entry = this.#entries.get(id);
    if (entry === undefined) return;
    this.#entries.delete(id);
    this.#release(entry.client);
    if (this.#entries.size === 0) this.#disarm();
  }

  /**
   * Drops the sessions idle for longer than the timeout, with their bytes.
   *
   * @param now The time to measure idleness against.
   * @returns How many were dropped.
   */
  async sweep(now: number = Date.now()): Promise<number> {
    const idle = [...this.#entries].filter(([, entry]) =>
      entry.busy === 0 && now - entry.touched > this.#options.idleTimeout
    );
    for (const [id] of idle) this.remove(id);
    await Promise.all(
      idle.map(([, entry]) => entry.session.cancel().catch(() => {})),
    );
    return idle.length;
  }

  /** Stops the timer and drops every session with its bytes. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#disarm();
    const all = [...this.#entries.values()];
    for (const id of [...this.#entries.keys()]) this.remove(id);
    await Promise.all(
      all.map((entry) => entry.session.cancel().catch(() => {})),
    );
  }

  /** Same as {@linkcode UploadSessions.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #reserve(client: string): void {
    const { maxSessions, maxSessionsPerClient } = this.#options;
    if (this.#entries.size + this.#opening >= maxSessions) {
      throw new UploadSessionLimitError("total", maxSessions, client);
    }
    const count = this.#perClient.get(client) ?? 0;
    if (count >= maxSessionsPerClient) {
      throw new UploadSessionLimitError("client", maxSessionsPerClient, client);
    }
    this.#perClient.set(client, count + 1);
    this.#opening++;
  }

  #release(client: string): void {
    const count = (this.#perClient.get(client) ?? 1) - 1;
    if (count <= 0) this.#perClient.delete(client);
    else this.#perClient.set(client, count);
  }

  /** Starts the sweep timer, unless it runs; it does not keep the process alive. */
  #arm(): void {
    if (this.#timer !== undefined) return;
    const every = Math.max(
      1,
      Math.min(MAX_SWEEP_INTERVAL, Math.ceil(this.#options.idleTimeout / 2)),
    );
    const timer = setInterval(() => void this.sweep(), every);
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }

  #disarm(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
