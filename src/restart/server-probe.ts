import { quote } from '../transport/quote.js'
import type {
  MasterFacts,
  MasterIdentity,
  PumaConfigFacts,
  PumaStats,
  ServerProbe,
  WorkerFacts,
} from './probe-facts.js'
import { CONFIG_FACTS_RB, SERVER_PROBE_RB } from './ruby-scripts.js'

export type * from './probe-facts.js'

/*
 * Reads what a host's running Puma really is, in one round trip: the master from its pidfile and
 * /proc, its workers, the control app's /stats, and how Puma itself reads each given config file. A
 * deploy must never assume these (docs/puma-restarts.md §5.1, §10): a pidfile can be stale, a
 * USR1 can silently become a hot restart, workers can run an old release while stats look perfect.
 *
 * The host side is a small POSIX sh preamble that hands over to Ruby, which a Puma host always has: the
 * Ruby lives in ruby/server-probe.rb and ruby/config-facts.rb (checked with `ruby -wc` by a unit test),
 * carried into every build as string constants by the generated ruby-scripts.ts.
 * The control token travels on stdin, never on the command line, where `ps` would show it. Of the
 * master's environment only a few derived facts leave the host: the rest holds secrets.
 */

/** What the probe needs to know about the host. */
export interface ServerProbeOptions {
  /** The app's deploy_to; relative config dirs are resolved against it. */
  deployTo: string
  /** Absolute path of Puma's pidfile. */
  pidfile: string
  /** Puma's control app: `unix:///path` or `tcp://host:port`. Without it, no stats are read. */
  controlUrl?: string
  /** Configs to evaluate with Puma's own classes: a release dir and the config path relative to it. */
  configs: { dir: string; file: string }[]
  /**
   * The master seen before a restart. It is still the master (not a stale pid) while that pid lives with
   * the same start time, even when its proctitle or the pidfile say otherwise for a moment (a USR2).
   */
  expectMaster?: MasterIdentity
}

/** Tags the probe's JSON so that shell noise cannot be mistaken for it. */
export const PROBE_MARK = 'deployer-server-probe/1'

/**
 * The host-side probe: POSIX sh that finds a Ruby (the PATH's, else the running master's own
 * interpreter, for rbenv/chruby hosts whose non-login SSH shell has no ruby on PATH) and runs the probe
 * in it. Prints one JSON document; feed the control token on stdin (empty for none).
 */
export function serverProbeCommand(options: ServerProbeOptions): string {
  const configs = JSON.stringify(options.configs.map(({ dir, file }) => ({ dir, file })))
  return [
    'set -u',
    `pidfile=${quote(options.pidfile)}`,
    'ruby_bin=$(command -v ruby 2>/dev/null) || ruby_bin=',
    'if [ -z "$ruby_bin" ]; then',
    '  pid=$(cat "$pidfile" 2>/dev/null) || pid=',
    '  case $pid in ""|*[!0-9]*) ;; *) ruby_bin=$(readlink "/proc/$pid/exe" 2>/dev/null) || ruby_bin= ;; esac',
    '  case ${ruby_bin##*/} in *ruby*) ;; *) ruby_bin= ;; esac',
    'fi',
    'if [ -z "$ruby_bin" ]; then echo "deployer: no ruby on PATH to probe Puma with" >&2; exit 127; fi',
    // `--` ends Ruby's own options, so an argument starting with `-` stays an argument. No RubyGems:
    // it needs only the standard library (the config is evaluated in a child with the release's
    // bundle), and without it a look costs a sixth of the CPU, taken from a restart being waited for.
    `exec "$ruby_bin" --disable-gems -e ${quote(SERVER_PROBE_RB)} -- "$pidfile" ${quote(options.controlUrl ?? '')} ${quote(configs)} ${quote(options.deployTo)} ${quote(CONFIG_FACTS_RB)} ${quote(JSON.stringify(options.expectMaster ?? null))}`,
  ].join('\n')
}

/** Parses serverProbeCommand's output; throws when it holds no probe JSON. Missing fields are tolerated. */
export function parseServerProbe(stdout: string): ServerProbe {
  // A login shell's rc files may print before the probe; its answer is the last JSON line.
  const line = stdout
    .split('\n')
    .map((text) => text.trim())
    .reverse()
    .find((text) => text.startsWith('{'))
  let doc: unknown
  try {
    doc = line === undefined ? undefined : JSON.parse(line)
  } catch {
    doc = undefined
  }
  if (!isRecord(doc) || doc.probe !== PROBE_MARK || !isRecord(doc.master)) {
    const shown = stdout.trim().slice(0, 200)
    throw new Error(
      `The Puma probe did not print its JSON report${shown ? `; it printed: ${shown}` : ' (its output was empty)'}.`,
    )
  }
  return {
    master: parseMaster(doc.master),
    workers: arrayOf(doc.workers).filter(isRecord).map(parseWorker),
    stats: isRecord(doc.stats) ? normalizeStats(doc.stats) : null,
    statsError: str(doc.statsError) ?? null,
    configs: arrayOf(doc.configs).filter(isRecord).map(parseConfig),
    currentPath: str(doc.currentPath) ?? null,
    listeningPorts: arrayOf(doc.listeningPorts).filter((port): port is number => typeof port === 'number'),
  }
}

/** Runs the probe through `run(command, stdin)` (e.g. HostSession.run) and parses its report. */
export async function probeServer(
  run: (command: string, stdin: string) => Promise<string>,
  options: ServerProbeOptions,
  token?: string,
): Promise<ServerProbe> {
  return parseServerProbe(await run(serverProbeCommand(options), token ?? ''))
}

/**
 * Puma's raw `/stats` with camelCase keys. Cluster mode has `worker_status`; single mode only the
 * server's pool numbers (`backlog`, `running`, ...) next to `started_at`.
 */
export function normalizeStats(raw: Record<string, unknown>): PumaStats {
  const cluster = 'worker_status' in raw || 'workers' in raw || 'phase' in raw
  const stats: PumaStats = {
    mode: cluster ? 'cluster' : 'single',
    startedAt: str(raw.started_at) ?? null,
    phase: num(raw.phase) ?? null,
    workers: num(raw.workers) ?? null,
    bootedWorkers: num(raw.booted_workers) ?? null,
    oldWorkers: num(raw.old_workers) ?? null,
    workerStatus: arrayOf(raw.worker_status)
      .filter(isRecord)
      .map((entry) =>
        defined({
          index: num(entry.index) ?? null,
          pid: num(entry.pid) ?? null,
          phase: num(entry.phase) ?? null,
          booted: typeof entry.booted === 'boolean' ? entry.booted : null,
          startedAt: str(entry.started_at),
          lastCheckin: str(entry.last_checkin),
          lastStatus: numbersOf(entry.last_status),
        }),
      ),
  }
  if (!cluster) stats.pool = numbersOf(raw)
  if (isRecord(raw.versions) && typeof raw.versions.puma === 'string') {
    const ruby = isRecord(raw.versions.ruby) ? raw.versions.ruby : undefined
    stats.versions = {
      puma: raw.versions.puma,
      ruby: ruby && {
        engine: str(ruby.engine),
        version: str(ruby.version),
        patchlevel: num(ruby.patchlevel),
      },
    }
  }
  return stats
}

function parseMaster(raw: Record<string, unknown>): MasterFacts {
  const env = isRecord(raw.env) ? raw.env : {}
  const alive = raw.alive === true
  const isPuma = raw.isPuma === true
  return defined({
    pidfile: str(raw.pidfile) ?? '',
    pid: num(raw.pid) ?? null,
    pidfileError: str(raw.pidfileError),
    alive,
    isPuma,
    running: raw.running === true && alive && isPuma,
    startTime: num(raw.startTime),
    settling: raw.settling === true && alive && !isPuma,
    pidFromExpected: raw.pidFromExpected === true ? true : undefined,
    proctitle: str(raw.proctitle),
    cwd: str(raw.cwd),
    exe: str(raw.exe),
    pumaVersion: str(raw.pumaVersion),
    binds: Array.isArray(raw.binds) ? raw.binds.filter((b): b is string => typeof b === 'string') : undefined,
    tag: str(raw.tag),
    rubyVersion: str(raw.rubyVersion),
    environReadable: raw.environReadable === true,
    env: defined({
      pwd: str(env.pwd),
      webConcurrency: str(env.webConcurrency),
      skipUsr2: typeof env.skipUsr2 === 'boolean' ? env.skipUsr2 : undefined,
      bundleGemfile: str(env.bundleGemfile),
    }),
  })
}

function parseWorker(raw: Record<string, unknown>): WorkerFacts {
  return defined({
    pid: num(raw.pid) ?? 0,
    ppid: num(raw.ppid) ?? 0,
    index: num(raw.index) ?? null,
    masterPid: num(raw.masterPid) ?? null,
    tag: str(raw.tag),
    cwd: str(raw.cwd),
    cmdline: str(raw.cmdline) ?? '',
  })
}

function parseConfig(raw: Record<string, unknown>): PumaConfigFacts {
  const bool = (value: unknown) => (typeof value === 'boolean' ? value : null)
  return {
    dir: str(raw.dir) ?? '',
    file: str(raw.file) ?? '',
    ok: raw.ok === true,
    error: str(raw.error),
    envSource: raw.envSource === 'master' ? 'master' : 'probe',
    pumaVersion: str(raw.pumaVersion) ?? null,
    workers: num(raw.workers) ?? null,
    preloadApp: bool(raw.preloadApp),
    defaultPreload: bool(raw.defaultPreload),
    pruneBundler: bool(raw.pruneBundler),
    directory: str(raw.directory) ?? null,
    binds: arrayOf(raw.binds).filter((b): b is string => typeof b === 'string'),
    pidfile: str(raw.pidfile) ?? null,
    controlUrl: str(raw.controlUrl) ?? null,
    stateFile: str(raw.stateFile) ?? null,
    stdoutRedirect: str(raw.stdoutRedirect) ?? null,
    workerShutdownTimeout: num(raw.workerShutdownTimeout) ?? null,
    workerBootTimeout: num(raw.workerBootTimeout) ?? null,
    forkWorker: num(raw.forkWorker) ?? null,
    ...(typeof raw.pumaWild === 'boolean' ? { pumaWild: raw.pumaWild } : {}),
    ...(typeof raw.bindsInFile === 'boolean' ? { bindsInFile: raw.bindsInFile } : {}),
  }
}

/** Numeric fields of a stats object, keys camelCased (`pool_capacity` -> `poolCapacity`). */
function numbersOf(value: unknown): Record<string, number> {
  const out: Record<string, number> = {}
  if (!isRecord(value)) return out
  for (const [key, entry] of Object.entries(value)) {
    if (typeof entry === 'number') out[key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())] = entry
  }
  return out
}

/** The object without its undefined fields, so that reports compare and print cleanly. */
function defined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, entry]) => entry !== undefined)) as T
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function arrayOf(value: unknown): unknown[] {
  return Array.isArray(value) ? value : []
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined
}

function num(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined
}
