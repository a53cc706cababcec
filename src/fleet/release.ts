import {
  DEFAULT_INSTALL_TIMEOUT,
  type DeployConfig,
  type RestartKind,
  type Strategy,
} from '../config/types.js'
import { DeployerError, ExitCode, type ExitCodeValue, InterruptedError } from '../errors.js'
import { failpoint } from '../fault/failpoint.js'
import { changedLockfiles, decideInstallStep } from '../install/reuse.js'
import type { Actor, HistoryEvent } from '../release/history.js'
import type { HostSession } from '../release/host-session.js'
import type { HostState } from '../release/host-state.js'
import { partialPath } from '../release/layout.js'
import { buildManifest, GENERATED_NAMES, releaseFiles } from '../release/manifest.js'
import { nextReleaseNumber } from '../release/release-number.js'
import { deriveStates } from '../release/states.js'
import { attachSessionWarnings } from '../release/unwritten-history.js'
import type { RestartDecision } from '../restart/decide.js'
import { type Fingerprints, fingerprintTree } from '../restart/fingerprints.js'
import { recordUnverifiedRestart, recoverRecorded } from '../restart/recorded-recovery.js'
import {
  FINGERPRINTS_FILE,
  failedOnBothReleases,
  PumaHost,
  type RestartOutcome,
  type RestartPlan,
  VerifyError,
} from '../restart/restart-host.js'
import { restartEvent } from '../restart/running-release.js'
import { SignalRefusedError } from '../restart/signal-refused.js'
import { LocalTransport } from '../transport/local.js'
import type { Transport } from '../transport/transport.js'
import type { Phase, Reporter } from '../ui/events.js'
import { timedPhase } from '../ui/events.js'
import { type PreviousEntry, planDelta } from '../upload/delta-plan.js'
import { HashCache } from '../upload/hash-cache.js'
import { type LocalTree, scanTree } from '../upload/local-tree.js'
import { countBytes } from '../upload/progress.js'
import { readGitRevision } from '../upload/revision.js'
import { refuseOverlappingSource } from '../upload/source-overlap.js'
import { packTree } from '../upload/tar-pack.js'
import { checkAgreement, DisagreementError } from './agreement.js'
import { firstFailure, settleAll } from './concurrency.js'
import { flipBackUnrestarted } from './flip-back.js'
import { pruneHost } from './prune.js'
import { rollBackHostTo } from './rollback.js'
import { type TransportFactory, withLocks, withSessions } from './sessions.js'
import { planWaves } from './waves.js'

export interface ReleaseOptions {
  dryRun: boolean
  reporter: Reporter
  actor: Actor
  /** Aborted on SIGINT/SIGTERM: in-flight steps stop, nothing unfinished is published. */
  signal?: AbortSignal
  now?: () => Date
  open?: TransportFactory
  /** Runs git for the source's revision. */
  local?: Transport
  /** `--restart`: overrides `server.restart`. */
  restart?: RestartKind
  /** `--strategy`, `--batch`, `--concurrency`, `--on-failure`: override deployer.yml for this run. */
  strategy?: Strategy
  batch?: number
  concurrency?: number
  onFailure?: 'rollback' | 'stop'
}

/** One host's release, built and waiting to be published. */
interface BuiltRelease {
  plan: RestartPlan | null
  /** releases/N/.deployer/fingerprints.json: the fingerprints and the restart decided for them. */
  fingerprintsFile: string
}

/**
 * released: live on the new release. failed: did not build or go live. discarded: built, then removed
 * because another host failed to build. skipped: built, but its wave never started. rolled-back: went
 * live, then back to its previous release (it failed verification, or `on_failure: rollback`).
 */
export type HostStatus = 'released' | 'failed' | 'discarded' | 'skipped' | 'planned' | 'rolled-back'

/** What happened on one host, for the rendered summary and `--json`. */
export interface HostReleaseOutcome {
  host: string
  deployTo: string
  status: HostStatus
  previous: number | null
  release: number | null
  /** Stale `.N.partial`/`.N.deleting` left by earlier killed runs and removed by this one. */
  removedStale: string[]
  pruned: number[]
  /** What the upload sent and what it reused from the previous release. */
  upload?: {
    from: number | null
    sentBytes: number
    sentEntries: number
    linkedFiles: number
    vendorReused?: boolean
  }
  /** How the release got its dependencies: the install command, or `install.check` over reused ones. */
  install?: { ran: 'install' | 'check'; reason: string }
  /** How Puma was restarted and why; absent without a `server:` section. */
  restart?: RestartDecision & { done?: Omit<RestartOutcome, 'kind'>; recovered?: string }
  error?: { message: string; hint?: string; exitCode: number }
  /** What went wrong without changing what is live (a history that could not be written). */
  warnings?: string[]
  /** What happened to this host because of another one (not started, rolled back with the fleet). */
  note?: string
  timings: Partial<Record<Phase, number>>
}

export interface ReleaseResult {
  app: string
  release: number
  revision: string
  dryRun: boolean
  files: number
  bytes: number
  hosts: HostReleaseOutcome[]
  /** Set when the release did not end as asked on every host; the command exits with its code. */
  error?: DeployerError
}

/** Source entries deployer writes itself; the source's own copies are left out of the upload. */
const generatedExcludes = GENERATED_NAMES.map((name) => `/${name}`)

/**
 * `deployer release`: build release N on every host, and only when every host built it completely,
 * publish it and flip `current` everywhere. A failed or interrupted build discards the partial releases
 * and leaves `current` untouched on every host.
 */
export async function runRelease(
  asConfigured: DeployConfig,
  options: ReleaseOptions,
): Promise<ReleaseResult> {
  const config: DeployConfig = {
    ...asConfigured,
    strategy: options.strategy ?? asConfigured.strategy,
    batch: options.batch ?? asConfigured.batch,
    concurrency: options.concurrency ?? asConfigured.concurrency,
    onFailure: options.onFailure ?? asConfigured.onFailure,
  }
  const now = options.now ?? (() => new Date())
  const { reporter } = options
  await refuseOverlappingSource(config.source, config.hosts)
  // Reading the source overlaps with connecting to the hosts: on a repeat release both take about as
  // long as the rest of the job.
  const reading = readSource(config, options)
  reading.catch(() => {})

  return withSessions(
    config.hosts,
    async (sessions) => {
      const outcomes = sessions.map((session) => newOutcome(session))
      const result: ReleaseResult = {
        app: config.app,
        release: 0,
        revision: '',
        dryRun: options.dryRun,
        files: 0,
        bytes: 0,
        hosts: outcomes,
      }
      const sourceRead = async (): Promise<SourceSnapshot> => {
        const source = await reading
        result.revision = source.revision
        result.files = source.tree.entries.length
        result.bytes = source.tree.totalBytes
        return source
      }
      if (options.dryRun) {
        const firstLook = await inspectAll(sessions, outcomes, config.concurrency, reporter, 'connect')
        requireAgreement(sessions, firstLook, reporter)
        await sourceRead()
        result.release = nextReleaseNumber(numberingReports(sessions, firstLook))
        for (const outcome of outcomes) {
          outcome.status = 'planned'
          outcome.release = result.release
        }
        return result
      }
      const source = await connectWhileReading(sessions, sourceRead())
      return withLocks(
        sessions,
        options.actor,
        'release',
        reporter,
        async () => {
          for (const session of sessions) await failpoint('lock', session.name, options.signal)
          throwIfInterrupted(options.signal)
          // Read under the lock: numbers and partial releases cannot change until it is released.
          const states = await inspectAll(sessions, outcomes, config.concurrency, reporter, 'inspect')
          requireAgreement(sessions, states, reporter)
          result.release = nextReleaseNumber(numberingReports(sessions, states))
          const built = await buildEverywhere(
            config,
            options,
            sessions,
            outcomes,
            source.tree,
            source.fingerprints,
            states,
            result,
            now,
          )
          await goLive(config, options, sessions, outcomes, built, result, now)
          await pruneEverywhere(config, options, sessions, outcomes, states, now)
          attachSessionWarnings(sessions, outcomes)
          return result
        },
        now,
        { readState: true },
      )
    },
    options.open,
  )
}

/**
 * Waits for the source to be read while every host connects. A source that cannot be uploaded (missing,
 * a symlink out of it, nothing left after `exclude`) thus fails the run before any host changes: taking
 * the lock already creates `deploy_to/.deployer`, and `deploy_to` itself on a new host.
 */
async function connectWhileReading<T>(sessions: readonly HostSession[], reading: Promise<T>): Promise<T> {
  const connecting = settleAll(sessions, sessions.length, (session) => session.connect())
  // On a failed read the sessions are closed at once (withSessions), cutting the handshakes short.
  const source = await reading
  const failure = firstFailure(await connecting)
  if (failure !== undefined) throw failure
  return source
}

/** The local source, read once for every host. */
interface SourceSnapshot {
  tree: LocalTree
  revision: string
  fingerprints: Fingerprints
}

async function readSource(config: DeployConfig, options: ReleaseOptions): Promise<SourceSnapshot> {
  const { reporter } = options
  const [tree, gitRevision] = await Promise.all([
    HashCache.open(config.source).then((cache) =>
      scanTree(config.source, [...config.exclude, ...generatedExcludes], cache),
    ),
    readGitRevision(options.local ?? new LocalTransport(), config.source),
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

function newOutcome(session: HostSession): HostReleaseOutcome {
  return {
    host: session.name,
    deployTo: session.layout.deployTo,
    status: 'failed',
    previous: null,
    release: null,
    removedStale: [],
    pruned: [],
    timings: {},
  }
}

async function inspectAll(
  sessions: readonly HostSession[],
  outcomes: HostReleaseOutcome[],
  concurrency: number,
  reporter: Reporter,
  phase: Phase,
): Promise<HostState[]> {
  const results = await settleAll(sessions, concurrency, async (session, index) => {
    // Under the lock, the state read with it (same round trip) is as fresh as a new look.
    const { value, ms } = await timedPhase(reporter, session.name, phase, async () =>
      phase === 'inspect' ? (session.takeLockedState() ?? (await session.inspect())) : session.inspect(),
    )
    const outcome = outcomes[index] as HostReleaseOutcome
    outcome.timings[phase] = ms
    outcome.previous = value.current
    if (value.currentIsNotLink) {
      throw new DeployerError(
        `Host ${session.name}: ${session.layout.current} exists but is not a symlink.`,
        {
          exitCode: ExitCode.failure,
          hint: 'Move it away (it is not a deployer release) and run the release again.',
          host: session.name,
        },
      )
    }
    return value
  })
  const failure = results.find((entry) => entry.status === 'rejected')
  if (failure) {
    results.forEach((entry, index) => {
      if (entry.status === 'rejected') (outcomes[index] as HostReleaseOutcome).error = summarize(entry.reason)
    })
    throw (failure as PromiseRejectedResult).reason
  }
  return results.map((entry) => (entry as PromiseFulfilledResult<HostState>).value)
}

/**
 * Stops before any change when the hosts disagree on what is deployed (checkAgreement). Releases that
 * failed or were rolled back do not count: a stopped rollout leaves them on some hosts only.
 */
function requireAgreement(
  sessions: readonly HostSession[],
  states: readonly HostState[],
  reporter: Reporter,
): void {
  const agreement = checkAgreement(
    states.map((state, index) => ({
      host: sessions[index]?.name ?? '',
      current: state.current,
      releases: deriveStates(
        state.releases.map((release) => release.number),
        state.current,
        state.history,
      )
        .filter((info) => info.state === 'live' || info.state === 'previous')
        .map((info) => info.number),
    })),
  )
  if (!agreement.agree) throw new DisagreementError(agreement.problems)
  if (agreement.fresh.length > 0 && agreement.fresh.length < sessions.length)
    reporter.emit({
      kind: 'info',
      message: `new to the fleet (nothing deployed yet): ${agreement.fresh.join(', ')}`,
    })
}

function numberingReports(sessions: readonly HostSession[], states: readonly HostState[]) {
  return states.map((state, index) => ({
    host: sessions[index]?.name ?? '',
    // A foreign `7` (a file, a symlink) is not a release, but release 7 could not be published over it.
    seen: [
      ...state.releases.map((release) => release.number),
      ...state.unfinished,
      ...state.foreign.filter((entry) => /^[1-9]\d*$/.test(entry.name)).map((entry) => Number(entry.name)),
    ],
    sequence: state.sequence,
  }))
}

async function buildEverywhere(
  config: DeployConfig,
  options: ReleaseOptions,
  sessions: readonly HostSession[],
  outcomes: HostReleaseOutcome[],
  tree: LocalTree,
  fingerprints: Fingerprints,
  states: readonly HostState[],
  result: ReleaseResult,
  now: () => Date,
): Promise<BuiltRelease[]> {
  const { reporter, signal } = options
  const release = result.release
  const manifest = buildManifest(config.app, release, result.revision, tree, options.actor, now())
  const generated = releaseFiles(manifest)
  const results = await settleAll(sessions, config.concurrency, async (session, index) => {
    const outcome = outcomes[index] as HostReleaseOutcome
    outcome.release = release
    const phase = async (name: Phase, step: () => Promise<unknown>, detail?: () => string) => {
      signal?.throwIfAborted()
      const { ms } = await timedPhase(reporter, session.name, name, step, detail)
      outcome.timings[name] = ms
    }
    // A repeat release costs what changed: unchanged files are hard-linked from the release before it,
    // whose manifest the prepare step reads in the same round trip.
    const state = states[index] as HostState
    const from = previousRelease(state)
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
          packTree(tree.root, delta.upload, generated),
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
            step.run === 'check' &&
            (await session.check(release, install.check as string, { signal, timeout }))
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
    let plan: RestartPlan | null = null
    const partial = partialPath(session.layout, release)
    if (config.server) {
      const pumaHost = new PumaHost(session, config)
      const requested = options.restart ?? config.server.restart
      await phase(
        'probe',
        async () => {
          plan = await pumaHost.plan(states[index] as HostState, partial, fingerprints, requested)
        },
        () => (plan ? `restart: ${describeDecision(plan.decision)}` : ''),
      )
      const decided = plan as RestartPlan | null
      if (decided) {
        outcome.restart = { ...decided.decision }
        for (const warning of decided.decision.warnings)
          reporter.emit({ kind: 'warn', host: session.name, message: warning })
      }
    }
    const decided = plan as RestartPlan | null
    const record = { fingerprints: decided?.fingerprints ?? fingerprints, restart: decided?.decision ?? null }
    // Written with the publish step, in the same round trip, before the release becomes releases/N.
    return { plan: decided, fingerprintsFile: `${JSON.stringify(record, null, 2)}\n` }
  })
  const failed = results.some((entry) => entry.status === 'rejected')
  if (!failed && !signal?.aborted)
    return results.map((entry) => (entry as PromiseFulfilledResult<BuiltRelease>).value)

  // Nothing is published unless every host built the release: discard every partial, keep `current`.
  await settleAll(sessions, sessions.length, (session) => session.discardPartial(release))
  results.forEach((entry, index) => {
    const outcome = outcomes[index] as HostReleaseOutcome
    outcome.status = 'discarded'
    if (entry.status === 'rejected' && !isAbort(entry.reason)) outcome.error = summarize(entry.reason)
  })
  if (signal?.aborted) throw new InterruptedError(abortReason(signal))
  const failure = results.find((entry) => entry.status === 'rejected') as PromiseRejectedResult
  throw failure.reason
}

/**
 * Takes the built release live wave by wave (planWaves): a wave publishes, flips, restarts and verifies
 * its hosts together, and the next wave starts only when every host of this one is verified. When a
 * host fails, or the run is interrupted, no further wave starts: the partial releases of the hosts not
 * reached are discarded and, with `on_failure: rollback`, the hosts already live go back to where they
 * were, so the fleet ends on one release.
 */
async function goLive(
  config: DeployConfig,
  options: ReleaseOptions,
  sessions: readonly HostSession[],
  outcomes: HostReleaseOutcome[],
  built: readonly BuiltRelease[],
  result: ReleaseResult,
  now: () => Date,
): Promise<void> {
  const { reporter, signal } = options
  const release = result.release
  const strategy = config.strategy
  const waves = planWaves(sessions.length, config)
  throwIfInterrupted(signal)
  let stoppedBy: { host: string | null; error: DeployerError } | null = null
  const reached = new Set<number>()
  for (const [number, wave] of waves.entries()) {
    if (signal?.aborted) {
      stoppedBy = { host: null, error: new InterruptedError(abortReason(signal)) }
      break
    }
    if (waves.length > 1) {
      const names = wave.map((index) => sessions[index]?.name).join(', ')
      reporter.emit({ kind: 'info', message: `${strategy} wave ${number + 1}/${waves.length}: ${names}` })
    }
    for (const index of wave) reached.add(index)
    // Once started, a host is not interrupted half way: publish, flip and record run to the end, so
    // every host ends with `current` on a complete release (the old one or the new one).
    const settled = await settleAll(wave, config.concurrency, (index) =>
      goLiveOnHost(
        config,
        options,
        sessions[index] as HostSession,
        outcomes[index] as HostReleaseOutcome,
        built[index],
        result,
        now,
      ),
    )
    settled.forEach((entry, position) => {
      if (entry.status === 'fulfilled') return
      const outcome = outcomes[wave[position] as number] as HostReleaseOutcome
      if (outcome.status !== 'released') outcome.status = 'failed'
      outcome.error = summarize(entry.reason)
    })
    const failed = wave
      .map((index) => outcomes[index] as HostReleaseOutcome)
      .find((outcome) => outcome.status !== 'released' || outcome.error)
    if (failed) {
      stoppedBy =
        failed.error?.exitCode === ExitCode.interrupted && signal?.aborted
          ? { host: null, error: new InterruptedError(abortReason(signal)) }
          : { host: failed.host, error: toDeployerError(failed) }
      break
    }
  }
  if (!stoppedBy) return

  const notReached = sessions.map((_, index) => index).filter((index) => !reached.has(index))
  for (const index of notReached) {
    const outcome = outcomes[index] as HostReleaseOutcome
    outcome.status = 'skipped'
    outcome.note = stoppedBy.host
      ? `not started: the rollout stopped when ${stoppedBy.host} failed`
      : 'not started: the rollout was interrupted'
  }
  // Only `.N.partial` goes: on a host that got as far as publishing, that is already releases/N.
  await settleAll(sessions, sessions.length, async (session, index) => {
    const status = (outcomes[index] as HostReleaseOutcome).status
    if (status === 'skipped' || status === 'failed') await session.discardPartial(release)
  })
  const live = outcomes.filter((outcome) => outcome.status === 'released')
  const onFailure = config.onFailure
  if (onFailure === 'rollback' && live.length > 0)
    await rollBackLive(config, options, sessions, outcomes, stoppedBy.host, now)
  result.error = rolloutError(release, stoppedBy, outcomes, onFailure)
}

/** Publishes, flips, restarts and verifies one host; a failed verification rolls that host back. */
async function goLiveOnHost(
  config: DeployConfig,
  options: ReleaseOptions,
  session: HostSession,
  outcome: HostReleaseOutcome,
  built: BuiltRelease | undefined,
  result: ReleaseResult,
  now: () => Date,
): Promise<void> {
  const release = result.release
  const event: HistoryEvent = {
    event: 'release',
    release,
    previous: outcome.previous,
    revision: result.revision,
    time: now().toISOString(),
    by: options.actor,
  }
  const files = [{ path: FINGERPRINTS_FILE, content: built?.fingerprintsFile ?? '' }]
  await failpoint('publish', session.name, options.signal)
  // The last moment an interrupt can stop this host cleanly: from the publish on it runs to the end.
  throwIfInterrupted(options.signal)
  try {
    const publish = await timedPhase(
      options.reporter,
      session.name,
      'publish',
      () => session.publishAndFlip(release, files, event),
      () => `releases/${release}, current -> releases/${release}`,
    )
    outcome.timings.publish = publish.ms
  } catch (error) {
    // The publish script runs to its end on the host even when the connection drops under it: look
    // again, so a host that did flip counts as live (and is rolled back with the others if need be).
    if (await flippedAnyway(session, release)) {
      outcome.status = 'released'
      outcome.note = `the connection failed during the publish, but current -> releases/${release}`
    }
    throw error
  }
  outcome.status = 'released'
  await failpoint('flip', session.name, options.signal)
  const plan = built?.plan ?? null
  if (plan && config.server) await restartOrRollBack(config, options, session, outcome, plan, release, now)
}

/** Whether `current` points at `release` after all; false when the host cannot be read. */
async function flippedAnyway(session: HostSession, release: number): Promise<boolean> {
  try {
    return (await session.inspect()).current === release
  } catch {
    return false
  }
}

/** `on_failure: rollback`: every host already on the new release goes back to the one it had. */
async function rollBackLive(
  config: DeployConfig,
  options: ReleaseOptions,
  sessions: readonly HostSession[],
  outcomes: HostReleaseOutcome[],
  failedHost: string | null,
  now: () => Date,
): Promise<void> {
  const why = failedHost ? `${failedHost} failed` : 'the rollout was interrupted'
  await settleAll(sessions, config.concurrency, async (session, index) => {
    const outcome = outcomes[index] as HostReleaseOutcome
    if (outcome.status !== 'released') return
    if (outcome.previous === null) {
      outcome.note = `left on release ${outcome.release}: it had no release to go back to`
      return
    }
    options.reporter.emit({
      kind: 'warn',
      host: session.name,
      message: `${why}: rolling back to release ${outcome.previous}`,
    })
    try {
      await rollBackHostTo(config, session, outcome.previous, { ...options, now })
      outcome.status = 'rolled-back'
      outcome.note = `rolled back to release ${outcome.previous} because ${why}`
    } catch (error) {
      outcome.error = summarize(error)
      outcome.note = `tried to roll back because ${why}, but could not; still on release ${outcome.release}`
    }
  })
}

function toDeployerError(outcome: HostReleaseOutcome): DeployerError {
  return new DeployerError(outcome.error?.message ?? `Host ${outcome.host} failed.`, {
    exitCode: (outcome.error?.exitCode ?? ExitCode.failure) as ExitCodeValue,
    hint: outcome.error?.hint,
    host: outcome.host,
  })
}

/**
 * The run's error once a rollout stopped: the failing host's own error when the fleet ended on one
 * release again, `partial` when some hosts are still on the new release.
 */
function rolloutError(
  release: number,
  stoppedBy: { host: string | null; error: DeployerError },
  outcomes: readonly HostReleaseOutcome[],
  onFailure: 'rollback' | 'stop',
): DeployerError {
  const names = (status: HostStatus) =>
    outcomes.filter((outcome) => outcome.status === status).map((outcome) => outcome.host)
  const stillLive = names('released')
  const parts = [
    stoppedBy.host
      ? `Release ${release} failed on ${stoppedBy.host}: ${stoppedBy.error.message}`
      : `Release ${release} was interrupted while going live.`,
    names('rolled-back').length > 0 ? `Rolled back: ${names('rolled-back').join(', ')}.` : '',
    names('skipped').length > 0 ? `Not started: ${names('skipped').join(', ')}.` : '',
    stillLive.length > 0 ? `Still on release ${release}: ${stillLive.join(', ')}.` : '',
  ].filter(Boolean)
  if (stillLive.length > 0) {
    return new DeployerError(parts.join('\n'), {
      exitCode: ExitCode.partial,
      hint:
        onFailure === 'stop'
          ? `on_failure is stop: bring the fleet back together with \`deployer rollback --host ${stillLive.join(' --host ')}\`, or fix the failing host and release again.`
          : `Roll them back by hand with \`deployer rollback --host ${stillLive.join(' --host ')}\`.`,
      host: stoppedBy.host ?? undefined,
    })
  }
  return new DeployerError(parts.join('\n'), {
    exitCode: stoppedBy.error.exitCode,
    hint: stoppedBy.error.hint,
    host: stoppedBy.host ?? undefined,
  })
}

async function pruneEverywhere(
  config: DeployConfig,
  options: ReleaseOptions,
  sessions: readonly HostSession[],
  outcomes: HostReleaseOutcome[],
  states: readonly HostState[],
  now: () => Date,
): Promise<void> {
  await settleAll(sessions, config.concurrency, async (session, index) => {
    const outcome = outcomes[index] as HostReleaseOutcome
    // A host that failed after publishing (its restart, or a dropped connection) is left as it is for
    // the user to look at; pruning it would only add a second failure or touch a host in doubt.
    if (outcome.status !== 'released' || outcome.release === null || outcome.error) return
    try {
      // Without a server nothing but this release changed the host since the locked look; with one,
      // the restart records matter (they protect Puma's boot release), so read the host again.
      const state = config.server
        ? await session.inspect()
        : withPublished(states[index] as HostState, outcome.release, now())
      const puma = config.server ? new PumaHost(session, config) : undefined
      const pruned = await pruneHost(session, state, config.keepReleases, {
        ...options,
        dryRun: false,
        now,
        puma,
      })
      outcome.pruned = pruned.removed
    } catch (error) {
      // The release itself succeeded; a prune that fails is reported and retried by the next run.
      options.reporter.emit({
        kind: 'warn',
        host: session.name,
        message: `pruning old releases failed: ${errorMessage(error)}`,
      })
    }
  })
}

function summarize(error: unknown): HostReleaseOutcome['error'] {
  if (error instanceof DeployerError)
    return { message: error.message, hint: error.hint, exitCode: error.exitCode }
  return { message: errorMessage(error), exitCode: ExitCode.failure }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

function isAbort(error: unknown): boolean {
  return error instanceof Error && (error.name === 'AbortError' || error instanceof InterruptedError)
}

/** An interrupt (SIGINT/SIGTERM) as the typed error the CLI turns into exit 130. */
function throwIfInterrupted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new InterruptedError(abortReason(signal))
}

function abortReason(signal: AbortSignal): string {
  return typeof signal.reason === 'string' ? signal.reason : 'a signal'
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`
}

/**
 * Restarts Puma as planned and verifies it. When verification fails, puts `current` back on the
 * previous release, brings Puma back onto it, verifies that too, and marks the new release failed.
 */
async function restartOrRollBack(
  config: DeployConfig,
  options: ReleaseOptions,
  session: HostSession,
  outcome: HostReleaseOutcome,
  plan: RestartPlan,
  release: number,
  now: () => Date,
): Promise<void> {
  const { reporter } = options
  const pumaHost = new PumaHost(session, config)
  try {
    const { value, ms } = await timedPhase(
      reporter,
      session.name,
      'restart',
      async () => {
        await failpoint('restart', session.name, options.signal)
        return pumaHost.restart(plan, release, undefined, {
          afterSignal: () => failpoint('verify', session.name, options.signal),
        })
      },
      (done) => `${done.kind}${done.fellBackToHot ? ' (Puma fell back to hot)' : ''}: ${done.detail}`,
    )
    outcome.timings.restart = ms
    if (outcome.restart)
      outcome.restart.done = {
        detail: value.detail,
        fellBackToHot: value.fellBackToHot,
        ms: value.ms,
        startedAt: value.startedAt,
        workers: value.workers,
      }
    if (value.kind !== 'none') {
      await session.record(
        restartEvent(
          release,
          { ...value, kind: value.kind },
          plan.running,
          plan.decision.reasons,
          now(),
          options.actor,
        ),
      )
    }
  } catch (error) {
    if (error instanceof SignalRefusedError && outcome.previous !== null) {
      const back = await flipBackUnrestarted(session, error, release, outcome.previous, { ...options, now })
      Object.assign(outcome, { status: 'rolled-back', error: summarize(back.error), note: back.note })
      return
    }
    if (!(error instanceof VerifyError) || outcome.previous === null) throw error
    outcome.error = summarize(error)
    outcome.status = 'rolled-back'
    const previous = outcome.previous
    reporter.emit({
      kind: 'warn',
      host: session.name,
      message: `${error.detail}; rolling back to release ${previous}`,
    })
    await recordUnverifiedRestart(
      session,
      release,
      plan.decision.kind,
      plan,
      error.detail,
      options.actor,
      now,
    )
    await session.flip(previous)
    await session.record({
      event: 'failed',
      release,
      reason: error.detail,
      time: now().toISOString(),
      by: options.actor,
    })
    await session.record({
      event: 'rollback',
      from: release,
      to: previous,
      time: now().toISOString(),
      by: options.actor,
    })
    const recovered = await timedPhase(
      reporter,
      session.name,
      'rollback',
      () => recoverRecorded(pumaHost, previous, plan, `release ${release} failed`, options.actor, now),
      (done) => `current -> releases/${previous}, ${done.kind}: ${done.detail}`,
    )
    const unhealthy = recovered.value.unhealthy
    if (unhealthy !== undefined) {
      reporter.emit({
        kind: 'warn',
        host: session.name,
        message: `release ${previous} fails the health check too: ${unhealthy}`,
      })
      outcome.error = summarize(failedOnBothReleases(error, previous, unhealthy))
    }
    const reasons = [`recovery after release ${release} failed: ${error.detail}`]
    await session.record(restartEvent(previous, recovered.value, plan.running, reasons, now(), options.actor))
    if (outcome.restart) outcome.restart.recovered = `${recovered.value.kind}: ${recovered.value.detail}`
  }
}

/** The host's state once `release` is published and current (the history gains no event prune reads). */
function withPublished(state: HostState, release: number, time: Date): HostState {
  return {
    ...state,
    current: release,
    currentTarget: `releases/${release}`,
    releases: [
      ...state.releases,
      { number: release, revision: '', mtime: Math.floor(time.getTime() / 1000) },
    ],
  }
}

/** The release a repeat release reuses files from: the live one, else the newest published. */
function previousRelease(state: HostState): number | null {
  if (state.current !== null && state.releases.some((release) => release.number === state.current))
    return state.current
  return state.releases.at(-1)?.number ?? null
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

function describeDecision(decision: RestartDecision): string {
  const signal = { phased: 'USR1', hot: 'USR2', full: 'stop/start', none: 'no restart', start: 'start' }[
    decision.kind
  ]
  return `${decision.kind} (${signal}) because ${decision.reasons.join('; ')}`
}
