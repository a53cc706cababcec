import { DeployerError } from '../errors.js'
import type { HostSession } from '../hosts/host-session.js'
import type { Reporter } from '../progress.js'
import type { Actor } from '../release/history.js'
import { SignalRefusedError } from '../restart/signal-refused.js'
import { type HostReleaseOutcome, summarize } from './outcome.js'

interface FlipBackContext {
  actor: Actor
  now: () => Date
  reporter: Reporter
}

/**
 * Puma refused the restart signal after `current` flipped to `release`: Puma never left what it ran, so
 * `current` goes back to `previous` without restarting anything (another signal would be refused too),
 * and the error says what is live: current on `previous`, Puma not restarted. `release` is not marked
 * failed: Puma's user, not the release, is at fault, and it stays a `rollback --to` target.
 */
export async function flipBackUnrestarted(
  session: HostSession,
  error: SignalRefusedError,
  release: number,
  previous: number,
  context: FlipBackContext,
): Promise<{ error: DeployerError; note: string }> {
  const { actor, now, reporter } = context
  reporter.emit({
    kind: 'warn',
    host: session.name,
    message: `Puma refused ${error.signal}; pointing current back at release ${previous}, which it still serves`,
  })
  await session.flip(previous)
  await session.record({
    event: 'rollback',
    from: release,
    to: previous,
    time: now().toISOString(),
    by: actor,
  })
  const live = `current points at releases/${previous} again, and Puma, never restarted, still serves what it served before.`
  return {
    error: new DeployerError(`${error.message}\n${live}`, {
      exitCode: error.exitCode,
      hint: error.hint,
      host: session.name,
    }),
    note: `rolled back to release ${previous} because Puma refused the restart signal (${error.signal}); Puma was not restarted`,
  }
}

/**
 * For a `.catch` on a release's restart: a refused signal flips the host back (flipBackUnrestarted) and
 * marks its outcome rolled back with what is live; resolves undefined then. Anything else (and a host
 * with nothing to go back to) is rethrown.
 */
export async function revertReleaseIfRefused(
  error: unknown,
  session: HostSession,
  outcome: HostReleaseOutcome,
  release: number,
  context: FlipBackContext,
): Promise<undefined> {
  if (!(error instanceof SignalRefusedError) || outcome.previous === null) throw error
  const back = await flipBackUnrestarted(session, error, release, outcome.previous, context)
  Object.assign(outcome, { status: 'rolled-back', error: summarize(back.error), note: back.note })
  return undefined
}

/**
 * For a `.catch` on a rollback's restart: a refused signal puts `current` back on `from` (where Puma
 * still is) and throws the error saying so; anything else is rethrown.
 */
export async function revertRollbackIfRefused(
  error: unknown,
  session: HostSession,
  outcome: { from: number | null; to: number; done: boolean },
  context: FlipBackContext,
): Promise<never> {
  if (!(error instanceof SignalRefusedError) || outcome.from === null) throw error
  outcome.done = false
  throw (await flipBackUnrestarted(session, error, outcome.to, outcome.from, context)).error
}
