import { posix } from 'node:path'
import type { DeployConfig, RestartKind, ServerSettings } from '../config/types.js'
import { DeployerError, ExitCode, lastLines } from '../errors.js'
import { releaseOf } from '../guard/live-dirs.js'
import type { HostSession } from '../release/host-session.js'
import type { HostState } from '../release/host-state.js'
import { releasePath } from '../release/layout.js'
import { quote } from '../transport/quote.js'
import { lastObservedRestart, type ObservedRestart, restartDeadlineMs } from './deadline.js'
import { decideRestart, type RestartDecision, type ServerFacts } from './decide.js'
import type { Fingerprints } from './fingerprints.js'
import { type Clock, pollUntil, systemClock } from './poll.js'
import { effectivePreload } from './preload.js'
import * as puma from './puma-commands.js'
import { findRunningReleases, type RunningReleases } from './running-release.js'
import { type MasterIdentity, type PumaConfigFacts, probeServer, type ServerProbe } from './server-probe.js'
import { explainRefusedSignal } from './signal-refused.js'
import {
  type Assessment,
  assessRestart,
  type Baseline,
  type Expectation,
  newObservation,
  type Snapshot,
  type VerifiedKind,
} from './verify.js'

/** What was decided for one host before the flip, and the facts it was decided on. */
export interface RestartPlan {
  decision: RestartDecision
  /** The new release's fingerprints, completed with the host's binds and environment hash. */
  fingerprints: Fingerprints
  baseline: Baseline
  running: RunningReleases
  /** Worker count the new config asks for (0 in single mode). */
  workers: number
  /** Puma's own log (stdout_redirect) when the config sets one. */
  pumaLog: string | null
  workerShutdownTimeout: number
  /** Puma's worker_boot_timeout (seconds): how long Puma itself lets a worker boot. */
  workerBootTimeout: number
  /** The TCP ports the new config binds: nothing else may hold them when deployer starts Puma. */
  tcpPorts: number[]
  /** The last verified restart on this host, which sets the verification deadline. */
  observed: ObservedRestart | null
}

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

/** Inside each release: its fingerprints and the restart decided for it (written before publishing). */
export const FINGERPRINTS_FILE = '.deployer/fingerprints.json'

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

const POLL_MS = 250

/** Paths and settings for restarting Puma on one host. */
export class PumaHost {
  readonly session: HostSession
  readonly server: ServerSettings
  readonly config: DeployConfig
  /** What every wait of a restart polls with (poll.ts). */
  readonly clock: Clock

  constructor(session: HostSession, config: DeployConfig, clock: Clock = systemClock) {
    if (!config.server) throw new Error('PumaHost needs a server section')
    this.session = session
    this.server = config.server
    this.config = config
    this.clock = clock
  }

  get pidfile(): string {
    return posix.isAbsolute(this.server.pidfile)
      ? this.server.pidfile
      : posix.join(this.session.layout.deployTo, this.server.pidfile)
  }

  /** Where deployer's start command writes Puma's output (boot errors happen before stdout_redirect). */
  get startLog(): string {
    return posix.join(this.session.layout.shared, 'log', 'puma.deployer.log')
  }

  /** Env files the process manager loads into the master (absolute paths). */
  get envFiles(): string[] {
    return this.server.envFiles.map((file) => this.hostFile(file))
  }

  /** Env files puma.rb loads itself (absolute paths). */
  get pumaEnvFiles(): string[] {
    return (this.server.pumaEnvFiles ?? []).map((file) => this.hostFile(file))
  }

  private hostFile(file: string): string {
    return posix.isAbsolute(file) ? file : posix.join(this.session.layout.deployTo, file)
  }

  /**
   * `unix://` with a relative path is relative to deploy_to, like the pidfile: hosts with different
   * deploy_to paths can then share one deployer.yml.
   */
  get controlUrl(): string | undefined {
    const url = this.server.controlUrl
    const path = url?.startsWith('unix://') ? url.slice('unix://'.length) : undefined
    if (path === undefined || path.startsWith('/') || path.startsWith('@')) return url
    return `unix://${posix.join(this.session.layout.deployTo, path)}`
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
        pidfile: this.pidfile,
        controlUrl: this.controlUrl,
        configs: configDirs.map((dir) => ({ dir, file: this.server.config })),
        ...(expectMaster ? { expectMaster } : {}),
      },
      this.server.controlToken,
    )
  }

  /**
   * Decides how to restart for `next` (being built in `newDir`), from the running server's facts and
   * the fingerprints of the release the master really loaded.
   */
  async plan(
    state: HostState,
    newDir: string,
    next: Fingerprints,
    requested: RestartKind,
  ): Promise<RestartPlan> {
    const hashFiles = async (files: string[]) =>
      files.length > 0
        ? (await this.session.run('hashing server.env_files', puma.envFilesHashCommand(files))).trim()
        : null
    const environment = await hashFiles(this.envFiles)
    const pumaEnvironment = await hashFiles(this.pumaEnvFiles)
    // A master caught re-exec'ing (someone's USR2) is waited for: taken for stopped, it would be started twice.
    const observed = lastObservedRestart(state.history)
    const settleMs = restartDeadlineMs({
      kind: 'hot',
      workers: 0,
      workerShutdownTimeout: 30,
      workerBootTimeout: 60,
      observed,
    })
    const first = await this.settledProbe(undefined, settleMs, [newDir])
    const cwdRelease = first.master.running ? masterRelease(state, first.master.cwd) : null
    const running = findRunningReleases(state.history, first.stats?.startedAt ?? null, cwdRelease)
    const runningDir =
      running.configRelease !== null && state.releases.some((r) => r.number === running.configRelease)
        ? releasePath(this.session.layout, running.configRelease)
        : null
    // The running release's config, evaluated the same way, gives the binds to compare with.
    const facts = runningDir ? await this.probe([newDir, runningDir]) : first
    const nextConfig = facts.configs[0]
    const runningConfig = runningDir ? facts.configs[1] : undefined
    if (nextConfig && !nextConfig.ok) {
      throw new DeployerError(
        `Host ${this.session.name}: the new release's ${this.server.config} does not load: ${nextConfig.error ?? 'unknown error'}.`,
        {
          exitCode: ExitCode.install,
          hint: 'Fix the Puma config; nothing was published.',
          host: this.session.name,
        },
      )
    }
    const fingerprints: Fingerprints = {
      ...next,
      binds: nextConfig?.binds ?? null,
      environment,
      ...(pumaEnvironment === null ? {} : { pumaEnvironment }),
    }
    const runningFingerprints = runningDir ? await this.readFingerprints(runningDir, runningConfig) : null
    const serverFacts = this.serverFacts(facts, runningConfig ?? nextConfig)
    const decision = decideRestart({
      requested,
      running: runningFingerprints,
      next: fingerprints,
      server: {
        ...serverFacts,
        nextDirectoryIsCurrent: nextConfig?.directory === this.session.layout.current,
      },
      currentPath: this.session.layout.current,
      hasEnvFiles: this.envFiles.length > 0,
      hasPumaEnvFiles: this.pumaEnvFiles.length > 0,
    })
    const configPidfile = nextConfig?.pidfile ? posix.resolve(newDir, nextConfig.pidfile) : null
    if (configPidfile && configPidfile !== this.pidfile) {
      decision.warnings.push(
        `${this.server.config} writes its pidfile to ${configPidfile}, but server.pidfile is ${this.pidfile}: deployer finds Puma through server.pidfile, so make them the same.`,
      )
    }
    if (running.source === 'process' && facts.master.running) {
      decision.reasons.push(
        '(the running release was read from the master process: Puma was not last restarted by deployer)',
      )
    }
    return {
      decision,
      fingerprints,
      baseline: baselineOf(facts),
      running,
      ...configPlan(nextConfig),
      observed,
    }
  }

  private serverFacts(
    probe: ServerProbe,
    config: PumaConfigFacts | undefined,
  ): Omit<ServerFacts, 'nextDirectoryIsCurrent'> {
    const master = probe.master
    const running = master.running
    const pumaVersion = master.pumaVersion ?? config?.pumaVersion ?? '0'
    const workers = probe.stats?.mode === 'cluster' ? (probe.stats.workers ?? 0) : probe.workers.length
    const mode: 'cluster' | 'single' = probe.stats
      ? probe.stats.mode
      : probe.workers.length > 0
        ? 'cluster'
        : (config?.workers ?? 0) > 0
          ? 'cluster'
          : 'single'
    // Puma's restart directory: `directory` when set, else PWD when it names the cwd (§3.1).
    const directory = config?.directory ?? null
    const directoryIsCurrent = directory === this.session.layout.current
    return {
      running,
      mode,
      workers: Math.max(workers, config?.workers ?? 0),
      preload: config
        ? effectivePreload(pumaVersion, config, { webConcurrency: master.env.webConcurrency })
        : false,
      pruneBundler: config?.pruneBundler ?? false,
      directoryIsCurrent,
      runningRuby: master.rubyVersion ?? null,
      runningPuma: master.pumaVersion ?? null,
      skipUsr2: master.env.skipUsr2 ?? false,
    }
  }

  async readFingerprints(dir: string, config: PumaConfigFacts | undefined): Promise<Fingerprints | null> {
    const file = posix.join(dir, FINGERPRINTS_FILE)
    const result = await this.session.transport.exec(`cat ${quote(file)} 2>/dev/null`)
    try {
      const stored = JSON.parse(result.stdout) as { fingerprints: Fingerprints }
      // Binds as the master sees them (its environment can set them) when the config could be read.
      return { ...stored.fingerprints, binds: config?.binds ?? stored.fingerprints.binds ?? null }
    } catch {
      return null
    }
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
    const baseline = baselineOf(await this.waitForIdle(plan, signal))
    const started = this.clock.now()
    await this.trigger(kind, { ...plan, baseline })
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
    await this.trigger(kind, restoredPlan)
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
  private async settledProbe(
    expected: MasterIdentity | undefined,
    deadlineMs: number,
    configDirs: readonly string[],
    signal?: AbortSignal,
  ): Promise<ServerProbe> {
    const settled = await pollUntil<ServerProbe>(
      { deadlineMs, intervalMs: POLL_MS, clock: this.clock, ...(signal ? { signal } : {}) },
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
    const logs = pumaLogs(
      this.startLog,
      this.server.start,
      plan?.pumaLog ?? null,
      this.session.layout.current,
    )
    const result = await this.session.transport.exec(puma.tailLogCommand(logs, lines)).catch(() => null)
    return result ? lastLines(result.stdout, lines * logs.length + logs.length) : ''
  }

  private async trigger(kind: VerifiedKind | 'none', plan: RestartPlan): Promise<void> {
    const name = this.session.name
    if (kind === 'phased' || kind === 'hot') {
      const signal = kind === 'phased' ? 'USR1' : 'USR2'
      await this.session
        .run(`sending ${signal} to Puma`, puma.signalMasterCommand(this.pidfile, signal), {
          hint: `Check ${this.pidfile} and that Puma runs as the SSH user.`,
        })
        .catch((error) => explainRefusedSignal(this.session, this.pidfile, signal, error))
    } else if (kind === 'start') {
      await this.start(plan)
    } else if (kind === 'full') {
      if (this.server.fullRestart) {
        await this.session.run(
          'the full restart (server.full_restart)',
          puma.fullRestartCommand(this.session.layout.current, this.server.fullRestart),
        )
        return
      }
      const pid = plan.baseline.masterPid
      if (pid !== null) {
        await this.session
          .run('stopping Puma (TERM)', puma.signalMasterCommand(this.pidfile, 'TERM'))
          .catch((error) => explainRefusedSignal(this.session, this.pidfile, 'TERM', error))
        const waitS = plan.workerShutdownTimeout + 15
        const stopped = await pollUntil(
          { deadlineMs: waitS * 1000, intervalMs: POLL_MS, clock: this.clock },
          async () =>
            (await this.session.transport.exec(puma.isAliveCommand(pid))).code === 0
              ? { state: 'pending', detail: `pid ${pid} still alive` }
              : { state: 'done', value: undefined },
        )
        if (!stopped.ok) {
          throw new DeployerError(`Host ${name}: Puma (pid ${pid}) did not stop within ${waitS}s of TERM.`, {
            exitCode: ExitCode.verify,
            hint: 'Look at Puma’s log; stop it by hand, then release again.',
            host: name,
          })
        }
      }
      await this.start(plan)
    }
  }

  private async start(plan?: RestartPlan): Promise<void> {
    if (!this.server.start) {
      throw new DeployerError(
        `Host ${this.session.name}: Puma is not running and \`server.start\` is not set.`,
        {
          exitCode: ExitCode.config,
          hint: 'Set `server.start` (e.g. `bundle exec puma -C config/puma.rb`) or `server.full_restart` (e.g. `sudo systemctl restart shop`).',
          host: this.session.name,
        },
      )
    }
    if (plan && plan.tcpPorts.length > 0) await this.waitForFreePorts(plan)
    await this.session.run(
      'starting Puma',
      puma.startCommand(this.session.layout.current, this.server.start, this.startLog),
    )
  }

  /**
   * Never starts Puma while something holds its port: a master deployer lost sight of (a stale or
   * rewritten pidfile) would keep serving, and the new one would die on EADDRINUSE. Ports a stopping
   * master still holds are waited for.
   */
  private async waitForFreePorts(plan: RestartPlan): Promise<void> {
    const free = await pollUntil(
      { deadlineMs: (plan.workerShutdownTimeout + 15) * 1000, intervalMs: POLL_MS, clock: this.clock },
      async () => {
        const listening = (await this.probe()).listeningPorts
        const held = plan.tcpPorts.filter((port) => listening.includes(port))
        return held.length === 0
          ? { state: 'done', value: undefined }
          : { state: 'pending', detail: held.join(', ') }
      },
    )
    if (free.ok) return
    throw new DeployerError(
      `Host ${this.session.name}: port ${free.detail} is held by a process that is not the Puma behind ${this.pidfile}; deployer will not start a second Puma.`,
      {
        exitCode: ExitCode.verify,
        hint: 'Find it with `ss -ltnp` on the host; stop it (or point server.pidfile at it), then release again.',
        host: this.session.name,
      },
    )
  }

  /**
   * A restart is never signalled on top of an unfinished phased restart (F28) or a master still
   * re-exec'ing: wait for it first, as long as such a restart may take on this host.
   */
  private async waitForIdle(plan: RestartPlan, signal?: AbortSignal): Promise<ServerProbe> {
    const deadlineMs = this.deadline(plan, 'phased')
    const expected = identityOf(plan.baseline)
    const idle = await pollUntil<ServerProbe>(
      { deadlineMs, intervalMs: POLL_MS, clock: this.clock, ...(signal ? { signal } : {}) },
      async () => {
        const probe = await this.probe([], expected)
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
      `Host ${this.session.name}: ${idle.detail} after ${Math.round(deadlineMs / 1000)}s.`,
      {
        exitCode: ExitCode.verify,
        hint: 'Look at Puma’s log for workers that fail to boot; deployer will not signal on top of it.',
        host: this.session.name,
      },
    )
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
      { deadlineMs, intervalMs: POLL_MS, clock: this.clock, ...(signal ? { signal } : {}) },
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
      await this.session.transport.exec(
        `cat ${quote(posix.join(releasePath(this.session.layout, release), 'REVISION'))}`,
      )
    ).stdout.trim()
    const expected = health.expect
      ?.replaceAll('{release}', String(release))
      .replaceAll('{revision}', revision)
    const healthy = await pollUntil(
      {
        deadlineMs: health.timeout * 1000,
        intervalMs: POLL_MS * 2,
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
    return restartDeadlineMs({
      kind,
      workers: plan.workers,
      workerShutdownTimeout: plan.workerShutdownTimeout,
      workerBootTimeout: plan.workerBootTimeout,
      ...(this.server.restartTimeout === undefined ? {} : { restartTimeout: this.server.restartTimeout }),
      observed: plan.observed,
    })
  }

  private async realPath(path: string): Promise<string> {
    return (await this.session.run('resolving the release path', `cd ${quote(path)} && pwd -P`)).trim()
  }
}

function masterRelease(state: HostState, cwd: string | null | undefined): number | null {
  return cwd && state.realDeployTo ? releaseOf(`${state.realDeployTo}/releases`, cwd) : null
}

export function baselineOf(probe: ServerProbe): Baseline {
  const master = probe.master
  // A settling master is still the master: it keeps its pid and start time across the re-exec.
  const known = master.running || master.settling
  return {
    masterPid: known ? master.pid : null,
    masterStartTime: known ? (master.startTime ?? null) : null,
    startedAt: probe.stats?.startedAt ?? null,
    phase: probe.stats?.phase ?? null,
    workerPids: probe.workers.map((worker) => worker.pid),
  }
}

export function snapshotOf(probe: ServerProbe): Snapshot {
  const status = new Map((probe.stats?.workerStatus ?? []).map((entry) => [entry.pid, entry]))
  const master = probe.master
  return {
    masterPid: master.running ? master.pid : null,
    masterStartTime: master.running ? (master.startTime ?? null) : null,
    settlingMaster:
      master.settling && master.pid !== null
        ? { pid: master.pid, startTime: master.startTime ?? null }
        : null,
    masterCwd: probe.master.cwd ?? null,
    startedAt: probe.stats?.startedAt ?? null,
    phase: probe.stats?.phase ?? null,
    oldWorkers: probe.stats?.oldWorkers ?? null,
    bootedWorkers: probe.stats?.bootedWorkers ?? null,
    workers: [
      ...probe.workers.map((worker) => {
        const entry = status.get(worker.pid)
        return {
          index: entry?.index ?? worker.index ?? null,
          pid: worker.pid,
          phase: entry?.phase ?? null,
          booted: entry ? entry.booted : null,
          cwd: worker.cwd ?? null,
        }
      }),
      // Workers Puma knows about but that /proc no longer shows (crashed between the two reads).
      ...(probe.stats?.workerStatus ?? [])
        .filter(
          (entry) =>
            entry.pid !== null && !probe.workers.some((worker) => worker.pid === entry.pid) && !entry.booted,
        )
        .map((entry) => ({
          index: entry.index,
          pid: entry.pid as number,
          phase: entry.phase,
          booted: false,
          cwd: null,
        })),
    ],
  }
}

/** The master a baseline saw, for the probe to recognise it by; undefined when there was none. */
function identityOf(baseline: Baseline): MasterIdentity | undefined {
  return baseline.masterPid === null
    ? undefined
    : { pid: baseline.masterPid, startTime: baseline.masterStartTime }
}

/** What a restart onto a release takes from that release's own Puma config. */
function configPlan(
  config: PumaConfigFacts | undefined,
): Pick<RestartPlan, 'workers' | 'pumaLog' | 'workerShutdownTimeout' | 'workerBootTimeout' | 'tcpPorts'> {
  return {
    workers: config?.workers && config.workers > 0 ? config.workers : 0,
    pumaLog: config?.stdoutRedirect ?? null,
    workerShutdownTimeout: config?.workerShutdownTimeout ?? 30,
    workerBootTimeout: config?.workerBootTimeout ?? 60,
    tcpPorts: tcpPortsOf(config?.binds ?? []),
  }
}

/** The ports of `tcp://` and `ssl://` binds (`tcp://[::]:3000` → 3000). */
export function tcpPortsOf(binds: readonly string[]): number[] {
  const ports = binds.flatMap((bind) => {
    const match = /^(?:tcp|ssl):\/\/.*:(\d+)(?:[/?].*)?$/.exec(bind)
    return match ? [Number(match[1])] : []
  })
  return [...new Set(ports)]
}

/**
 * Where Puma writes: deployer's start log, the config's stdout_redirect, and the files server.start
 * redirects to with `--redirect-stdout`/`--redirect-stderr` (relative to the current path).
 */
export function pumaLogs(
  startLog: string,
  start: string | undefined,
  stdoutRedirect: string | null,
  currentPath: string,
): string[] {
  const fromStart = [...(start ?? '').matchAll(/--redirect-std(?:out|err)(?:=|\s+)(['"]?)([^\s'"]+)\1/g)].map(
    (match) => posix.resolve(currentPath, match[2] ?? ''),
  )
  const redirect = stdoutRedirect ? [posix.resolve(currentPath, stdoutRedirect)] : []
  return [...new Set([startLog, ...redirect, ...fromStart])]
}
