/*
 * sshd caps the sessions (channels) open at once on one connection: `MaxSessions`, 10 by default, 1 on
 * some hardened hosts. Past it, it answers a channel open with a failure ("open failed" or
 * "administratively prohibited") instead of queueing. The gate learns the cap from the first refusal and
 * from then on opens at most that many channels at once on the connection, queueing the rest.
 */

/** ssh2's error for a refused channel open: `(SSH) Channel open failure: ...`. */
export function isChannelRefusal(error: Error): boolean {
  return /Channel open failure/i.test(error.message)
}

/**
 * Refusals with nothing else open on our side come from a session sshd has not freed yet (it frees one a
 * moment after the channel's close): retried this many times, with these pauses in between.
 */
export const REFUSAL_RETRY_DELAYS_MS: readonly number[] = [20, 50, 100, 200, 400, 800, 1600]

export class ChannelGate {
  /** Channels open (or opening) on the connection. */
  private open = 0
  /** The most channels the server accepted at once; unknown (unlimited) until it refuses one. */
  private limit = Number.POSITIVE_INFINITY
  private readonly waiting: Array<() => void> = []

  /** The learned cap, for messages and tests. */
  get learnedLimit(): number | undefined {
    return Number.isFinite(this.limit) ? this.limit : undefined
  }

  /** Resolves when a channel may be opened; the caller must call release() or refused() after. */
  acquire(): Promise<void> {
    if (this.open < this.limit) {
      this.open += 1
      return Promise.resolve()
    }
    return new Promise((resolve) => {
      this.waiting.push(() => {
        this.open += 1
        resolve()
      })
    })
  }

  /** The channel closed (or failed to open for another reason): its slot is free. */
  release(): void {
    this.open -= 1
    this.wakeNext()
  }

  /**
   * The server refused a channel while `open - 1` others were open: remember that as the cap (at least
   * one) and give the slot back. Returns how many others are open, so the caller knows whether to wait
   * for one of them (it queues behind them) or to pause and retry.
   */
  refused(): number {
    this.open -= 1
    this.limit = Math.max(1, this.open)
    return this.open
  }

  private wakeNext(): void {
    while (this.open < this.limit && this.waiting.length > 0) this.waiting.shift()!()
  }
}
