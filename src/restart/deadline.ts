import type { HistoryEvent } from '../release/history.js'

/**
 * How long deployer waits for Puma to reach the verified state. A fixed deadline is wrong both ways: a
 * Rails app on a busy machine needs 6–18 s per phased step, and a crash loop should not be waited on for
 * minutes. So the deadline follows what this host was seen to need (the last verified restart) unless
 * `server.restart_timeout` says otherwise.
 */

/** A verified restart of the past, from the history: its kind, how long it took, over how many workers. */
export interface ObservedRestart {
  kind: 'phased' | 'hot' | 'full' | 'start'
  ms: number
  workers: number
}

export interface DeadlineInputs {
  kind: 'phased' | 'hot' | 'full' | 'start'
  /** Workers the restart must bring up (0 in single mode). */
  workers: number
  /** Puma's worker_shutdown_timeout (seconds): a phased step may wait that long for an old worker to drain. */
  workerShutdownTimeout: number
  /**
   * Puma's worker_boot_timeout (seconds, 60 by default): Puma itself lets a worker boot that long before
   * it kills it, so a boot that slow is not yet a failure (a crash loop is caught long before).
   */
  workerBootTimeout: number
  /** `server.restart_timeout` in seconds, when set: it wins. */
  restartTimeout?: number
  observed: ObservedRestart | null
}

/** For the master itself: a start or a re-exec loads Ruby, Bundler and the config before any worker boots. */
export const MASTER_ALLOWANCE_MS = 30_000
/** How many times the observed boot a restart may take before it counts as failed. */
export const OBSERVED_FACTOR = 3

/**
 * The deadline in ms: `restartTimeout` when set. Otherwise the master's allowance plus one boot, where a
 * boot may take worker_boot_timeout (Puma's own limit) or three times the boot last observed on this
 * host, whichever is longer; a phased restart boots its workers one after another, each after the old
 * one drained.
 */
export function restartDeadlineMs(inputs: DeadlineInputs): number {
  if (inputs.restartTimeout !== undefined) return inputs.restartTimeout * 1000
  const boot = Math.max(inputs.workerBootTimeout * 1000, OBSERVED_FACTOR * bootMs(inputs.observed))
  if (inputs.kind !== 'phased') return MASTER_ALLOWANCE_MS + boot
  const steps = Math.max(1, inputs.workers)
  return MASTER_ALLOWANCE_MS + steps * (inputs.workerShutdownTimeout * 1000 + boot)
}

/** One boot as observed: a phased restart boots its workers one after another, the others all at once. */
function bootMs(observed: ObservedRestart | null): number {
  if (!observed || !Number.isFinite(observed.ms) || observed.ms <= 0) return 0
  return observed.kind === 'phased' ? observed.ms / Math.max(1, observed.workers) : observed.ms
}

/** The last verified restart that recorded its duration, if any. */
export function lastObservedRestart(history: readonly HistoryEvent[]): ObservedRestart | null {
  for (let index = history.length - 1; index >= 0; index--) {
    const event = history[index]
    if (event?.event !== 'restart' || event.verified === false || event.ms === undefined) continue
    return { kind: event.kind, ms: event.ms, workers: event.workers ?? 1 }
  }
  return null
}
