/**
 * What the Puma probe (server-probe.ts) reports about a host: the master, its workers, Puma's /stats and
 * how Puma reads each config. Plain data: check/ and restart/ decide on it without running anything.
 */

/** A process told apart from any later one with the same pid: exec keeps both, a new process changes the start time. */
export interface MasterIdentity {
  pid: number
  /** Field 22 of /proc/PID/stat (clock ticks after boot); null when it could not be read. */
  startTime: number | null
}

/** The few facts taken from the master's `/proc/PID/environ` (the environment it was exec'd with). */
export interface MasterEnvFacts {
  /** PWD: Puma's restart directory when `directory` is not set (§3.1). */
  pwd?: string
  /** WEB_CONCURRENCY: on Puma 5.x/6.x it turns preload on by default when > 1 (§1.3). */
  webConcurrency?: string
  /** PUMA_SKIP_SIGUSR2 is set: Puma 6.6+ then leaves USR2 to someone else (F29). */
  skipUsr2?: boolean
  /** BUNDLE_GEMFILE: a resolved release path here pins that release's gems (F8). */
  bundleGemfile?: string
}

/** The process the pidfile names. `running` is the one to trust: a live pid whose proctitle is Puma's. */
export interface MasterFacts {
  pidfile: string
  /** The pid in the pidfile; null when it is missing or holds no pid. */
  pid: number | null
  /** Why there is no pid: `missing`, `unreadable`, `no pid in it`. */
  pidfileError?: string
  /** A process with that pid exists and is not a zombie. */
  alive: boolean
  /** Its proctitle starts with `puma ` (a stale pidfile can name an unrelated process). */
  isPuma: boolean
  /** alive and isPuma. */
  running: boolean
  /** Start time of the process behind the pid (see MasterIdentity); absent when it is not alive. */
  startTime?: number
  /**
   * Alive, not showing Puma's proctitle, but its cmdline is empty or names puma: a master re-exec'ing
   * after USR2 looks like this for hundreds of milliseconds (longer on a busy machine or with a big
   * Gemfile). Only `expectMaster`'s identity makes it certainly ours.
   */
  settling: boolean
  /** The pidfile held no pid for a moment, and the pid came from `expectMaster` (still alive, same start time). */
  pidFromExpected?: boolean
  /** The proctitle, `puma 5.6.5 (tcp://0.0.0.0:3000) [app]`. */
  proctitle?: string
  /** Resolved cwd (`releases/N`, never the symlink). */
  cwd?: string
  /** The executable; ends in ` (deleted)` when it was replaced on disk. */
  exe?: string
  /** Puma's version, from the proctitle. */
  pumaVersion?: string
  /** The binds shown in the proctitle. */
  binds?: string[]
  /** The proctitle's `[tag]`. */
  tag?: string
  /** RUBY_VERSION of the master's executable, when that is a Ruby. */
  rubyVersion?: string
  /** Whether /proc/PID/environ could be read (same user or root). */
  environReadable: boolean
  env: MasterEnvFacts
}

/** A cluster worker of the master, as /proc shows it. */
export interface WorkerFacts {
  pid: number
  ppid: number
  /** The worker index from `puma: cluster worker N: MASTERPID [tag]`; null when not parseable. */
  index: number | null
  /** The master pid named in the proctitle. */
  masterPid: number | null
  tag?: string
  /** Resolved cwd: the release this worker's code came from. */
  cwd?: string
  cmdline: string
}

/** One entry of `worker_status` in Puma's cluster stats. */
export interface WorkerStatus {
  index: number | null
  /** Can be null briefly with fork_worker. */
  pid: number | null
  phase: number | null
  booted: boolean | null
  startedAt?: string
  lastCheckin?: string
  /** `{}` until the first check-in; then backlog, running, poolCapacity, maxThreads, requestsCount, ... */
  lastStatus: Record<string, number>
}

/** `/stats` from Puma's control app, with camelCase keys. */
export interface PumaStats {
  /** Cluster stats carry workers and phases; single mode reports only the server's thread pool. */
  mode: 'single' | 'cluster'
  /** Changes only on a hot restart or a start. */
  startedAt: string | null
  /** Cluster only: USR1 and refork increment it, USR2 resets it to 0. */
  phase: number | null
  /** Cluster only: worker handles right now (dips during a phased step), not the configured count. */
  workers: number | null
  /** Cluster only: includes old-phase workers. */
  bootedWorkers: number | null
  oldWorkers: number | null
  workerStatus: WorkerStatus[]
  /** Single mode only: backlog, running, poolCapacity, maxThreads, requestsCount. */
  pool?: Record<string, number>
  /** Puma 6.0+ only. */
  versions?: { puma: string; ruby?: { engine?: string; version?: string; patchlevel?: number } }
}

/** How Puma's own Configuration classes read one config file on the host. */
export interface PumaConfigFacts {
  dir: string
  file: string
  ok: boolean
  /** Why it could not be read: a syntax error, a missing file, an exception in the file. */
  error?: string
  /** Whose environment it was evaluated in: the master's (as the master did) or the probe's. */
  envSource: 'master' | 'probe'
  /** Puma::Const::PUMA_VERSION as loaded in that environment. */
  pumaVersion: string | null
  workers: number | null
  /** `preload_app!` as written in the file; null when the file does not set it. */
  preloadApp: boolean | null
  /** The preload Puma computes when the file does not set it (version-specific, §1.3). */
  defaultPreload: boolean | null
  pruneBundler: boolean | null
  /** `directory` as written (unresolved); null when not set. */
  directory: string | null
  binds: string[]
  pidfile: string | null
  controlUrl: string | null
  stateFile: string | null
  stdoutRedirect: string | null
  workerShutdownTimeout: number | null
  workerBootTimeout: number | null
  /** fork_worker's refork-after request count; null when fork_worker is off. */
  forkWorker: number | null
  /** Whether that Puma has `bin/puma-wild`, which prune_bundler needs; absent when Puma has no gem spec. */
  pumaWild?: boolean
  /**
   * The file sets `bind`, `port` or `ssl_bind`; false when `binds` is Puma's default (8.0: `tcp://[::]:9292`
   * where the host has IPv6). Absent from probes that predate it.
   */
  bindsInFile?: boolean
}

/** Everything one probe saw. */
export interface ServerProbe {
  master: MasterFacts
  workers: WorkerFacts[]
  /** null when no control URL was given or the stats could not be read. */
  stats: PumaStats | null
  /** Why the stats could not be read (`HTTP 403: Invalid auth token`, a missing socket, ...). */
  statsError: string | null
  configs: PumaConfigFacts[]
  /** realpath of `deploy_to/current`; null when it does not resolve. */
  currentPath: string | null
  /** TCP ports something listens on (IPv4 and IPv6), from /proc/net/tcp{,6}. */
  listeningPorts: number[]
}
