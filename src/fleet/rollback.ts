import type { DeployConfig } from '../config/types.js'
import type { Actor } from '../release/history.js'
import { chooseRollbackTarget } from '../release/rollback-target.js'
import { deriveStates } from '../release/states.js'
import type { Reporter } from '../ui/events.js'
import { timedPhase } from '../ui/events.js'
import { settleAll } from './concurrency.js'
import { type TransportFactory, withLocks, withSessions } from './sessions.js'

export interface RollbackOptions {
  /** A release number to go to; default: the newest good release older than `current`. */
  to?: number
  dryRun: boolean
  reporter: Reporter
  actor: Actor
  now?: () => Date
  open?: TransportFactory
}

export interface RollbackOutcome {
  host: string
  from: number | null
  to: number
  done: boolean
}

/**
 * `deployer rollback`: under the lock, point `current` at the target on every host and record it.
 * The targets are chosen on every host before any host changes, so a host without a valid target
 * stops the rollback before anything moves.
 */
export async function runRollback(
  config: DeployConfig,
  options: RollbackOptions,
): Promise<RollbackOutcome[]> {
  const now = options.now ?? (() => new Date())
  return withSessions(
    config.hosts,
    async (sessions) => {
      const plan = async () => {
        const planned = await settleAll(sessions, config.concurrency, async (session) => {
          const state = await session.inspect()
          const infos = deriveStates(
            state.releases.map((release) => release.number),
            state.current,
            state.history,
          )
          const to = chooseRollbackTarget(session.name, infos, state.current, options.to)
          return { host: session.name, from: state.current, to, done: false }
        })
        const failure = planned.find((entry) => entry.status === 'rejected')
        if (failure) throw (failure as PromiseRejectedResult).reason
        return planned.map((entry) => (entry as PromiseFulfilledResult<RollbackOutcome>).value)
      }
      if (options.dryRun) return plan()
      return withLocks(
        sessions,
        options.actor,
        'rollback',
        options.reporter,
        async () => {
          const outcomes = await plan()
          const flipped = await settleAll(sessions, config.concurrency, async (session, index) => {
            const outcome = outcomes[index] as RollbackOutcome
            await timedPhase(
              options.reporter,
              session.name,
              'rollback',
              () => session.flip(outcome.to),
              () => `current -> releases/${outcome.to} (was ${outcome.from ?? 'none'})`,
            )
            outcome.done = true
            await session.record({
              event: 'rollback',
              from: outcome.from,
              to: outcome.to,
              time: now().toISOString(),
              by: options.actor,
            })
          })
          const failure = flipped.find((entry) => entry.status === 'rejected')
          if (failure) throw (failure as PromiseRejectedResult).reason
          return outcomes
        },
        now,
      )
    },
    options.open,
  )
}
