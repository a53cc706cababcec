/** Who ran a command: recorded in the lock and in every history line. */
export interface Actor {
  user: string
  /** The machine deployer ran on. */
  machine: string
  pid: number
  /** A CI run's URL or id, when deployer runs in CI. */
  ci?: string
}

/** One line of `.deployer/history.jsonl`. Appended, never rewritten. */
export type HistoryEvent =
  | { event: 'release'; release: number; previous: number | null; revision: string; time: string; by: Actor }
  | { event: 'rollback'; from: number | null; to: number; time: string; by: Actor }
  | { event: 'failed'; release: number; reason: string; time: string; by: Actor }
  | { event: 'prune'; deleted: number[]; time: string; by: Actor }
  | {
      event: 'restart'
      release: number
      kind: 'phased' | 'hot' | 'full' | 'start'
      /** The release whose Puma config, gems and environment the master now has (phased keeps the old). */
      configRelease: number
      /** The release the master was started from (start/full); a pruned master keeps using it. */
      bootRelease: number
      /** Puma's `started_at` after the restart, to tell whether someone restarted it by hand since. */
      startedAt: string | null
      /**
       * false when the restart was made but never verified (a recovery that did not come back in time):
       * what the master now runs is then uncertain, and prune keeps every release it may depend on.
       */
      verified?: false
      /** How long the restart took from the signal to verified, and over how many workers: sets later deadlines. */
      ms?: number
      workers?: number
      reasons: string[]
      time: string
      by: Actor
    }

/** Parses history text, skipping lines that are not deployer events (a torn last line after a crash). */
export function parseHistory(text: string): HistoryEvent[] {
  const events: HistoryEvent[] = []
  for (const line of text.split('\n')) {
    if (!line.trim()) continue
    try {
      const value = JSON.parse(line) as HistoryEvent
      if (value && typeof value === 'object' && typeof value.event === 'string') events.push(value)
    } catch {
      // A line cut short by a killed run: the events before it still stand.
    }
  }
  return events
}

export function serializeEvent(event: HistoryEvent): string {
  return JSON.stringify(event)
}
