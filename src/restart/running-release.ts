import type { HistoryEvent } from '../release/history.js'

export interface RunningReleases {
  /** The release whose Puma config, gems and environment the running master loaded; null when unknown. */
  configRelease: number | null
  /** The release the master was started from (what a pruned master keeps mapped and re-execs). */
  bootRelease: number | null
  /** How that was established, for the reasons shown to the user. */
  source: 'history' | 'process'
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
  const last = [...history].reverse().find((event) => event.event === 'restart')
  if (last && last.event === 'restart' && (startedAt === null || last.startedAt === startedAt)) {
    return { configRelease: last.configRelease, bootRelease: last.bootRelease, source: 'history' }
  }
  return { configRelease: masterCwdRelease, bootRelease: masterCwdRelease, source: 'process' }
}
