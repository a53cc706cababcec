import type { Actor, HistoryEvent } from '../release/history.js'

export interface RunningReleases {
  /** The release whose Puma config, gems and environment the running master loaded; null when unknown. */
  configRelease: number | null
  /** The release the master was started from (what a pruned master keeps mapped and re-execs). */
  bootRelease: number | null
  /** How that was established, for the reasons shown to the user. */
  source: 'history' | 'process'
  /**
   * Every release the master may depend on, for prune: the two above, and after a restart that was
   * never verified also those of the restarts before it back to the last verified one, and the cwd's.
   */
  protect: number[]
}

/**
 * Which releases the running master depends on. deployer records every restart it makes; the record
 * is trusted while Puma's `started_at` still matches it (a phased restart keeps `started_at`, any hot
 * restart or start changes it). Otherwise someone restarted Puma by hand, and the release the master's
 * cwd lies in is the best evidence left.
 */
export function findRunningReleases(
  history: readonly HistoryEvent[],
  startedAt: string | null,
  masterCwdRelease: number | null,
): RunningReleases {
  const restarts = history.filter(
    (event): event is Extract<HistoryEvent, { event: 'restart' }> => event.event === 'restart',
  )
  const last = restarts.at(-1)
  if (last?.verified === false) {
    // The last restart (a recovery) never came back verified: the master may run its release, or the
    // one before, or whatever its cwd says. Keep them all until a verified restart settles it.
    const lastVerified = restarts.map((event) => event.verified !== false).lastIndexOf(true)
    const uncertain = restarts.slice(Math.max(0, lastVerified))
    const protect = [
      ...uncertain.flatMap((event) => [event.configRelease, event.bootRelease]),
      ...(masterCwdRelease === null ? [] : [masterCwdRelease]),
    ]
    return {
      configRelease: last.configRelease,
      bootRelease: last.bootRelease,
      source: 'history',
      protect: [...new Set(protect)].sort((a, b) => a - b),
    }
  }
  if (last && (startedAt === null || last.startedAt === startedAt)) {
    return {
      configRelease: last.configRelease,
      bootRelease: last.bootRelease,
      source: 'history',
      protect: [...new Set([last.configRelease, last.bootRelease])],
    }
  }
  return {
    configRelease: masterCwdRelease,
    bootRelease: masterCwdRelease,
    source: 'process',
    protect: masterCwdRelease === null ? [] : [masterCwdRelease],
  }
}

/**
 * The history line for a restart deployer made on `release`, so the next deploy knows what the master
 * loaded: a phased restart keeps the config release (USR1 re-reads nothing), any other restart takes
 * the new release's; only a start or full restart changes the boot release. A phased restart Puma
 * turned into a hot one counts as hot.
 */
export function restartEvent(
  release: number,
  done: {
    kind: 'phased' | 'hot' | 'full' | 'start'
    fellBackToHot: boolean
    startedAt: string | null
    verified?: false
    ms?: number
    workers?: number
  },
  running: RunningReleases,
  reasons: string[],
  time: Date,
  by: Actor,
): HistoryEvent {
  const kind = done.fellBackToHot ? 'hot' : done.kind
  return {
    event: 'restart',
    release,
    kind,
    configRelease: kind === 'phased' ? (running.configRelease ?? release) : release,
    bootRelease: kind === 'start' || kind === 'full' ? release : (running.bootRelease ?? release),
    startedAt: done.startedAt,
    reasons,
    time: time.toISOString(),
    by,
    ...(done.ms === undefined ? {} : { ms: Math.round(done.ms), workers: done.workers ?? 0 }),
    ...(done.verified === false ? { verified: false as const } : {}),
  }
}
