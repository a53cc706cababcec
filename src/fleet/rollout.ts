import { DeployerError, ExitCode, InterruptedError } from '../errors.js'
import { type HostReleaseOutcome, type HostStatus, toDeployerError } from '../pipeline/outcome.js'

/** What stopped a rollout: a host that failed to go live (its error), or an interrupt (host null). */
export interface RolloutStop {
  host: string | null
  error: DeployerError
}

type Seen = Pick<HostReleaseOutcome, 'host' | 'status' | 'error' | 'previous' | 'release'>

/**
 * Whether the rollout goes on after `wave` went live: null when every host of it is released without an
 * error; otherwise what stops it. An interrupt (`interrupted`, the signal's reason) that made a host fail
 * stops it as an interrupt, so the run exits 130 rather than blaming that host.
 */
export function waveStop(
  wave: readonly number[],
  outcomes: readonly Seen[],
  interrupted: string | null,
): RolloutStop | null {
  const failed = wave
    .map((index) => outcomes[index] as Seen)
    .find((outcome) => outcome.status !== 'released' || outcome.error)
  if (!failed) return null
  if (failed.error?.exitCode === ExitCode.interrupted && interrupted !== null)
    return { host: null, error: new InterruptedError(interrupted) }
  return { host: failed.host, error: toDeployerError(failed as HostReleaseOutcome) }
}

/** What a stopped rollout does to each host, by index. */
export interface StoppedRollout {
  /** Built, but their wave never started: marked skipped, their partial release discarded. */
  skip: number[]
  /** Failed before publishing: their partial release discarded. */
  discard: number[]
  /** Live on the new release and `on_failure: rollback`: back to the release they had. */
  rollBack: number[]
  /** Live on the new release with no release to go back to: left on it. */
  stay: number[]
  /** The note a skipped host gets, and the reason a rolled-back host gets. */
  skipNote: string
  why: string
}

/**
 * The rollout after `stop`, as a pure function of the hosts' outcomes: hosts not `reached` are skipped;
 * hosts that failed are cleaned; with `on_failure: rollback` every host already live goes back, so the
 * fleet ends on one release.
 */
export function stoppedRollout(
  outcomes: readonly Seen[],
  reached: ReadonlySet<number>,
  stop: RolloutStop,
  onFailure: 'rollback' | 'stop',
): StoppedRollout {
  const indices = outcomes.map((_, index) => index)
  const skip = indices.filter((index) => !reached.has(index))
  const live = indices.filter((index) => outcomes[index]?.status === 'released')
  return {
    skip,
    discard: indices.filter((index) => reached.has(index) && outcomes[index]?.status === 'failed'),
    rollBack:
      onFailure === 'rollback' ? live.filter((index) => (outcomes[index] as Seen).previous !== null) : [],
    stay: onFailure === 'rollback' ? live.filter((index) => (outcomes[index] as Seen).previous === null) : [],
    skipNote: stop.host
      ? `not started: the rollout stopped when ${stop.host} failed`
      : 'not started: the rollout was interrupted',
    why: stop.host ? `${stop.host} failed` : 'the rollout was interrupted',
  }
}

/**
 * The run's error once a rollout stopped: the failing host's own error when the fleet ended on one
 * release again, `partial` when some hosts are still on the new release.
 */
export function rolloutError(
  release: number,
  stop: RolloutStop,
  outcomes: readonly Seen[],
  onFailure: 'rollback' | 'stop',
): DeployerError {
  const names = (status: HostStatus) =>
    outcomes.filter((outcome) => outcome.status === status).map((outcome) => outcome.host)
  const stillLive = names('released')
  const parts = [
    stop.host
      ? `Release ${release} failed on ${stop.host}: ${stop.error.message}`
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
      host: stop.host ?? undefined,
    })
  }
  return new DeployerError(parts.join('\n'), {
    exitCode: stop.error.exitCode,
    hint: stop.error.hint,
    host: stop.host ?? undefined,
  })
}
