import { DeployerError } from '../errors.js'
import type { Actor } from '../release/history.js'
import type { HostSession } from '../release/host-session.js'
import type { SignalRefusedError } from '../restart/signal-refused.js'
import type { Reporter } from '../ui/events.js'

/**
 * Puma refused the restart signal after `current` flipped to `release`: Puma never left what it ran, so
 * `current` goes back to `previous` without restarting anything (another signal would be refused too),
 * and the error says what is live: current on `previous`, Puma not restarted.
 * Returns the error and note for the host's outcome.
 */
export async function flipBackUnrestarted(
  session: HostSession,
  error: SignalRefusedError,
  release: number,
  previous: number,
  context: { actor: Actor; now: () => Date; reporter: Reporter },
): Promise<{ error: DeployerError; note: string }> {
  const { actor, now, reporter } = context
  reporter.emit({
    kind: 'warn',
    host: session.name,
    message: `Puma refused ${error.signal}; pointing current back at release ${previous}, which it still serves`,
  })
  await session.flip(previous)
  // Not marked failed: Puma's user, not the release, is at fault; it stays a `rollback --to` target.
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
