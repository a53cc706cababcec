import type { HistoryEvent } from './history.js'

/**
 * `live`: what `current` points at. `previous`: published and good. `failed`: marked failed (never a
 * rollback target). `rolled-back`: left by a rollback; a valid `--to` target but skipped by a plain rollback.
 */
export type ReleaseState = 'live' | 'previous' | 'failed' | 'rolled-back'

export interface ReleaseInfo {
  number: number
  state: ReleaseState
}

/**
 * Derives each published release's state from `current` and the history. Manifests are written once
 * and never modified (published releases are immutable), so the state lives in the append-only history.
 */
export function deriveStates(
  releases: readonly number[],
  current: number | null,
  history: readonly HistoryEvent[],
): ReleaseInfo[] {
  const failed = new Set<number>()
  const rolledBack = new Set<number>()
  for (const event of history) {
    if (event.event === 'failed') failed.add(event.release)
    if (event.event !== 'rollback') continue
    // Only going back marks the release left behind; rolling forward leaves the older one good.
    if (event.from !== null && event.from > event.to) rolledBack.add(event.from)
    // Going live again through `rollback --to` clears the mark.
    rolledBack.delete(event.to)
  }
  return [...releases]
    .sort((a, b) => a - b)
    .map((number) => {
      let state: ReleaseState = 'previous'
      if (number === current) state = 'live'
      else if (failed.has(number)) state = 'failed'
      else if (rolledBack.has(number)) state = 'rolled-back'
      return { number, state }
    })
}

/** Good releases may go live again and count toward `keep`. */
export function isGood(state: ReleaseState): boolean {
  return state === 'live' || state === 'previous' || state === 'rolled-back'
}
