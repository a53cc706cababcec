import type { LocalTree, TreeEntry } from '../upload/local-tree.js'
import type { GeneratedFile } from '../upload/tar-pack.js'
import type { Actor } from './history.js'

/**
 * `.deployer/manifest.json` inside each release: what was uploaded (for delta uploads and audits) and
 * who made it. Written once with the release and never modified: a release's later state (previous,
 * failed, rolled back) lives in the host's history.
 */
export interface ReleaseManifest {
  schema: 1
  app: string
  release: number
  revision: string
  createdAt: string
  by: Actor
  totalBytes: number
  files: Omit<TreeEntry, 'mtime'>[]
}

export function buildManifest(
  app: string,
  release: number,
  revision: string,
  tree: LocalTree,
  by: Actor,
  now: Date,
): ReleaseManifest {
  return {
    schema: 1,
    app,
    release,
    revision,
    createdAt: now.toISOString(),
    by,
    totalBytes: tree.totalBytes,
    files: tree.entries.map(({ mtime: _mtime, ...entry }) => entry),
  }
}

/** The files deployer adds to every release: RELEASE, REVISION and the manifest. */
export function releaseFiles(manifest: ReleaseManifest): GeneratedFile[] {
  return [
    { path: 'RELEASE', content: `${manifest.release}\n` },
    { path: 'REVISION', content: `${manifest.revision}\n` },
    { path: '.deployer/manifest.json', content: `${JSON.stringify(manifest)}\n` },
  ]
}

/** Names deployer writes into a release; the same names in the source are replaced, never merged. */
export const GENERATED_NAMES = ['RELEASE', 'REVISION', '.deployer'] as const
