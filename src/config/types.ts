/** How a host's SSH host key is checked: `strict` refuses unknown hosts, `accept-new` records them once. */
export type HostKeyPolicy = 'strict' | 'accept-new'

export type RestartKind = 'auto' | 'phased' | 'hot' | 'full' | 'none'

export type Strategy = 'parallel' | 'rolling' | 'canary'

/** SSH settings, after `~` and `${VAR}` expansion. */
export interface SshSettings {
  /** Private key file; when absent the SSH agent (`SSH_AUTH_SOCK`) is used. */
  identity?: string
  /** known_hosts file used to verify (and, with `accept-new`, record) host keys. */
  knownHosts: string
  hostKey: HostKeyPolicy
  /** Seconds to wait for a connection and its handshake. */
  connectTimeout: number
}

/** One target, after per-host overrides are applied. */
export interface HostConfig {
  /** The name used in messages and `--host` filters. */
  name: string
  /** `local` for this machine, otherwise where to connect. */
  kind: 'local' | 'ssh'
  user?: string
  hostname?: string
  port: number
  deployTo: string
  ssh: SshSettings
}

export interface SharedSettings {
  files: string[]
  dirs: string[]
}

export interface InstallSettings {
  /** Runs in the new release, on the host; must install into `vendor` when that is set. */
  command: string
  /** Files whose content decides whether the vendored dependencies can be reused as they are. */
  lockfiles: string[]
  /** The vendored dependency directory, relative to the release; seeded from the previous release. */
  vendor?: string
  /**
   * Run instead of `command` when the lockfiles match the previous release's and `vendor` was seeded
   * from it (e.g. `bundle check`); `command` still runs when it fails. Without it, `command` always runs.
   */
  check?: string
  /**
   * `command` and `check` as deployer.yml writes them, set when `${VAR}` filled them in: the expanded
   * text may hold a secret (a token, a password), so messages and plans show these instead.
   */
  commandAsWritten?: string
  checkAsWritten?: string
}

export interface ServerSettings {
  kind: 'puma'
  config: string
  pidfile: string
  controlUrl?: string
  controlToken?: string
  restart: RestartKind
  start?: string
  fullRestart?: string
  /** Loaded into the master's environment by the process manager (systemd, server.start): a change needs a full restart. */
  envFiles: string[]
  /** Loaded by puma.rb itself (dotenv): a hot restart re-runs puma.rb, so a change needs a hot restart. */
  pumaEnvFiles: string[]
  /** Seconds Puma may take to reach the verified state; unset: derived from the last restart observed. */
  restartTimeout?: number
}

export interface HealthSettings {
  url: string
  /** `url` as deployer.yml writes it, set when `${VAR}` filled it in (a token in the query): what messages show. */
  urlAsWritten?: string
  expect?: string
  /** Seconds. */
  timeout: number
}

/** A validated deployer.yml. Paths on this machine are absolute; `deployTo` is absolute and normalised. */
export interface DeployConfig {
  /** The file it came from (absolute). */
  file: string
  app: string
  /** The built app directory to upload (absolute, local). */
  source: string
  exclude: string[]
  deployTo: string
  keepReleases: number
  hosts: HostConfig[]
  /** How the new release goes live across hosts once every host has built it. */
  strategy: Strategy
  /** Hosts worked on at once (building everywhere, and going live with `parallel`). */
  concurrency: number
  /** Hosts per batch with `rolling` (and after the canary with `canary_then: rolling`). */
  batch: number
  /** How the hosts after the canary go live. */
  canaryThen: 'parallel' | 'rolling'
  /** When a host fails to go live: roll the hosts already live back (`rollback`), or leave them (`stop`). */
  onFailure: 'rollback' | 'stop'
  ssh: SshSettings
  shared: SharedSettings
  install?: InstallSettings
  server?: ServerSettings
  health?: HealthSettings
}
