import { posix } from 'node:path'
import type { DeployConfig, ServerSettings } from '../config/types.js'
import type { HostSession } from '../hosts/host-session.js'
import type { Layout } from '../release/layout.js'
import type { Clock } from './poll.js'
import type { MasterIdentity, ServerProbe } from './probe-facts.js'

/**
 * Where Puma's files are on one host: `server:` paths resolved against deploy_to, so that hosts with
 * different deploy_to paths can share one deployer.yml. Pure: it only joins paths.
 */
export class PumaPaths {
  constructor(
    private readonly layout: Layout,
    private readonly server: ServerSettings,
  ) {}

  /** server.pidfile on the host: deployer finds the master through it. */
  get pidfile(): string {
    return this.hostFile(this.server.pidfile)
  }

  /** Where deployer's start command writes Puma's output (boot errors happen before stdout_redirect). */
  get startLog(): string {
    return posix.join(this.layout.shared, 'log', 'puma.deployer.log')
  }

  /** Env files the process manager loads into the master (absolute paths). */
  get envFiles(): string[] {
    return this.server.envFiles.map((file) => this.hostFile(file))
  }

  /** Env files puma.rb loads itself (absolute paths). */
  get pumaEnvFiles(): string[] {
    return (this.server.pumaEnvFiles ?? []).map((file) => this.hostFile(file))
  }

  /** `unix://` with a relative path is relative to deploy_to, like the pidfile. */
  get controlUrl(): string | undefined {
    const url = this.server.controlUrl
    const path = url?.startsWith('unix://') ? url.slice('unix://'.length) : undefined
    if (path === undefined || path.startsWith('/') || path.startsWith('@')) return url
    return `unix://${posix.join(this.layout.deployTo, path)}`
  }

  /** The logs worth showing when a restart fails, given the config's stdout_redirect. */
  logs(stdoutRedirect: string | null): string[] {
    return pumaLogs(this.startLog, this.server.start, stdoutRedirect, this.layout.current)
  }

  private hostFile(file: string): string {
    return posix.isAbsolute(file) ? file : posix.join(this.layout.deployTo, file)
  }
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

/**
 * What every step of a restart (planning, signalling, verifying) works with on one host: PumaHost is
 * the one implementation; the steps take this so they can live in their own modules.
 */
export interface PumaContext {
  readonly session: HostSession
  readonly server: ServerSettings
  readonly config: DeployConfig
  readonly paths: PumaPaths
  /** What every wait of a restart polls with (poll.ts). */
  readonly clock: Clock
  /** One look at the running server and the given releases' configs. */
  probe(configDirs?: readonly string[], expectMaster?: MasterIdentity): Promise<ServerProbe>
  /** Probes until the master behind the pidfile is a running Puma or gone, waiting out a re-exec. */
  settledProbe(
    expected: MasterIdentity | undefined,
    deadlineMs: number,
    configDirs: readonly string[],
    signal?: AbortSignal,
  ): Promise<ServerProbe>
}
