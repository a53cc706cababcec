import type { DeployConfig } from '../config/types.js'
import { failpoint } from '../fault/failpoint.js'
import type { HostSession } from '../hosts/host-session.js'
import { timedPhase } from '../progress.js'
import type { HistoryEvent } from '../release/history.js'
import { FINGERPRINTS_FILE, failedOnBothReleases } from '../restart/restart-host.js'
import { revertReleaseIfRefused } from './flip-back.js'
import {
  type BuiltRelease,
  type HostReleaseOutcome,
  type ReleaseOptions,
  summarize,
  throwIfInterrupted,
} from './outcome.js'
import { restartOrRevert } from './restart-or-revert.js'

/** A built release about to go live on every host: what every go-live step needs. */
export interface LiveRun {
  config: DeployConfig
  options: ReleaseOptions
  sessions: readonly HostSession[]
  /** One per session, updated as each host goes live. */
  outcomes: HostReleaseOutcome[]
  release: number
  revision: string
  now: () => Date
}

/** Publishes, flips, restarts and verifies one host; a failed verification rolls that host back. */
export async function goLiveOnHost(
  run: LiveRun,
  session: HostSession,
  outcome: HostReleaseOutcome,
  built: BuiltRelease | undefined,
): Promise<void> {
  const { options, release, now } = run
  const event: HistoryEvent = {
    event: 'release',
    release,
    previous: outcome.previous,
    revision: run.revision,
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
  if (!plan || !run.config.server) return
  const restarted = await restartOrRevert(
    {
      session,
      config: run.config,
      reporter: options.reporter,
      actor: options.actor,
      now,
      signal: options.signal,
    },
    plan,
    {
      target: release,
      back: outcome.previous,
      after: 'release',
      // From here `current` is back on the previous release, whatever the recovery then does.
      flippedBack: (error) => {
        outcome.status = 'rolled-back'
        outcome.error = summarize(error)
      },
    },
  ).catch((error) => revertReleaseIfRefused(error, session, outcome, release, { ...options, now }))
  if (!restarted) return
  if (!restarted.reverted) {
    const { kind: _kind, ...done } = restarted.done
    outcome.timings.restart = restarted.ms
    if (outcome.restart) outcome.restart.done = done
    return
  }
  const { error, back, recovered } = restarted
  if (recovered.unhealthy !== undefined)
    outcome.error = summarize(failedOnBothReleases(error, back, recovered.unhealthy))
  if (outcome.restart) outcome.restart.recovered = `${recovered.kind}: ${recovered.detail}`
}

/** Whether `current` points at `release` after all; false when the host cannot be read. */
async function flippedAnyway(session: HostSession, release: number): Promise<boolean> {
  try {
    return (await session.inspect()).current === release
  } catch {
    return false
  }
}
