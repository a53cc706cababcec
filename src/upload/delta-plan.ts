import type { ReleaseManifest } from '../release/manifest.js'
import type { TreeEntry } from './local-tree.js'

/** One file of the previous release, as its manifest recorded it. */
export type PreviousEntry = ReleaseManifest['files'][number]

/** What a repeat release sends and what it reuses from the release before it. */
export interface DeltaPlan {
  /** The release whose files are reused; null when there is none (everything is uploaded). */
  from: number | null
  /** Files identical to the previous release's (content, mode): hard-linked on the host, never sent. */
  link: string[]
  /** What goes into the tar stream: every directory and symlink (cheap), and new or changed files. */
  upload: TreeEntry[]
  linkedBytes: number
  uploadBytes: number
}

/**
 * Compares the local tree with the previous release's manifest. Only a regular file with the same
 * path, content hash and mode is reused; anything else is sent, so a changed file is always a new
 * inode and the previous release is never written through. Removed files are simply not there.
 */
export function planDelta(
  entries: readonly TreeEntry[],
  previous: readonly PreviousEntry[] | null,
  from: number | null,
): DeltaPlan {
  const before = new Map((previous ?? []).map((entry) => [entry.path, entry]))
  const plan: DeltaPlan = {
    from: previous ? from : null,
    link: [],
    upload: [],
    linkedBytes: 0,
    uploadBytes: 0,
  }
  for (const entry of entries) {
    const old = before.get(entry.path)
    const same =
      entry.type === 'file' &&
      old?.type === 'file' &&
      old.sha256 === entry.sha256 &&
      old.mode === entry.mode &&
      old.size === entry.size
    if (same) {
      plan.link.push(entry.path)
      plan.linkedBytes += entry.size
    } else {
      plan.upload.push(entry)
      plan.uploadBytes += entry.size
    }
  }
  return plan
}
