/**
 * One way to wait for a condition on a host: look, and look again after an interval, until the
 * condition holds, a look says it never will, or the deadline passes. Every wait of a restart goes
 * through here, so each has a deadline and none is a bare sleep; the clock is injectable, so the
 * waiting is tested without waiting.
 */

export interface Clock {
  now(): number
  sleep(ms: number): Promise<void>
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
}

/** One look: done with a value, not yet (saying what was seen), or failed for good. */
export type Look<T> =
  | { state: 'done'; value: T }
  | { state: 'pending'; detail: string }
  | { state: 'failed'; detail: string }

export type PollResult<T> = { ok: true; value: T } | { ok: false; detail: string; timedOut: boolean }

export interface PollOptions {
  /** How long to keep looking, from the first look. */
  deadlineMs: number
  /** The wait before the second look; later waits grow by half each time, up to `maxIntervalMs`. */
  intervalMs: number
  /** The longest wait between two looks; default four times `intervalMs`. */
  maxIntervalMs?: number
  clock?: Clock
  signal?: AbortSignal
}

/**
 * Looks until `look` is done or failed, or the deadline has passed (the last look comes after it, so
 * a condition met right at the deadline still counts). Aborting rejects with the signal's reason.
 * Looks get sparser the longer the wait: a look at Puma starts a Ruby on the host, and on a busy host
 * four a second take CPU from the very workers being waited for (measured: a hot restart under load
 * took longer, and failed more requests, than the same signal sent by hand).
 */
export async function pollUntil<T>(
  options: PollOptions,
  look: () => Promise<Look<T>>,
): Promise<PollResult<T>> {
  const clock = options.clock ?? systemClock
  const deadline = clock.now() + options.deadlineMs
  const maxIntervalMs = options.maxIntervalMs ?? options.intervalMs * 4
  let intervalMs = options.intervalMs
  for (;;) {
    options.signal?.throwIfAborted()
    const seen = await look()
    if (seen.state === 'done') return { ok: true, value: seen.value }
    if (seen.state === 'failed') return { ok: false, detail: seen.detail, timedOut: false }
    if (clock.now() > deadline) return { ok: false, detail: seen.detail, timedOut: true }
    await clock.sleep(intervalMs)
    intervalMs = Math.min(maxIntervalMs, Math.round(intervalMs * 1.5))
  }
}
