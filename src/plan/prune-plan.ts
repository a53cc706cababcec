import type { Holder } from '../guard/live-dirs.js'
import type { ReleaseInfo } from '../release/states.js'

export type { Holder } from '../guard/live-dirs.js'

import { isGood } from '../release/states.js'

export type KeepReason = 'current' | 'within-keep' | 'in-use' | 'recent-failed' | 'unproven'

export interface PrunePlan {
  /** Releases to delete, oldest first. */
  remove: number[]
  kept: { number: number; reason: KeepReason; holders: Holder[] }[]
}

/**
 * Which releases may go. Keeps the newest `keep` good releases (current always among them), never
 * deletes `current` or a release a live process uses, and keeps failed releases newer than the oldest kept
 * good one (evidence for whoever investigates). Only good releases count toward `keep`. Only what is
 * proven unused goes: while `unseen` processes (that could not be inspected) run, every release that
 * would go is kept (`unproven`) with them as its holders.
 */
export function planPrune(
  releases: readonly ReleaseInfo[],
  current: number | null,
  keep: number,
  holders: ReadonlyMap<number, readonly Holder[]>,
  unseen: readonly Holder[] = [],
): PrunePlan {
  if (!Number.isSafeInteger(keep) || keep < 1) throw new Error(`keep must be a positive integer, got ${keep}`)
  const newestFirst = [...releases].sort((a, b) => b.number - a.number)
  const keptGood = new Set<number>()
  if (current !== null && releases.some((release) => release.number === current)) keptGood.add(current)
  for (const release of newestFirst) {
    if (keptGood.size >= keep) break
    if (isGood(release.state)) keptGood.add(release.number)
  }
  const oldestKept = Math.min(...keptGood, Number.POSITIVE_INFINITY)
  const plan: PrunePlan = { remove: [], kept: [] }
  for (const release of [...releases].sort((a, b) => a.number - b.number)) {
    const using = [...(holders.get(release.number) ?? [])]
    if (release.number === current)
      plan.kept.push({ number: release.number, reason: 'current', holders: using })
    else if (keptGood.has(release.number))
      plan.kept.push({ number: release.number, reason: 'within-keep', holders: using })
    else if (using.length > 0) plan.kept.push({ number: release.number, reason: 'in-use', holders: using })
    else if (release.state === 'failed' && release.number > oldestKept)
      plan.kept.push({ number: release.number, reason: 'recent-failed', holders: using })
    else if (unseen.length > 0)
      plan.kept.push({ number: release.number, reason: 'unproven', holders: [...unseen] })
    else plan.remove.push(release.number)
  }
  return plan
}
