import type { PreviousEntry } from '../upload/delta-plan.js'
import type { TreeEntry } from '../upload/local-tree.js'

/** How a release gets its dependencies, decided before anything runs on the host. */
export type InstallStep =
  /** Run `install.command` (over a vendor dir seeded from the previous release when there is one). */
  | { run: 'install'; reason: string }
  /** Run `install.check`; run `install.command` only when the check fails. */
  | { run: 'check'; reason: string }

/**
 * The lockfiles whose content differs from the previous release's (added and removed ones count):
 * the vendored dependencies of that release fit the new one only when this is empty.
 */
export function changedLockfiles(
  entries: readonly TreeEntry[],
  previous: readonly PreviousEntry[] | null,
  lockfiles: readonly string[],
): string[] {
  if (previous === null) return [...lockfiles]
  const now = new Map(entries.map((entry) => [entry.path, entry]))
  const before = new Map(previous.map((entry) => [entry.path, entry]))
  return lockfiles.filter((path) => {
    const a = now.get(path)
    const b = before.get(path)
    if (!a && !b) return false
    return !a || !b || a.type !== 'file' || b.type !== 'file' || a.sha256 !== b.sha256
  })
}

/**
 * Checking instead of installing is only sound over the previous release's own vendor dir, and only
 * when nothing the install resolves from has changed.
 */
export function decideInstallStep(input: {
  check?: string
  vendorSeeded: boolean
  changedLockfiles: readonly string[]
}): InstallStep {
  if (!input.check) return { run: 'install', reason: 'no install.check configured' }
  if (!input.vendorSeeded) return { run: 'install', reason: 'no vendor dir to reuse' }
  if (input.changedLockfiles.length > 0)
    return { run: 'install', reason: `${input.changedLockfiles.join(', ')} changed` }
  return { run: 'check', reason: 'lockfiles unchanged' }
}
