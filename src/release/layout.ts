import { posix } from 'node:path'

/**
 * Where everything lives under one host's `deploy_to`. Pure: it only joins paths, so every remote command
 * builder takes a layout and tests can assert exact paths.
 */
export interface Layout {
  deployTo: string
  releases: string
  current: string
  shared: string
  /** deployer's own bookkeeping: lock, history, sequence. */
  meta: string
  lock: string
  lockOwner: string
  history: string
  /** The highest release number ever handed out on this host, so numbers are never reused. */
  sequence: string
}

export function layoutFor(deployTo: string): Layout {
  const meta = posix.join(deployTo, '.deployer')
  return {
    deployTo,
    releases: posix.join(deployTo, 'releases'),
    current: posix.join(deployTo, 'current'),
    shared: posix.join(deployTo, 'shared'),
    meta,
    lock: posix.join(meta, 'lock'),
    lockOwner: posix.join(meta, 'lock', 'owner.json'),
    history: posix.join(meta, 'history.jsonl'),
    sequence: posix.join(meta, 'sequence'),
  }
}

/** `releases/N`: a published release. */
export function releasePath(layout: Layout, release: number): string {
  return posix.join(layout.releases, String(assertReleaseNumber(release)))
}

/** `releases/.N.partial`: a release being built; it becomes `releases/N` only when complete. */
export function partialPath(layout: Layout, release: number): string {
  return posix.join(layout.releases, `.${assertReleaseNumber(release)}.partial`)
}

/** `releases/.N.deleting`: a release on its way out, renamed first so a half-deleted tree never looks published. */
export function deletingPath(layout: Layout, release: number): string {
  return posix.join(layout.releases, `.${assertReleaseNumber(release)}.deleting`)
}

/** What `current` should point at: relative, so the whole `deploy_to` can be moved or mounted elsewhere. */
export function currentTarget(release: number): string {
  return `releases/${assertReleaseNumber(release)}`
}

/** Parses a `current` symlink target back into a release number; null when it points anywhere else. */
export function releaseFromTarget(target: string | undefined): number | null {
  if (!target) return null
  const match = /(?:^|\/)releases\/(\d+)\/?$/.exec(target.trim())
  return match ? Number(match[1]) : null
}

/**
 * Release numbers are positive integers that reach remote shells and `rm -rf`: anything else is a bug,
 * never a value to pass on.
 */
export function assertReleaseNumber(release: number): number {
  if (!Number.isSafeInteger(release) || release < 1) {
    throw new Error(`Invalid release number: ${String(release)}`)
  }
  return release
}

/**
 * True when `path` is strictly inside `root` (both absolute, normalised). Every delete goes through this,
 * so a path outside `deploy_to` is never touched.
 */
export function isInside(root: string, path: string): boolean {
  const normalRoot = posix.normalize(root).replace(/\/+$/, '')
  const normalPath = posix.normalize(path)
  if (!posix.isAbsolute(normalRoot) || normalRoot === '' || normalPath !== path.replace(/\/+$/, ''))
    return false
  return normalPath.startsWith(`${normalRoot}/`) && normalPath.length > normalRoot.length + 1
}
