import { posix } from 'node:path'
import type { DeployConfig, RestartKind, ServerSettings } from '../config/types.js'
import { DeployerError, ExitCode, lastLines } from '../errors.js'
import { releaseOf } from '../guard/live-dirs.js'
import type { HostSession } from '../release/host-session.js'
import type { HostState } from '../release/host-state.js'
import { releasePath } from '../release/layout.js'
import { quote } from '../transport/quote.js'
import { decideRestart, type RestartDecision, type ServerFacts } from './decide.js'
import type { Fingerprints } from './fingerprints.js'
import { effectivePreload } from './preload.js'
import * as puma from './puma-commands.js'
import { findRunningReleases, type RunningReleases } from './running-release.js'
import { type PumaConfigFacts, probeServer, type ServerProbe } from './server-probe.js'
import {
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
}

export interface RestartOutcome {
  kind: RestartDecision['kind']
  detail: string
  fellBackToHot: boolean
  ms: number
  /** Puma's started_at once verified (null without a control app). */
  startedAt: string | null
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

/** A restart that did not reach the verified state before the deadline, with what was seen. */
export class VerifyError extends DeployerError {
  readonly detail: string
  readonly log: string
  readonly stage: VerifyStage

  constructor(host: string, what: string, detail: string, log: string, stage: VerifyStage = 'restart') {
    super(
      `Host ${host}: ${what} did not complete: ${detail}.${log ? `\nLast lines of Puma's log:\n${log}` : ''}`,
      { exitCode: ExitCode.verify, hint: VERIFY_HINTS[stage], host },
    )
    this.detail = detail
    this.log = log
    this.stage = stage
  }
}

/** A recovery onto the previous release: Puma verified on it, and what its health check said if it failed. */
export interface RecoveryOutcome extends RestartOutcome {
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

  constructor(session: HostSession, config: DeployConfig) {
    if (!config.server) throw new Error('PumaHost needs a server section')
    this.session = session
    this.server = config.server
    this.config = config
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

  get envFiles(): string[] {
    return this.server.envFiles.map((file) =>
      posix.isAbsolute(file) ? file : posix.join(this.session.layout.deployTo, file),
    )
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

  /** Reads the running server and the given releases' Puma configs in one round trip. */
  probe(configDirs: readonly string[] = []): Promise<ServerProbe> {
    return probeServer(
      (command, stdin) => this.session.run('reading the Puma server', command, { stdin }),
      {
        deployTo: this.session.layout.deployTo,
        pidfile: this.pidfile,
        controlUrl: this.controlUrl,
        configs: configDirs.map((dir) => ({ dir, file: this.server.config })),
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
    const environment =
      this.envFiles.length > 0
        ? (await this.session.run('hashing server.env_files', puma.envFilesHashCommand(this.envFiles))).trim()
        : null
    const first = await this.probe([newDir])
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
    const fingerprints: Fingerprints = { ...next, binds: nextConfig?.binds ?? null, environment }
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
    const workers = nextConfig?.workers && nextConfig.workers > 0 ? nextConfig.workers : 0
    return {
      decision,
      fingerprints,
      baseline: baselineOf(facts),
      running,
      workers,
      pumaLog: nextConfig?.stdoutRedirect ?? null,
      workerShutdownTimeout: nextConfig?.workerShutdownTimeout ?? 30,
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
    const started = Date.now()
    const kind = plan.decision.kind
    if (kind === 'none')
      return { kind, detail: 'not restarted (--restart none)', fellBackToHot: false, ms: 0, startedAt: null }
    const releaseDir = await this.realPath(releasePath(this.session.layout, release))
    // The baseline is read right before the signal: the stats to compare with are the ones it acts on.
    const baseline = baselineOf(await this.waitForIdle(signal))
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
    const started = Date.now()
    const probe = await this.probe()
    const releaseDir = await this.realPath(releasePath(this.session.layout, release))
    const alive = probe.master.running
    const canPhase = alive && probe.workers.length > 0 && plan.decision.kind === 'phased'
    const kind: VerifiedKind = !alive ? 'start' : canPhase ? 'phased' : 'hot'
    const recoverPlan: RestartPlan = { ...plan, baseline: baselineOf(probe) }
    await this.trigger(kind, recoverPlan)
    const expectation: Expectation = { kind, releasePath: releaseDir, workers: plan.workers }
    return this.verifyServing(expectation, plan, recoverPlan.baseline, release, started, signal, {
      reportUnhealthy: true,
    })
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
      ms: Date.now() - started,
      startedAt: probe.stats?.startedAt ?? null,
      ...(unhealthy === undefined ? {} : { unhealthy }),
    }
  }

  /** The last lines of Puma's logs, for failure reports. */
  async logTail(plan: RestartPlan | null, lines = 15): Promise<string> {
    const logs = [this.startLog, ...(plan?.pumaLog ? [plan.pumaLog] : [])]
    const result = await this.session.transport.exec(puma.tailLogCommand(logs, lines)).catch(() => null)
    return result ? lastLines(result.stdout, lines * logs.length + logs.length) : ''
  }

  private async trigger(kind: VerifiedKind | 'none', plan: RestartPlan): Promise<void> {
    const name = this.session.name
    if (kind === 'phased' || kind === 'hot') {
      await this.session.run(
        `sending ${kind === 'phased' ? 'USR1' : 'USR2'} to Puma`,
        puma.signalMasterCommand(this.pidfile, kind === 'phased' ? 'USR1' : 'USR2'),
        {
          hint: `Check ${this.pidfile} and that Puma runs as the SSH user.`,
        },
      )
    } else if (kind === 'start') {
      await this.start()
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
        await this.session.run('stopping Puma (TERM)', puma.signalMasterCommand(this.pidfile, 'TERM'))
        const deadline = Date.now() + (plan.workerShutdownTimeout + 15) * 1000
        while ((await this.session.transport.exec(puma.isAliveCommand(pid))).code === 0) {
          if (Date.now() > deadline) {
            throw new DeployerError(
              `Host ${name}: Puma (pid ${pid}) did not stop within ${plan.workerShutdownTimeout + 15}s of TERM.`,
              {
                exitCode: ExitCode.verify,
                hint: 'Look at Puma’s log; stop it by hand, then release again.',
                host: name,
              },
            )
          }
          await pause(POLL_MS)
        }
      }
      await this.start()
    }
  }

  private async start(): Promise<void> {
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
    await this.session.run(
      'starting Puma',
      puma.startCommand(this.session.layout.current, this.server.start, this.startLog),
    )
  }

  /** A restart is never signalled on top of an unfinished phased restart (F28): wait for it first. */
  private async waitForIdle(signal?: AbortSignal): Promise<ServerProbe> {
    const deadline = Date.now() + 60_000
    for (;;) {
      const probe = await this.probe()
      if (!probe.stats || (probe.stats.oldWorkers ?? 0) === 0) return probe
      if (Date.now() > deadline) {
        throw new DeployerError(
          `Host ${this.session.name}: a phased restart is still in progress (${probe.stats.oldWorkers} old workers) after 60s.`,
          {
            exitCode: ExitCode.verify,
            hint: 'Look at Puma’s log for workers that fail to boot; deployer will not signal on top of it.',
            host: this.session.name,
          },
        )
      }
      signal?.throwIfAborted()
      await pause(POLL_MS)
    }
  }

  private async verify(
    expectation: Expectation,
    plan: RestartPlan,
    baseline: Baseline,
    signal?: AbortSignal,
  ) {
    const deadlineMs = this.deadline(plan)
    const observation = newObservation()
    const deadline = Date.now() + deadlineMs
    let last = 'no answer from Puma yet'
    for (;;) {
      signal?.throwIfAborted()
      const probe = await this.probe().catch((error: unknown) => {
        last = error instanceof Error ? error.message : String(error)
        return null
      })
      if (probe) {
        const assessment = assessRestart(expectation, baseline, snapshotOf(probe), observation)
        if (assessment.state === 'done') return { assessment, probe }
        last = assessment.detail
        if (assessment.state === 'failed') break
      }
      if (Date.now() > deadline) {
        last = `${last} (deadline of ${Math.round(deadlineMs / 1000)}s passed)`
        break
      }
      await pause(POLL_MS)
    }
    throw new VerifyError(
      this.session.name,
      `the ${expectation.kind} restart`,
      last,
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
    const deadline = Date.now() + health.timeout * 1000
    let last = ''
    for (;;) {
      signal?.throwIfAborted()
      const output = await this.session.run(
        'the health check',
        puma.healthCheckCommand(health.url, Math.min(10, health.timeout)),
      )
      const { status, body } = puma.parseHealth(output)
      if (status >= 200 && status < 400 && (!expected || body.includes(expected))) return
      last =
        status === 0
          ? body
          : `HTTP ${status}${expected ? `, body without "${expected}"` : ''}: ${body.slice(0, 200)}`
      if (Date.now() > deadline) break
      await pause(POLL_MS * 2)
    }
    throw new VerifyError(
      this.session.name,
      `the health check of ${health.urlAsWritten ?? health.url}`,
      last,
      await this.logTail(plan),
      'health',
    )
  }

  private deadline(plan: RestartPlan): number {
    const base = (this.config.health?.timeout ?? 60) * 1000
    // A phased restart drains one worker at a time, each up to worker_shutdown_timeout.
    return plan.decision.kind === 'phased' ? base + plan.workers * plan.workerShutdownTimeout * 1000 : base
  }

  private async realPath(path: string): Promise<string> {
    return (await this.session.run('resolving the release path', `cd ${quote(path)} && pwd -P`)).trim()
  }
}

function masterRelease(state: HostState, cwd: string | null | undefined): number | null {
  return cwd && state.realDeployTo ? releaseOf(`${state.realDeployTo}/releases`, cwd) : null
}

export function baselineOf(probe: ServerProbe): Baseline {
  return {
    masterPid: probe.master.running ? probe.master.pid : null,
    startedAt: probe.stats?.startedAt ?? null,
    phase: probe.stats?.phase ?? null,
    workerPids: probe.workers.map((worker) => worker.pid),
  }
}

export function snapshotOf(probe: ServerProbe): Snapshot {
  const status = new Map((probe.stats?.workerStatus ?? []).map((entry) => [entry.pid, entry]))
  return {
    masterPid: probe.master.running ? probe.master.pid : null,
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

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
