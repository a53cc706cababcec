import type { DeployConfig } from '../config/types.js'
import { DeployerError, ExitCode } from '../errors.js'
import { settleAll } from '../hosts/concurrency.js'
import type { HostSession } from '../hosts/host-session.js'
import { type TransportFactory, withLocks, withSessions } from '../hosts/sessions.js'
import { revertRollbackIfRefused } from '../pipeline/flip-back.js'
import { restartOrRevert } from '../pipeline/restart-or-revert.js'
import { chooseRollbackTarget } from '../plan/rollback-target.js'
import type { Reporter } from '../progress.js'
import { timedPhase } from '../progress.js'
import type { Actor } from '../release/history.js'
import { releasePath } from '../release/layout.js'
import { deriveStates } from '../release/states.js'
import type { RestartDecision } from '../restart/decide.js'
import type { Fingerprints } from '../restart/fingerprints.js'
import { PumaHost, type RestartPlan } from '../restart/restart-host.js'

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
  restart?: RestartDecision & { detail?: string }
}

/** A release published before fingerprints existed: every part unknown, so the decision plays safe. */
const UNKNOWN_FINGERPRINTS: Fingerprints = {
  pumaConfig: null,
  binds: null,
  ruby: null,
  puma: null,
  dependencies: null,
  environment: null,
  code: 'unknown',
}

/**
 * `deployer rollback`: under the lock, point `current` at the target on every host, restart Puma the
 * right way for that change (the same decision as a release) and verify it. When the target does not
 * come up, `current` goes back to where it was and Puma with it. Targets and restarts are decided on
 * every host before any host changes.
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
        const planned = await settleAll(sessions, config.concurrency, (session) =>
          planHost(config, session, options),
        )
        const failure = planned.find((entry) => entry.status === 'rejected')
        if (failure) throw (failure as PromiseRejectedResult).reason
        return planned.map(
          (entry) =>
            (entry as PromiseFulfilledResult<{ outcome: RollbackOutcome; plan: RestartPlan | null }>).value,
        )
      }
      if (options.dryRun) return (await plan()).map((entry) => entry.outcome)
      return withLocks(
        sessions,
        options.actor,
        'rollback',
        options.reporter,
        async () => {
          const planned = await plan()
          const flipped = await settleAll(sessions, config.concurrency, (session, index) =>
            rollBackHost(
              config,
              session,
              planned[index] as { outcome: RollbackOutcome; plan: RestartPlan | null },
              options,
              now,
            ),
          )
          const failure = flipped.find((entry) => entry.status === 'rejected')
          if (failure) throw (failure as PromiseRejectedResult).reason
          return planned.map((entry) => entry.outcome)
        },
        now,
      )
    },
    options.open,
  )
}

/**
 * Rolls one host back to release `to` under a lock the caller holds: plans the restart for going
 * back, flips, restarts and verifies, as `deployer rollback --to` does. Used by a fleet release whose
 * rollout failed on another host.
 */
export async function rollBackHostTo(
  config: DeployConfig,
  session: HostSession,
  to: number,
  options: Omit<RollbackOptions, 'to' | 'dryRun'>,
): Promise<RollbackOutcome> {
  const planned = await planHost(config, session, { ...options, to, dryRun: false })
  await rollBackHost(
    config,
    session,
    planned,
    { ...options, to, dryRun: false },
    options.now ?? (() => new Date()),
  )
  return planned.outcome
}

async function planHost(config: DeployConfig, session: HostSession, options: RollbackOptions) {
  const state = await session.inspect()
  const infos = deriveStates(
    state.releases.map((release) => release.number),
    state.current,
    state.history,
  )
  const to = chooseRollbackTarget(session.name, infos, state.current, options.to)
  const outcome: RollbackOutcome = { host: session.name, from: state.current, to, done: false }
  let plan: RestartPlan | null = null
  if (config.server) {
    const pumaHost = new PumaHost(session, config)
    const target = releasePath(session.layout, to)
    const fingerprints = (await pumaHost.readFingerprints(target, undefined)) ?? UNKNOWN_FINGERPRINTS
    plan = await pumaHost.plan(state, target, fingerprints, config.server.restart)
    outcome.restart = { ...plan.decision }
    for (const warning of plan.decision.warnings)
      options.reporter.emit({ kind: 'warn', host: session.name, message: warning })
  }
  return { outcome, plan }
}

async function rollBackHost(
  config: DeployConfig,
  session: HostSession,
  planned: { outcome: RollbackOutcome; plan: RestartPlan | null },
  options: RollbackOptions,
  now: () => Date,
): Promise<void> {
  const { outcome, plan } = planned
  const { reporter, actor } = options
  await timedPhase(
    reporter,
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
    by: actor,
  })
  if (!plan || !config.server) return
  const restarted = await restartOrRevert({ session, config, reporter, actor, now }, plan, {
    target: outcome.to,
    back: outcome.from,
    after: 'rollback',
  }).catch((error) => revertRollbackIfRefused(error, session, outcome, { reporter, actor, now }))
  if (!restarted.reverted) {
    if (outcome.restart) outcome.restart.detail = restarted.done.detail
    return
  }
  // The target does not serve: this host went back to where it was, so it keeps serving.
  const { error, back, recovered } = restarted
  outcome.done = false
  const health = recovered.unhealthy ? `, but fails the health check too: ${recovered.unhealthy}` : ''
  throw new DeployerError(
    `${error.message}\ncurrent was put back on release ${back}, which serves again${health}.`,
    {
      exitCode: ExitCode.verify,
      hint:
        error.stage === 'health'
          ? `Release ${outcome.to} fails the health check (its answer is above); pick another with \`deployer rollback --to N\`, or check health.url and health.expect.`
          : `Release ${outcome.to} does not boot any more (see the log above); pick another with \`deployer rollback --to N\`.`,
      host: session.name,
    },
  )
}
