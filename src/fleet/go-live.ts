import { InterruptedError } from '../errors.js'
import { settleAll } from '../hosts/concurrency.js'
import type { HostSession } from '../hosts/host-session.js'
import { goLiveOnHost, type LiveRun } from '../pipeline/go-live.js'
import {
  abortReason,
  type BuiltRelease,
  type HostReleaseOutcome,
  summarize,
  throwIfInterrupted,
} from '../pipeline/outcome.js'
import { rollBackHostTo } from './rollback.js'
import { type RolloutStop, rolloutError, stoppedRollout, waveStop } from './rollout.js'

/**
 * Takes the built release live wave by wave (`waves`, host indices): a wave publishes, flips, restarts
 * and verifies its hosts together, and the next wave starts only when every host of this one is
 * verified. When a host fails, or the run is interrupted, no further wave starts (stoppedRollout says
 * what happens to each host) and the run's error is returned.
 */
export async function goLive(
  run: LiveRun,
  built: readonly BuiltRelease[],
  waves: readonly (readonly number[])[],
): Promise<Error | undefined> {
  const { config, options, sessions, outcomes } = run
  const { reporter, signal } = options
  throwIfInterrupted(signal)
  let stop: RolloutStop | null = null
  const reached = new Set<number>()
  for (const [number, wave] of waves.entries()) {
    if (signal?.aborted) {
      stop = { host: null, error: interrupted(signal) }
      break
    }
    if (waves.length > 1) {
      const names = wave.map((index) => sessions[index]?.name).join(', ')
      reporter.emit({
        kind: 'info',
        message: `${config.strategy} wave ${number + 1}/${waves.length}: ${names}`,
      })
    }
    for (const index of wave) reached.add(index)
    // Once started, a host is not interrupted half way: publish, flip and record run to the end, so
    // every host ends with `current` on a complete release (the old one or the new one).
    const settled = await settleAll(wave, config.concurrency, (index) =>
      goLiveOnHost(run, sessions[index] as HostSession, outcomes[index] as HostReleaseOutcome, built[index]),
    )
    settled.forEach((entry, position) => {
      if (entry.status === 'fulfilled') return
      const outcome = outcomes[wave[position] as number] as HostReleaseOutcome
      if (outcome.status !== 'released') outcome.status = 'failed'
      outcome.error = summarize(entry.reason)
    })
    stop = waveStop(wave, outcomes, signal?.aborted ? abortReason(signal) : null)
    if (stop) break
  }
  if (!stop) return undefined

  const after = stoppedRollout(outcomes, reached, stop, config.onFailure)
  for (const index of after.skip) {
    const outcome = outcomes[index] as HostReleaseOutcome
    outcome.status = 'skipped'
    outcome.note = after.skipNote
  }
  // Only `.N.partial` goes: on a host that got as far as publishing, that is already releases/N.
  const discard = new Set([...after.skip, ...after.discard])
  await settleAll(
    sessions.filter((_, index) => discard.has(index)),
    sessions.length,
    (session) => session.discardPartial(run.release),
  )
  for (const index of after.stay)
    (outcomes[index] as HostReleaseOutcome).note =
      `left on release ${run.release}: it had no release to go back to`
  await settleAll(after.rollBack, config.concurrency, (index) => rollBackLive(run, index, after.why))
  return rolloutError(run.release, stop, outcomes, config.onFailure)
}

function interrupted(signal: AbortSignal): InterruptedError {
  return new InterruptedError(abortReason(signal))
}

/** `on_failure: rollback`: a host already on the new release goes back to the one it had. */
async function rollBackLive(run: LiveRun, index: number, why: string): Promise<void> {
  const session = run.sessions[index] as HostSession
  const outcome = run.outcomes[index] as HostReleaseOutcome
  const previous = outcome.previous as number
  run.options.reporter.emit({
    kind: 'warn',
    host: session.name,
    message: `${why}: rolling back to release ${previous}`,
  })
  try {
    await rollBackHostTo(run.config, session, previous, { ...run.options, now: run.now })
    outcome.status = 'rolled-back'
    outcome.note = `rolled back to release ${previous} because ${why}`
  } catch (error) {
    outcome.error = summarize(error)
    outcome.note = `tried to roll back because ${why}, but could not; still on release ${outcome.release}`
  }
}
