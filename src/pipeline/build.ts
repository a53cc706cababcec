import { DEFAULT_INSTALL_TIMEOUT, type DeployConfig } from '../config/types.js'
import { DeployerError, ExitCode } from '../errors.js'
import { failpoint } from '../fault/failpoint.js'
import { formatBytes } from '../format.js'
import type { HostSession } from '../hosts/host-session.js'
import { changedLockfiles, decideInstallStep } from '../install/reuse.js'
import type { HostPlan } from '../plan/release-plan.js'
import type { Phase } from '../progress.js'
import { timedPhase } from '../progress.js'
import type { HostState } from '../release/host-state.js'
import { partialPath } from '../release/layout.js'
import type { RestartDecision } from '../restart/decide.js'
import type { Fingerprints } from '../restart/fingerprints.js'
import { PumaHost, type RestartPlan } from '../restart/restart-host.js'
import { type PreviousEntry, planDelta } from '../upload/delta-plan.js'
import type { LocalTree } from '../upload/local-tree.js'
import { countBytes } from '../upload/progress.js'
import type { GeneratedFile } from '../upload/tar-pack.js'
import { packTree } from '../upload/tar-pack.js'
import type { BuiltRelease, HostReleaseOutcome, ReleaseOptions } from './outcome.js'

/** What every host's build shares: the source, the release and the files deployer writes into it. */
export interface BuildRun {
  config: DeployConfig
  options: ReleaseOptions
  release: number
  tree: LocalTree
  fingerprints: Fingerprints
  generated: readonly GeneratedFile[]
}

/**
 * Builds release N on one host as `releases/.N.partial`, changing nothing that serves: prepare (stale
 * partials removed, the previous manifest read), upload (unchanged files hard-linked from
 * `plan.reuseFrom`), link shared paths, install, and probe (the restart decided for the built release,
 * so a Puma config that does not load stops the release here). Each step is timed into `outcome`.
 */
export async function buildOnHost(
  run: BuildRun,
  session: HostSession,
  state: HostState,
  plan: HostPlan,
  outcome: HostReleaseOutcome,
): Promise<BuiltRelease> {
  const { config, options, release, tree } = run
  const { reporter, signal } = options
  outcome.release = release
  const phase = async (name: Phase, step: () => Promise<unknown>, detail?: () => string) => {
    signal?.throwIfAborted()
    const { ms } = await timedPhase(reporter, session.name, name, step, detail)
    outcome.timings[name] = ms
  }
  // A repeat release costs what changed: unchanged files are hard-linked from the release before it,
  // whose manifest the prepare step reads in the same round trip.
  const from = plan.reuseFrom
  let delta = planDelta(tree.entries, null, null)
  let previousFiles: PreviousEntry[] | null = null
  await phase(
    'prepare',
    async () => {
      const prepared = await session.prepare(release, from)
      outcome.removedStale = prepared.removedStale
      if (prepared.stuck.length > 0)
        reporter.emit({
          kind: 'warn',
          host: session.name,
          message: `could not remove ${prepared.stuck.join(', ')} (files this SSH user may not delete, another user's perhaps): left in place; remove it as that user or root.`,
        })
      // A file edited on the server after publishing (a hotfix) is sent again, never linked: its
      // content is no longer what the manifest says, and linking would carry it into this release.
      const changed = new Set(prepared.modified)
      previousFiles = prepared.previous?.filter((entry) => !changed.has(entry.path)) ?? null
      if (prepared.modified.length > 0)
        reporter.emit({
          kind: 'warn',
          host: session.name,
          message: `release ${from} was modified after publishing (${prepared.modified.slice(0, 5).join(', ')}${prepared.modified.length > 5 ? `, ${prepared.modified.length - 5} more` : ''}): those files are uploaded, not reused.`,
        })
      delta = planDelta(tree.entries, previousFiles, from)
    },
    () =>
      outcome.removedStale.length > 0
        ? `removed stale ${outcome.removedStale.join(', ')}`
        : `releases/.${release}.partial`,
  )
  await phase(
    'upload',
    async () => {
      if (delta.from !== null) await session.linkFrom(delta.from, release, delta.link, signal)
      const archive = countBytes(
        packTree(tree.root, delta.upload, run.generated),
        (bytes) =>
          reporter.emit({
            kind: 'progress',
            host: session.name,
            phase: 'upload',
            detail: `${formatBytes(bytes)} of ~${formatBytes(delta.uploadBytes)}`,
          }),
        { pauseAfterFirstChunk: () => failpoint('upload', session.name, signal) },
      )
      await session.upload(release, archive, signal)
    },
    () =>
      delta.from === null
        ? `${formatBytes(delta.uploadBytes)}, ${delta.upload.length} entries`
        : `${formatBytes(delta.uploadBytes)} sent (${delta.upload.length} entries), ${delta.link.length} files reused from release ${delta.from}`,
  )
  outcome.upload = {
    from: delta.from,
    sentBytes: delta.uploadBytes,
    sentEntries: delta.upload.length,
    linkedFiles: delta.link.length,
  }
  await phase('link', () => session.linkShared(release, config.shared.dirs, config.shared.files))
  const install = config.install
  if (install) {
    await phase(
      'install',
      async () => {
        const vendorSeeded =
          install.vendor !== undefined && from !== null
            ? await session.seedVendor(from, release, install.vendor)
            : false
        outcome.upload!.vendorReused = vendorSeeded
        const step = decideInstallStep({
          check: install.check,
          vendorSeeded,
          changedLockfiles: changedLockfiles(tree.entries, previousFiles, install.lockfiles),
        })
        await failpoint('install', session.name, signal)
        signal?.throwIfAborted()
        const timeout = install.timeout ?? DEFAULT_INSTALL_TIMEOUT
        const checked =
          step.run === 'check' && (await session.check(release, install.check as string, { signal, timeout }))
        if (!checked)
          await session.install(release, install.command, {
            signal,
            shown: install.commandAsWritten,
            timeout,
          })
        outcome.install = checked
          ? { ran: 'check', reason: step.reason }
          : { ran: 'install', reason: step.run === 'check' ? 'install.check failed' : step.reason }
        const written = await session.sharedWrites(release)
        if (written.length > 0)
          throw sharedWriteError(
            session.name,
            checked
              ? (install.checkAsWritten ?? (install.check as string))
              : (install.commandAsWritten ?? install.command),
            written,
          )
      },
      () => {
        const check = install.checkAsWritten ?? install.check
        const ran = outcome.install?.ran === 'check' ? `\`${check}\` passed` : 'installed'
        const reuse = outcome.upload?.vendorReused ? `, ${install.vendor} reused from release ${from}` : ''
        return `${ran}${reuse} (${outcome.install?.reason})`
      },
    )
  }
  // Decided before anything is published: a config that does not load stops the release here.
  let restart: RestartPlan | null = null
  if (config.server) {
    const pumaHost = new PumaHost(session, config)
    const requested = options.restart ?? config.server.restart
    await phase(
      'probe',
      async () => {
        restart = await pumaHost.plan(
          state,
          partialPath(session.layout, release),
          run.fingerprints,
          requested,
        )
      },
      () => (restart ? `restart: ${describeDecision(restart.decision)}` : ''),
    )
    const decided = restart as RestartPlan | null
    if (decided) {
      outcome.restart = { ...decided.decision }
      for (const warning of decided.decision.warnings)
        reporter.emit({ kind: 'warn', host: session.name, message: warning })
    }
  }
  const decided = restart as RestartPlan | null
  const record = {
    fingerprints: decided?.fingerprints ?? run.fingerprints,
    restart: decided?.decision ?? null,
  }
  // Written with the publish step, in the same round trip, before the release becomes releases/N.
  return { plan: decided, fingerprintsFile: `${JSON.stringify(record, null, 2)}\n` }
}

/**
 * The install wrote into files it shares (hard links) with an older release: that release changed too.
 * Nothing is published; the message says which files, so the install can be made to replace them.
 */
function sharedWriteError(host: string, command: string, files: readonly string[]): DeployerError {
  return new DeployerError(
    `Host ${host}: the install (\`${command}\`) rewrote files in place that are hard links shared with an older release:\n  ${files.join('\n  ')}`,
    {
      exitCode: ExitCode.install,
      hint: 'Make the install write new files (write to a temporary name and rename) or remove them first; those files of the older release changed too.',
      host,
    },
  )
}

export function describeDecision(decision: RestartDecision): string {
  const signal = { phased: 'USR1', hot: 'USR2', full: 'stop/start', none: 'no restart', start: 'start' }[
    decision.kind
  ]
  return `${decision.kind} (${signal}) because ${decision.reasons.join('; ')}`
}
