/** How `waitFor` polls. */
export interface WaitOptions {
  /** Give up after this long (default 10 s). */
  timeoutMs?: number
  /** Pause between checks (default 50 ms). */
  intervalMs?: number
  /** What is being waited for, for the timeout message ("sshd to accept on 127.0.0.1:2222"). */
  what: string
}

/**
 * Polls `condition` until it returns true, or throws once the deadline passes. A condition that throws
 * counts as "not yet"; its last error is quoted in the timeout message. Tests synchronise with this,
 * never with fixed sleeps.
 */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  { timeoutMs = 10_000, intervalMs = 50, what }: WaitOptions,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  for (;;) {
    try {
      if (await condition()) return
    } catch (error) {
      lastError = error
    }
    if (Date.now() >= deadline) {
      const reason = lastError instanceof Error ? ` (last error: ${lastError.message})` : ''
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}${reason}.`)
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
}
