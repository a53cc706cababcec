import type { DeployConfig } from '../config/types.js'
import { failpoint } from '../fault/failpoint.js'
import type { HostSession } from '../hosts/host-session.js'
import type { Reporter } from '../progress.js'
import { timedPhase } from '../progress.js'
import type { Actor } from '../release/history.js'
import { recordUnverifiedRestart, recoverRecorded } from '../restart/recorded-recovery.js'
import {
  PumaHost,
  type RecoveryOutcome,
  type RestartOutcome,
  type RestartPlan,
  VerifyError,
} from '../restart/restart-host.js'
import { restartEvent } from '../restart/running-release.js'

/** Who is restarting: a release going live, or `deployer rollback` (and a fleet release's rollback). */
export interface RestartContext {
  session: HostSession
  config: DeployConfig
  reporter: Reporter
  actor: Actor
  now: () => Date
  signal?: AbortSignal
}

/**
 * What the restart did: `restarted` (verified), or `reverted`: it did not verify, `current` went back to
 * `back` and Puma with it (`recovered`; its `unhealthy` set when `back` fails the health check too).
 */
export type RestartResult =
  | { reverted: false; done: RestartOutcome; ms: number }
  | { reverted: true; error: VerifyError; back: number; recovered: RecoveryOutcome }

/**
 * The one restart-or-revert step of every change of `current`: restarts Puma as planned for `target`
 * and verifies it, recording the restart in the history. When verification fails and there is a release
 * to go `back` to, the failed restart is recorded as unverified (prune then keeps what the master may
 * still use), `current` goes back, Puma is brought back onto `back` and verified, and that recovery is
 * recorded too. A release (`after: 'release'`) also marks `target` failed; a rollback target is left as it
 * was. Any other error (and a failure with nowhere to go back to) propagates with `current` on `target`.
 */
export async function restartOrRevert(
  context: RestartContext,
  plan: RestartPlan,
  step: {
    target: number
    back: number | null
    after: 'release' | 'rollback'
    /** Called once `current` is back on `back`, before the recovery (which may fail in turn). */
    flippedBack?: (error: VerifyError) => void
  },
): Promise<RestartResult> {
  const { session, reporter, actor, now } = context
  const { target, back, after } = step
  const pumaHost = new PumaHost(session, context.config)
  // Failpoints mark a release's own restart; a rollback made by the same run must not stop at them again.
  const failpoints = after === 'release'
  let done: RestartOutcome
  let ms: number
  try {
    ;({ value: done, ms } = await timedPhase(
      reporter,
      session.name,
      'restart',
      async () => {
        if (failpoints) await failpoint('restart', session.name, context.signal)
        return pumaHost.restart(plan, target, undefined, {
          afterSignal: failpoints ? () => failpoint('verify', session.name, context.signal) : undefined,
        })
      },
      (value) => `${value.kind}${value.fellBackToHot ? ' (Puma fell back to hot)' : ''}: ${value.detail}`,
    ))
  } catch (error) {
    if (!(error instanceof VerifyError) || back === null) throw error
    reporter.emit({
      kind: 'warn',
      host: session.name,
      message: `${error.detail}; rolling back to release ${back}`,
    })
    await recordUnverifiedRestart(session, target, plan.decision.kind, plan, error.detail, actor, now)
    await session.flip(back)
    step.flippedBack?.(error)
    if (after === 'release')
      await session.record({
        event: 'failed',
        release: target,
        reason: error.detail,
        time: now().toISOString(),
        by: actor,
      })
    await session.record({ event: 'rollback', from: target, to: back, time: now().toISOString(), by: actor })
    const what = after === 'release' ? `release ${target} failed` : `rollback to ${target} failed`
    const recovered = await timedPhase(
      reporter,
      session.name,
      'rollback',
      () => recoverRecorded(pumaHost, back, plan, what, actor, now),
      (value) => `current -> releases/${back}, ${value.kind}: ${value.detail}`,
    )
    if (recovered.value.unhealthy !== undefined)
      reporter.emit({
        kind: 'warn',
        host: session.name,
        message: `release ${back} fails the health check too: ${recovered.value.unhealthy}`,
      })
    const reason = after === 'release' ? `recovery after ${what}: ${error.detail}` : `recovery after ${what}`
    await session.record(restartEvent(back, recovered.value, plan.running, [reason], now(), actor))
    return { reverted: true, error, back, recovered: recovered.value }
  }
  if (done.kind !== 'none')
    await session.record(
      restartEvent(target, { ...done, kind: done.kind }, plan.running, plan.decision.reasons, now(), actor),
    )
  return { reverted: false, done, ms }
}
