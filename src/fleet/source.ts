import type { DeployConfig } from '../config/types.js'
import { formatBytes } from '../format.js'
import { firstFailure, settleAll } from '../hosts/concurrency.js'
import type { HostSession } from '../hosts/host-session.js'
import type { Reporter } from '../progress.js'
import { GENERATED_NAMES } from '../release/manifest.js'
import { type Fingerprints, fingerprintTree } from '../restart/fingerprints.js'
import { LocalTransport } from '../transport/local.js'
import type { Transport } from '../transport/transport.js'
import { HashCache } from '../upload/hash-cache.js'
import { type LocalTree, scanTree } from '../upload/local-tree.js'
import { readGitRevision } from '../upload/revision.js'

/** The local source, read once for every host. */
export interface SourceSnapshot {
  tree: LocalTree
  revision: string
  fingerprints: Fingerprints
}

/** Source entries deployer writes itself; the source's own copies are left out of the upload. */
const generatedExcludes = GENERATED_NAMES.map((name) => `/${name}`)

export async function readSource(
  config: DeployConfig,
  reporter: Reporter,
  local: Transport = new LocalTransport(),
): Promise<SourceSnapshot> {
  const [tree, gitRevision] = await Promise.all([
    HashCache.open(config.source).then((cache) =>
      scanTree(config.source, [...config.exclude, ...generatedExcludes], cache),
    ),
    readGitRevision(local, config.source),
  ])
  if (tree.skipped.length > 0) {
    reporter.emit({
      kind: 'warn',
      message: `left out ${tree.skipped.length} special files (sockets, FIFOs): ${tree.skipped.slice(0, 5).join(', ')}`,
    })
  }
  const revision = gitRevision ?? `content-${tree.contentHash.slice(0, 16)}`
  reporter.emit({
    kind: 'info',
    message: `source ${config.source}: ${tree.entries.length} entries, ${formatBytes(tree.totalBytes)}, revision ${revision}`,
  })
  const fingerprints = await fingerprintTree({
    tree,
    pumaConfig: config.server?.config ?? 'config/puma.rb',
    lockfiles: config.install?.lockfiles ?? ['Gemfile.lock'],
  })
  return { tree, revision, fingerprints }
}

/**
 * Waits for the source to be read while every host connects. A source that cannot be uploaded (missing,
 * a symlink out of it, nothing left after `exclude`) thus fails the run before any host changes: taking
 * the lock already creates `deploy_to/.deployer`, and `deploy_to` itself on a new host.
 */
export async function connectWhileReading<T>(
  sessions: readonly HostSession[],
  reading: Promise<T>,
): Promise<T> {
  const connecting = settleAll(sessions, sessions.length, (session) => session.connect())
  // On a failed read the sessions are closed at once (withSessions), cutting the handshakes short.
  const source = await reading
  const failure = firstFailure(await connecting)
  if (failure !== undefined) throw failure
  return source
}
