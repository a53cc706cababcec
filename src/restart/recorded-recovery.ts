import type { HostSession } from '../hosts/host-session.js'
import type { Actor } from '../release/history.js'
import type { RestartDecision } from './decide.js'
import type { PumaHost, RecoveryOutcome, RestartPlan } from './restart-host.js'
import { restartEvent } from './running-release.js'

/**
 * Puts a restart that was made but never verified into the history: what the master loaded is then
 * uncertain, and prune keeps every release it may depend on until a verified restart settles it.
 */
export async function recordUnverifiedRestart(
  session: HostSession,
  release: number,
  kind: RestartDecision['kind'],
  plan: RestartPlan,
  why: string,
  actor: Actor,
  now: () => Date,
): Promise<void> {
  if (kind === 'none') return
  const attempt = { kind, fellBackToHot: false, startedAt: null, verified: false as const }
  await session.record(restartEvent(release, attempt, plan.running, [why], now(), actor))
}

/** pumaHost.recover, with a recovery that does not verify recorded as such before its error goes on. */
export async function recoverRecorded(
  pumaHost: PumaHost,
  back: number,
  plan: RestartPlan,
  after: string,
  actor: Actor,
  now: () => Date,
): Promise<RecoveryOutcome> {
  try {
    return await pumaHost.recover(back, plan)
  } catch (error) {
    const tried = pumaHost.lastRecovery
    if (tried) {
      const why = `recovery after ${after} did not verify: ${error instanceof Error ? error.message : String(error)}`
      await recordUnverifiedRestart(pumaHost.session, back, tried.kind, plan, why, actor, now).catch(() => {})
    }
    throw error
  }
}
