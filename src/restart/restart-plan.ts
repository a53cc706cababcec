import { posix } from 'node:path'
import type { RestartKind } from '../config/types.js'
import { DeployerError, ExitCode } from '../errors.js'
import { releaseOf } from '../guard/live-dirs.js'
import type { HostState } from '../release/host-state.js'
import { releasePath } from '../release/layout.js'
import { lastObservedRestart, type ObservedRestart, restartDeadlineMs } from './deadline.js'
import { decideRestart, type RestartDecision, type ServerFacts } from './decide.js'
import type { Fingerprints } from './fingerprints.js'
import { effectivePreload } from './preload.js'
import type { MasterIdentity, PumaConfigFacts, ServerProbe } from './probe-facts.js'
import * as puma from './puma-commands.js'
import type { PumaContext } from './puma-paths.js'
import { findRunningReleases, type RunningReleases } from './running-release.js'
import type { Baseline, VerifiedKind } from './verify.js'

/*
 * Planning a restart, before the flip: read the running server and the release it really runs, evaluate
 * both Puma configs, and hand the facts to decideRestart (decide.ts, pure). Nothing here signals Puma.
 */

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

/** Inside each release: its fingerprints and the restart decided for it (written before publishing). */
export const FINGERPRINTS_FILE = '.deployer/fingerprints.json'

/**
 * Decides how to restart for `next` (being built in `newDir`), from the running server's facts and
 * the fingerprints of the release the master really loaded.
 */
export async function planRestart(
  host: PumaContext,
  state: HostState,
  newDir: string,
  next: Fingerprints,
  requested: RestartKind,
): Promise<RestartPlan> {
  const { session, server, paths } = host
  const hashFiles = async (files: string[]) =>
    files.length > 0
      ? (await session.run('hashing server.env_files', puma.envFilesHashCommand(files))).trim()
      : null
  const environment = await hashFiles(paths.envFiles)
  const pumaEnvironment = await hashFiles(paths.pumaEnvFiles)
  // A master caught re-exec'ing (someone's USR2) is waited for: taken for stopped, it would be started twice.
  const observed = lastObservedRestart(state.history)
  const settleMs = restartDeadlineMs({
    kind: 'hot',
    workers: 0,
    workerShutdownTimeout: 30,
    workerBootTimeout: 60,
    observed,
  })
  const first = await host.settledProbe(undefined, settleMs, [newDir])
  const cwdRelease = first.master.running ? masterRelease(state, first.master.cwd) : null
  const running = findRunningReleases(state.history, first.stats?.startedAt ?? null, cwdRelease)
  const runningDir =
    running.configRelease !== null && state.releases.some((r) => r.number === running.configRelease)
      ? releasePath(session.layout, running.configRelease)
      : null
  // The running release's config, evaluated the same way, gives the binds to compare with.
  const facts = runningDir ? await host.probe([newDir, runningDir]) : first
  const nextConfig = facts.configs[0]
  const runningConfig = runningDir ? facts.configs[1] : undefined
  if (nextConfig && !nextConfig.ok) {
    throw new DeployerError(
      `Host ${session.name}: the new release's ${server.config} does not load: ${nextConfig.error ?? 'unknown error'}.`,
      {
        exitCode: ExitCode.install,
        hint: 'Fix the Puma config; nothing was published.',
        host: session.name,
      },
    )
  }
  const fingerprints: Fingerprints = {
    ...next,
    binds: nextConfig?.binds ?? null,
    environment,
    ...(pumaEnvironment === null ? {} : { pumaEnvironment }),
  }
  const runningFingerprints = runningDir ? await readFingerprints(host, runningDir, runningConfig) : null
  const decision = decideRestart({
    requested,
    running: runningFingerprints,
    next: fingerprints,
    server: {
      ...serverFacts(host, facts, runningConfig ?? nextConfig),
      nextDirectoryIsCurrent: nextConfig?.directory === session.layout.current,
    },
    currentPath: session.layout.current,
    hasEnvFiles: paths.envFiles.length > 0,
    hasPumaEnvFiles: paths.pumaEnvFiles.length > 0,
  })
  const configPidfile = nextConfig?.pidfile ? posix.resolve(newDir, nextConfig.pidfile) : null
  if (configPidfile && configPidfile !== paths.pidfile) {
    decision.warnings.push(
      `${server.config} writes its pidfile to ${configPidfile}, but server.pidfile is ${paths.pidfile}: deployer finds Puma through server.pidfile, so make them the same.`,
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

function serverFacts(
  host: PumaContext,
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
  const directoryIsCurrent = directory === host.session.layout.current
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

/** The fingerprints a release was published with; null when it has none (or they do not parse). */
export async function readFingerprints(
  host: PumaContext,
  dir: string,
  config: PumaConfigFacts | undefined,
): Promise<Fingerprints | null> {
  const file = posix.join(dir, FINGERPRINTS_FILE)
  const result = await host.session.ask(puma.readFileCommand(file, { quiet: true }))
  try {
    const stored = JSON.parse(result.stdout) as { fingerprints: Fingerprints }
    // Binds as the master sees them (its environment can set them) when the config could be read.
    return { ...stored.fingerprints, binds: config?.binds ?? stored.fingerprints.binds ?? null }
  } catch {
    return null
  }
}

function masterRelease(state: HostState, cwd: string | null | undefined): number | null {
  return cwd && state.realDeployTo ? releaseOf(`${state.realDeployTo}/releases`, cwd) : null
}

/** How long a restart of `kind` may take: server.restart_timeout, else from the last one (deadline.ts). */
export function restartDeadlineFor(
  plan: RestartPlan,
  kind: VerifiedKind,
  restartTimeout: number | undefined,
): number {
  return restartDeadlineMs({
    kind,
    workers: plan.workers,
    workerShutdownTimeout: plan.workerShutdownTimeout,
    workerBootTimeout: plan.workerBootTimeout,
    ...(restartTimeout === undefined ? {} : { restartTimeout }),
    observed: plan.observed,
  })
}

/** The server as a restart's verification compares with: the master and workers seen before the signal. */
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

/** The master a baseline saw, for the probe to recognise it by; undefined when there was none. */
export function identityOf(baseline: Baseline): MasterIdentity | undefined {
  return baseline.masterPid === null
    ? undefined
    : { pid: baseline.masterPid, startTime: baseline.masterStartTime }
}

/** What a restart onto a release takes from that release's own Puma config. */
export function configPlan(
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
