/** Workers that cannot start, for the tests of what falls back to this thread. */

/**
 * `globalThis.Worker` replaced, the ways a Worker cannot start: none at all,
 * a constructor that throws (no permission), and one whose module fails to load (its error
 * event comes before any message, after the first input was sent to it).
 */
export const FALLBACKS: Record<string, typeof Worker | undefined> = {
  "no Worker": undefined,
  "a Worker that cannot be created": class {
    constructor() {
      throw new Error("Requires read access");
    }
  } as unknown as typeof Worker,
  "a Worker whose module fails to load": class {
    onmessage: ((event: MessageEvent) => void) | null = null;
    onerror: ((event: ErrorEvent) => void) | null = null;
    constructor() {
      setTimeout(() => {
        this.onerror?.(
          new ErrorEvent("error", {
            message: "module not found",
            cancelable: true,
          }),
        );
      }, 20);
    }
    postMessage() {}
    terminate() {}
  } as unknown as typeof Worker,
};

/** Runs `body` with `globalThis.Worker` replaced by `worker` (undefined: none). */
export async function withWorker<T>(
  worker: typeof Worker | undefined,
  body: () => Promise<T>,
): Promise<T> {
  const real = globalThis.Worker;
  Object.defineProperty(globalThis, "Worker", {
    value: worker,
    configurable: true,
    writable: true,
  });
  try {
    return await body();
  } finally {
    Object.defineProperty(globalThis, "Worker", {
      value: real,
      configurable: true,
      writable: true,
    });
  }
}
