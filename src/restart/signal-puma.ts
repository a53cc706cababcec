import { DeployerError, ExitCode } from '../errors.js'
import { pollUntil, RESTART_POLL_MS } from './poll.js'
import type { ServerProbe } from './probe-facts.js'
import * as puma from './puma-commands.js'
import type { PumaContext } from './puma-paths.js'
import { identityOf, type RestartPlan, restartDeadlineFor } from './restart-plan.js'
import { explainRefusedSignal } from './signal-refused.js'
import type { VerifiedKind } from './verify.js'

/*
 * Signalling Puma: USR1, USR2, a full restart (the user's command, or TERM and start) and a start, each
 * behind the wait that makes it safe: never on top of an unfinished restart, never a second Puma beside
 * one that still holds the port. Every wait goes through pollUntil with the host's clock.
 */

/** Sends the restart of `kind` (or starts Puma) as `plan` says; returns once it is sent, not verified. */
export async function triggerRestart(host: PumaContext, kind: VerifiedKind | 'none', plan: RestartPlan) {
  const { session, server, paths } = host
  if (kind === 'phased' || kind === 'hot') {
    const signal = kind === 'phased' ? 'USR1' : 'USR2'
    await session
      .run(`sending ${signal} to Puma`, puma.signalMasterCommand(paths.pidfile, signal), {
        hint: `Check ${paths.pidfile} and that Puma runs as the SSH user.`,
      })
      .catch((error) => explainRefusedSignal(session, paths.pidfile, signal, error))
  } else if (kind === 'start') {
    await startPuma(host, plan)
  } else if (kind === 'full') {
    if (server.fullRestart) {
      await session.run(
        'the full restart (server.full_restart)',
        puma.fullRestartCommand(session.layout.current, server.fullRestart),
      )
      return
    }
    const pid = plan.baseline.masterPid
    if (pid !== null) {
      await session
        .run('stopping Puma (TERM)', puma.signalMasterCommand(paths.pidfile, 'TERM'))
        .catch((error) => explainRefusedSignal(session, paths.pidfile, 'TERM', error))
      await waitForExit(host, pid, plan.workerShutdownTimeout + 15)
    }
    await startPuma(host, plan)
  }
}

async function waitForExit(host: PumaContext, pid: number, waitS: number): Promise<void> {
  const stopped = await pollUntil(
    { deadlineMs: waitS * 1000, intervalMs: RESTART_POLL_MS, clock: host.clock },
    async () =>
      (await host.session.ask(puma.isAliveCommand(pid))).code === 0
        ? { state: 'pending', detail: `pid ${pid} still alive` }
        : { state: 'done', value: undefined },
  )
  if (stopped.ok) return
  const name = host.session.name
  throw new DeployerError(`Host ${name}: Puma (pid ${pid}) did not stop within ${waitS}s of TERM.`, {
    exitCode: ExitCode.verify,
    hint: 'Look at Puma’s log; stop it by hand, then release again.',
    host: name,
  })
}

/** Starts Puma with server.start, once the ports it binds are free. */
export async function startPuma(host: PumaContext, plan?: RestartPlan): Promise<void> {
  const { session, server, paths } = host
  if (!server.start) {
    throw new DeployerError(`Host ${session.name}: Puma is not running and \`server.start\` is not set.`, {
      exitCode: ExitCode.config,
      hint: 'Set `server.start` (e.g. `bundle exec puma -C config/puma.rb`) or `server.full_restart` (e.g. `sudo systemctl restart shop`).',
      host: session.name,
    })
  }
  if (plan && plan.tcpPorts.length > 0) await waitForFreePorts(host, plan)
  await session.run('starting Puma', puma.startCommand(session.layout.current, server.start, paths.startLog))
}

/**
 * Never starts Puma while something holds its port: a master deployer lost sight of (a stale or
 * rewritten pidfile) would keep serving, and the new one would die on EADDRINUSE. Ports a stopping
 * master still holds are waited for.
 */
async function waitForFreePorts(host: PumaContext, plan: RestartPlan): Promise<void> {
  const free = await pollUntil(
    { deadlineMs: (plan.workerShutdownTimeout + 15) * 1000, intervalMs: RESTART_POLL_MS, clock: host.clock },
    async () => {
      const listening = (await host.probe()).listeningPorts
      const held = plan.tcpPorts.filter((port) => listening.includes(port))
      return held.length === 0
        ? { state: 'done', value: undefined }
        : { state: 'pending', detail: held.join(', ') }
    },
  )
  if (free.ok) return
  throw new DeployerError(
    `Host ${host.session.name}: port ${free.detail} is held by a process that is not the Puma behind ${host.paths.pidfile}; deployer will not start a second Puma.`,
    {
      exitCode: ExitCode.verify,
      hint: 'Find it with `ss -ltnp` on the host; stop it (or point server.pidfile at it), then release again.',
      host: host.session.name,
    },
  )
}

/**
 * A restart is never signalled on top of an unfinished phased restart (F28) or a master still
 * re-exec'ing: wait for it first, as long as such a restart may take on this host.
 */
export async function waitForIdle(
  host: PumaContext,
  plan: RestartPlan,
  signal?: AbortSignal,
): Promise<ServerProbe> {
  const deadlineMs = restartDeadlineFor(plan, 'phased', host.server.restartTimeout)
  const expected = identityOf(plan.baseline)
  const idle = await pollUntil<ServerProbe>(
    { deadlineMs, intervalMs: RESTART_POLL_MS, clock: host.clock, ...(signal ? { signal } : {}) },
    async () => {
      const probe = await host.probe([], expected)
      if (probe.master.settling)
        return { state: 'pending', detail: `Puma's master (pid ${probe.master.pid}) is still restarting` }
      const old = probe.stats?.oldWorkers ?? 0
      if (old > 0)
        return { state: 'pending', detail: `a phased restart is still in progress (${old} old workers)` }
      return { state: 'done', value: probe }
    },
  )
  if (idle.ok) return idle.value
  throw new DeployerError(
    `Host ${host.session.name}: ${idle.detail} after ${Math.round(deadlineMs / 1000)}s.`,
    {
      exitCode: ExitCode.verify,
      hint: 'Look at Puma’s log for workers that fail to boot; deployer will not signal on top of it.',
      host: host.session.name,
    },
  )
}
