import { posix } from 'node:path'
import type { DeployConfig, RestartKind, ServerSettings } from '../config/types.js'
import { DeployerError, ExitCode, lastLines } from '../errors.js'
import type { HostSession } from '../hosts/host-session.js'
import type { HostState } from '../release/host-state.js'
import { releasePath } from '../release/layout.js'
import type { RestartDecision } from './decide.js'
import type { Fingerprints } from './fingerprints.js'
import { type Clock, pollUntil, RESTART_POLL_MS, systemClock } from './poll.js'
import * as puma from './puma-commands.js'
import { PumaPaths } from './puma-paths.js'
import {
  baselineOf,
  configPlan,
  identityOf,
  planRestart,
  type RestartPlan,
  readFingerprints,
  restartDeadlineFor,
} from './restart-plan.js'
import { type MasterIdentity, type PumaConfigFacts, probeServer, type ServerProbe } from './server-probe.js'
import { triggerRestart, waitForIdle } from './signal-puma.js'
import {
  type Assessment,
  assessRestart,
  type Baseline,
  type Expectation,
  newObservation,
  snapshotOf,
  type VerifiedKind,
} from './verify.js'

/*
 * PumaHost: one host's Puma through a release: probe, plan (restart-plan.ts), signal (signal-puma.ts),
 * verify with a deadline and check health, and recover onto the previous release. Paths live in
 * puma-paths.ts; every wait goes through pollUntil (poll.ts) with the host's clock.
 */

export { pumaLogs } from './puma-paths.js'
export { baselineOf, FINGERPRINTS_FILE, type RestartPlan, tcpPortsOf } from './restart-plan.js'
export { snapshotOf } from './verify.js'

export interface RestartOutcome {
  kind: RestartDecision['kind']
  detail: string
  fellBackToHot: boolean
  ms: number
  /** Puma's started_at once verified (null without a control app). */
  startedAt: string | null
  /** Workers verified (0 in single mode). */
  workers: number
}

/** What a VerifyError failed on: Puma's own state after the signal, or the health check after that. */
export type VerifyStage = 'restart' | 'health'

const VERIFY_HINTS: Record<VerifyStage, string> = {
  restart: 'The previous release was restored. Fix the release (its boot error is above) and release again.',
  health:
    'The previous release was restored. Compare the answer above with health.url and health.expect, fix the release (or the check) and release again.',
}

/** Said instead when no log line could be shown: never point at a boot error that is not there. */
const NO_LOG_HINT =
  "The previous release was restored. Puma's log showed nothing about it: set `stdout_redirect` in the Puma config (or --redirect-stdout/--redirect-stderr in server.start), look at how Puma is run on the host (journalctl for systemd), fix the release and release again."

/** A restart that did not reach the verified state before the deadline, with what was seen. */
export class VerifyError extends DeployerError {
  readonly detail: string
  readonly log: string
  readonly stage: VerifyStage

  constructor(host: string, what: string, detail: string, log: string, stage: VerifyStage = 'restart') {
    super(
      `Host ${host}: ${what} did not complete: ${detail}.${log ? `\nLast lines of Puma's log:\n${log}` : ''}`,
      {
        exitCode: ExitCode.verify,
        hint: stage === 'restart' && !log ? NO_LOG_HINT : VERIFY_HINTS[stage],
        host,
      },
    )
    this.detail = detail
    this.log = log
    this.stage = stage
  }
}

/** A recovery onto the previous release: Puma verified on it, and what its health check said if it failed. */
export interface RecoveryOutcome extends Omit<RestartOutcome, 'kind'> {
  kind: VerifiedKind
  /** The health check's last answer when the release gone back to fails it too. */
  unhealthy?: string
}

/**
 * The error of a release whose health check failed, once the release gone back to failed the same
 * check: both failing points at the check or at something outside the releases (a database, the
 * network), and blaming the new release alone would send the user the wrong way.
 */
export function failedOnBothReleases(error: VerifyError, back: number, unhealthy: string): DeployerError {
  return new DeployerError(
    `${error.message}\nRelease ${back}, serving again since the rollback, fails the same health check: ${unhealthy}.`,
    {
      exitCode: ExitCode.verify,
      hint: 'Both releases fail the health check, so the check itself (health.url, health.expect) or a service the app needs is the likelier cause: compare the answers above with health.expect, fix it and release again.',
      host: error.host,
    },
  )
}

/** Paths and settings for restarting Puma on one host. */
export class PumaHost {
  readonly session: HostSession
  readonly server: ServerSettings
  readonly config: DeployConfig
  /** Where Puma's files are on this host. */
  readonly paths: PumaPaths
  /** What every wait of a restart polls with (poll.ts). */
  readonly clock: Clock

  constructor(session: HostSession, config: DeployConfig, clock: Clock = systemClock) {
    if (!config.server) throw new Error('PumaHost needs a server section')
    this.session = session
    this.server = config.server
    this.config = config
    this.paths = new PumaPaths(session.layout, config.server)
    this.clock = clock
  }

  /**
   * Reads the running server and the given releases' Puma configs in one round trip. With `expectMaster`
   * the master seen before a signal is recognised by pid and start time while it re-execs.
   */
  probe(configDirs: readonly string[] = [], expectMaster?: MasterIdentity): Promise<ServerProbe> {
    return probeServer(
      (command, stdin) => this.session.run('reading the Puma server', command, { stdin }),
      {
        deployTo: this.session.layout.deployTo,
        pidfile: this.paths.pidfile,
        controlUrl: this.paths.controlUrl,
        configs: configDirs.map((dir) => ({ dir, file: this.server.config })),
        ...(expectMaster ? { expectMaster } : {}),
      },
      this.server.controlToken,
    )
  }

  /**
   * Decides how to restart for `next` (being built in `newDir`), from the running server's facts and
   * the fingerprints of the release the master really loaded (restart-plan.ts).
   */
  plan(state: HostState, newDir: string, next: Fingerprints, requested: RestartKind): Promise<RestartPlan> {
    return planRestart(this, state, newDir, next, requested)
  }

  /** The fingerprints a release was published with; null when it has none. */
  readFingerprints(dir: string, config: PumaConfigFacts | undefined): Promise<Fingerprints | null> {
    return readFingerprints(this, dir, config)
  }

  /**
   * Restarts Puma as planned and verifies it with a deadline, then checks the health URL. Throws a
   * VerifyError with what was seen (and the log's last lines) when it does not complete.
   */
  async restart(
    plan: RestartPlan,
    release: number,
    signal?: AbortSignal,
    hooks: { afterSignal?: () => Promise<void> } = {},
  ): Promise<RestartOutcome> {
    const kind = plan.decision.kind
    if (kind === 'none') {
      return {
        kind,
        detail: 'not restarted (--restart none)',
        fellBackToHot: false,
        ms: 0,
        startedAt: null,
        workers: plan.workers,
      }
    }
    const releaseDir = await this.realPath(releasePath(this.session.layout, release))
    // The baseline is read right before the signal: the stats to compare with are the ones it acts on.
    const baseline = baselineOf(await waitForIdle(this, plan, signal))
    const started = this.clock.now()
    await triggerRestart(this, kind, { ...plan, baseline })
    await hooks.afterSignal?.()
    const expectation: Expectation = {
      kind: kind as VerifiedKind,
      releasePath: releaseDir,
      workers: plan.workers,
    }
    return this.verifyServing(expectation, plan, baseline, release, started, signal)
  }

  /**
   * Brings Puma back onto `release` after a failed restart: USR1 while old workers still serve
   * (they do after a failed phased restart, F13), USR2 while a master lives, start otherwise. Throws
   * when Puma does not come back; a health check that fails on `release` too is reported in
   * `unhealthy` instead, since Puma did restart onto it and that restart must be recorded.
   */
  async recover(release: number, plan: RestartPlan, signal?: AbortSignal): Promise<RecoveryOutcome> {
    const started = this.clock.now()
    const restored = releasePath(this.session.layout, release)
    // A failed hot restart may leave the master re-exec'ing: wait until it is Puma again or gone, so
    // that a live master is signalled, never started over (a second Puma cannot bind its port).
    const probe = await this.settledProbe(
      identityOf(plan.baseline),
      this.deadline(plan, 'hot'),
      [restored],
      signal,
    )
    const releaseDir = await this.realPath(restored)
    // Verified against the restored release's own config (its workers, its log), not the failed one's.
    const restoredPlan: RestartPlan = {
      ...plan,
      ...configPlan(probe.configs[0]),
      baseline: baselineOf(probe),
    }
    const alive = probe.master.running
    const canPhase = alive && probe.workers.length > 0 && plan.decision.kind === 'phased'
    const kind: VerifiedKind = !alive ? 'start' : canPhase ? 'phased' : 'hot'
    this.lastRecovery = { kind, workers: restoredPlan.workers }
    await triggerRestart(this, kind, restoredPlan)
    const expectation: Expectation = { kind, releasePath: releaseDir, workers: restoredPlan.workers }
    return this.verifyServing(expectation, restoredPlan, restoredPlan.baseline, release, started, signal, {
      reportUnhealthy: true,
    })
  }

  /** What the last `recover` tried, for the history line of a recovery that did not verify. */
  lastRecovery: { kind: VerifiedKind; workers: number } | null = null

  /**
   * Probes until the master behind the pidfile is either a running Puma or gone. A master that is
   * re-exec'ing (same pid and start time as before the signal, no proctitle yet) is waited for.
   */
  async settledProbe(
    expected: MasterIdentity | undefined,
    deadlineMs: number,
    configDirs: readonly string[],
    signal?: AbortSignal,
  ): Promise<ServerProbe> {
    const settled = await pollUntil<ServerProbe>(
      { deadlineMs, intervalMs: RESTART_POLL_MS, clock: this.clock, ...(signal ? { signal } : {}) },
      async () => {
        const probe = await this.probe(configDirs, expected)
        return probe.master.settling
          ? { state: 'pending', detail: `Puma's master (pid ${probe.master.pid}) is still restarting` }
          : { state: 'done', value: probe }
      },
    )
    if (settled.ok) return settled.value
    throw new DeployerError(
      `Host ${this.session.name}: ${settled.detail} after ${Math.round(deadlineMs / 1000)}s; deployer will not start a second Puma beside it.`,
      {
        exitCode: ExitCode.verify,
        hint: "Look at Puma's log; once the master is up or stopped, run `deployer rollback` or release again.",
        host: this.session.name,
      },
    )
  }

  /** Verifies the restart, then the health URL, and reports what was seen. */
  private async verifyServing(
    expectation: Expectation,
    plan: RestartPlan,
    baseline: Baseline,
    release: number,
    started: number,
    signal?: AbortSignal,
    options: { reportUnhealthy?: boolean } = {},
  ): Promise<RecoveryOutcome> {
    const { assessment, probe } = await this.verify(expectation, plan, baseline, signal)
    const unhealthy = await this.checkHealth(release, plan, signal).then(
      () => undefined,
      (error: unknown) => {
        if (options.reportUnhealthy && error instanceof VerifyError && error.stage === 'health')
          return error.detail
        throw error
      },
    )
    return {
      kind: expectation.kind,
      detail: assessment.detail,
      fellBackToHot: assessment.fellBackToHot,
      ms: this.clock.now() - started,
      startedAt: probe.stats?.startedAt ?? null,
      workers: expectation.workers,
      ...(unhealthy === undefined ? {} : { unhealthy }),
    }
  }

  /** The last lines of Puma's logs, for failure reports. */
  async logTail(plan: RestartPlan | null, lines = 15): Promise<string> {
    const logs = this.paths.logs(plan?.pumaLog ?? null)
    const result = await this.session.ask(puma.tailLogCommand(logs, lines)).catch(() => null)
    return result ? lastLines(result.stdout, lines * logs.length + logs.length) : ''
  }

  private async verify(
    expectation: Expectation,
    plan: RestartPlan,
    baseline: Baseline,
    signal?: AbortSignal,
  ): Promise<{ assessment: Assessment; probe: ServerProbe }> {
    const deadlineMs = this.deadline(plan, expectation.kind)
    const observation = newObservation()
    const expected = identityOf(baseline)
    const verified = await pollUntil<{ assessment: Assessment; probe: ServerProbe }>(
      { deadlineMs, intervalMs: RESTART_POLL_MS, clock: this.clock, ...(signal ? { signal } : {}) },
      async () => {
        const probe = await this.probe([], expected).catch((error: unknown) =>
          error instanceof Error ? error.message : String(error),
        )
        // A probe that failed (a dropped answer, a busy host) is one more look, not a verdict.
        if (typeof probe === 'string') return { state: 'pending', detail: probe }
        const assessment = assessRestart(expectation, baseline, snapshotOf(probe), observation)
        if (assessment.state === 'done') return { state: 'done', value: { assessment, probe } }
        return { state: assessment.state, detail: assessment.detail }
      },
    )
    if (verified.ok) return verified.value
    const detail = verified.timedOut
      ? `${verified.detail} (deadline of ${Math.round(deadlineMs / 1000)}s passed)`
      : verified.detail
    throw new VerifyError(
      this.session.name,
      `the ${expectation.kind} restart`,
      detail,
      await this.logTail(plan),
    )
  }

  private async checkHealth(release: number, plan: RestartPlan, signal?: AbortSignal): Promise<void> {
    const health = this.config.health
    if (!health) return
    const revision = (
      await this.session.ask(
        puma.readFileCommand(posix.join(releasePath(this.session.layout, release), 'REVISION')),
      )
    ).stdout.trim()
    const expected = health.expect
      ?.replaceAll('{release}', String(release))
      .replaceAll('{revision}', revision)
    const healthy = await pollUntil(
      {
        deadlineMs: health.timeout * 1000,
        intervalMs: RESTART_POLL_MS * 2,
        clock: this.clock,
        ...(signal ? { signal } : {}),
      },
      async () => {
        const output = await this.session.run(
          'the health check',
          puma.healthCheckCommand(health.url, Math.min(10, health.timeout)),
        )
        const { status, body } = puma.parseHealth(output)
        if (status >= 200 && status < 400 && (!expected || body.includes(expected)))
          return { state: 'done', value: undefined }
        const detail =
          status === 0
            ? body
            : `HTTP ${status}${expected ? `, body without "${expected}"` : ''}: ${body.slice(0, 200)}`
        return { state: 'pending', detail }
      },
    )
    if (healthy.ok) return
    throw new VerifyError(
      this.session.name,
      `the health check of ${health.urlAsWritten ?? health.url}`,
      healthy.detail,
      await this.logTail(plan),
      'health',
    )
  }

  /** server.restart_timeout, else derived from the last verified restart on this host (deadline.ts). */
  private deadline(plan: RestartPlan, kind: VerifiedKind): number {
    return restartDeadlineFor(plan, kind, this.server.restartTimeout)
  }

  private async realPath(path: string): Promise<string> {
    return (await this.session.run('resolving the release path', puma.realPathCommand(path))).trim()
  }
}
