import type { DeployConfig } from '../config/types.js'
import { DeployerError, ExitCode, InterruptedError } from '../errors.js'
import { failpoint } from '../fault/failpoint.js'
import { settleAll } from '../hosts/concurrency.js'
import type { HostSession } from '../hosts/host-session.js'
import { withLocks, withSessions } from '../hosts/sessions.js'
import { buildOnHost } from '../pipeline/build.js'
import {
  abortReason,
  type BuiltRelease,
  errorMessage,
  type HostReleaseOutcome,
  isAbort,
  newOutcome,
  type ReleaseOptions,
  type ReleaseResult,
  summarize,
  throwIfInterrupted,
} from '../pipeline/outcome.js'
import { planRelease, type ReleasePlan, waveIndices } from '../plan/release-plan.js'
import type { Phase, Reporter } from '../progress.js'
import { timedPhase } from '../progress.js'
import type { HostState } from '../release/host-state.js'
import { releasePath } from '../release/layout.js'
import { buildManifest, releaseFiles } from '../release/manifest.js'
import { nextReleaseNumber } from '../release/release-number.js'
import { deriveStates } from '../release/states.js'
import { attachSessionWarnings } from '../release/unwritten-history.js'
import type { RestartDecision } from '../restart/decide.js'
import { PumaHost } from '../restart/restart-host.js'
import { refuseOverlappingSource } from '../upload/source-overlap.js'
import { checkAgreement, DisagreementError } from './agreement.js'
import { goLive } from './go-live.js'
import { pruneHost } from './prune.js'
import { connectWhileReading, readSource, type SourceSnapshot } from './source.js'
import { planWaves } from './waves.js'

export type { HostReleaseOutcome, HostStatus, ReleaseOptions, ReleaseResult } from '../pipeline/outcome.js'

/**
 * `deployer release`: read every host under the lock, make the plan (release N, each host's steps,
 * waves, what prune removes), build release N on every host, and only when every host built it
 * completely, take it live wave by wave (go-live.ts) and prune. A failed or interrupted build discards
 * the partial releases and leaves `current` untouched on every host. `--dry-run` stops at the plan,
 * taking no lock, and predicts each host's restart from the source and the running master.
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
  const reading = readSource(config, reporter, options.local)
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
      const makePlan = (states: readonly HostState[], predicted?: (RestartDecision | null)[]) => {
        result.release = nextReleaseNumber(numberingReports(sessions, states))
        const plan = planRelease({
          config,
          release: result.release,
          revision: result.revision,
          hosts: sessions.map((session, index) => ({
            name: session.name,
            deployTo: session.layout.deployTo,
            state: states[index] as HostState,
          })),
          waves: planWaves(sessions.length, config),
          predicted,
        })
        result.plan = plan
        return plan
      }
      if (options.dryRun) {
        const firstLook = await inspectAll(sessions, outcomes, config.concurrency, reporter, 'connect')
        requireAgreement(sessions, firstLook, reporter)
        const source = await sourceRead()
        const predicted = await predictRestarts(config, options, sessions, firstLook, source)
        const plan = makePlan(firstLook, predicted)
        for (const outcome of outcomes) {
          outcome.status = 'planned'
          outcome.release = plan.release
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
          const plan = makePlan(states)
          const built = await buildEverywhere(config, options, sessions, outcomes, source, states, plan, now)
          const error = await goLive(
            { config, options, sessions, outcomes, release: plan.release, revision: plan.revision, now },
            built,
            waveIndices(
              plan,
              sessions.map((session) => session.name),
            ),
          )
          if (error) result.error = error as DeployerError
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

/**
 * A dry run's restart per host, predicted from the source's fingerprints against what the running master
 * loaded, with the current release's Puma config standing in for the new one (which is evaluated on the
 * host only once uploaded). Null where nothing runs yet or there is no server section.
 */
async function predictRestarts(
  config: DeployConfig,
  options: ReleaseOptions,
  sessions: readonly HostSession[],
  states: readonly HostState[],
  source: SourceSnapshot,
): Promise<(RestartDecision | null)[]> {
  const server = config.server
  if (!server) return sessions.map(() => null)
  const predictions = await settleAll(sessions, config.concurrency, async (session, index) => {
    const state = states[index] as HostState
    if (state.current === null) return null
    const pumaHost = new PumaHost(session, config)
    const current = releasePath(session.layout, state.current)
    const plan = await pumaHost.plan(state, current, source.fingerprints, options.restart ?? server.restart)
    return plan.decision
  })
  return predictions.map((entry) => (entry.status === 'fulfilled' ? entry.value : null))
}

/** Builds the release on every host (pipeline/build.ts); nothing is published unless every host built it. */
async function buildEverywhere(
  config: DeployConfig,
  options: ReleaseOptions,
  sessions: readonly HostSession[],
  outcomes: HostReleaseOutcome[],
  source: SourceSnapshot,
  states: readonly HostState[],
  plan: ReleasePlan,
  now: () => Date,
): Promise<BuiltRelease[]> {
  const { signal } = options
  const release = plan.release
  const manifest = buildManifest(config.app, release, plan.revision, source.tree, options.actor, now())
  const run = {
    config,
    options,
    release,
    tree: source.tree,
    fingerprints: source.fingerprints,
    generated: releaseFiles(manifest),
  }
  const results = await settleAll(sessions, config.concurrency, (session, index) =>
    buildOnHost(
      run,
      session,
      states[index] as HostState,
      plan.hosts[index] as ReleasePlan['hosts'][number],
      outcomes[index] as HostReleaseOutcome,
    ),
  )
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
