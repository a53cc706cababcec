import type { HostCheck } from '../check/findings.js'
import type { HostReleases } from '../fleet/list.js'
import type { PruneOutcome } from '../fleet/prune.js'
import type { HostReleaseOutcome } from '../fleet/release.js'
import type { RollbackOutcome } from '../fleet/rollback.js'
import type { ActionCommand, ErrorInfo } from './inputs.js'

export type { ErrorInfo } from './inputs.js'

/**
 * What `deployer COMMAND --json` prints: the command's result, or `{ ok: false, error }` when it failed
 * before having one. `release` keeps its result on failure and puts the error message in `error`.
 */
export interface CliJson {
  ok: boolean
  error?: string | ErrorInfo
  dryRun?: boolean
  app?: string
  release?: number
  revision?: string
  files?: number
  bytes?: number
  hosts?: unknown[]
}

/** The hosts of a result, typed by the command that printed it. */
export type HostsOf<C extends ActionCommand> = {
  release: HostReleaseOutcome
  rollback: RollbackOutcome
  prune: PruneOutcome
  releases: HostReleases
  check: HostCheck
}[C]

export function hostsOf<C extends ActionCommand>(json: CliJson, _command: C): HostsOf<C>[] {
  return (Array.isArray(json.hosts) ? json.hosts : []) as HostsOf<C>[]
}

/** The failure the result reports as a whole, if any. */
export function resultError(json: CliJson): ErrorInfo | undefined {
  if (typeof json.error === 'string') return { message: json.error }
  return json.error
}

/** The action's outputs, as GitHub will hand them to later steps. */
export type ActionOutputs = {
  /** The release deployed, rolled back to, or current everywhere; empty when there is no one number. */
  release: string
  /** JSON object: host name → restart kind, for hosts that had one. */
  restarts: string
  /** `true` when Puma and `current` went back to an older release: after a failed release, or by `rollback`. */
  'rolled-back': 'true' | 'false'
  /** The whole `--json` result. */
  result: string
}

/** The outputs for a run of `command`; undefined when the inputs did not even name a valid one. */
export function actionOutputs(command: ActionCommand | undefined, json: CliJson): ActionOutputs {
  return {
    release: String(releaseNumber(command, json) ?? ''),
    restarts: JSON.stringify(restarts(command, json)),
    'rolled-back': rolledBack(command, json) ? 'true' : 'false',
    result: JSON.stringify(json),
  }
}

function releaseNumber(command: ActionCommand | undefined, json: CliJson): number | undefined {
  const agreed = (numbers: (number | null | undefined)[]) => {
    const unique = [...new Set(numbers)]
    return unique.length === 1 && typeof unique[0] === 'number' ? unique[0] : undefined
  }
  switch (command) {
    case 'release':
      // 0 means the run stopped before the hosts agreed on a number.
      return json.release ? json.release : undefined
    case 'rollback':
      return agreed(hostsOf(json, command).map((host) => host.to))
    case 'releases':
      return agreed(hostsOf(json, command).map((host) => host.current))
    default:
      return undefined
  }
}

function restarts(command: ActionCommand | undefined, json: CliJson): Record<string, string> {
  const hosts: { host: string; restart?: { kind: string } }[] =
    command === 'release'
      ? hostsOf(json, command)
      : command === 'rollback'
        ? hostsOf(json, command).filter((host) => host.done)
        : []
  return Object.fromEntries(
    hosts.flatMap((host) => (host.restart ? [[host.host, host.restart.kind] as const] : [])),
  )
}

function rolledBack(command: ActionCommand | undefined, json: CliJson): boolean {
  if (command === 'release') return hostsOf(json, command).some((host) => host.status === 'rolled-back')
  if (command === 'rollback') return !json.dryRun && hostsOf(json, command).some((host) => host.done)
  return false
}

/**
 * The result for a deployer run that printed no JSON: oclif's own errors (an unknown flag in `args`)
 * and crashes go to stderr as text. The `Error:` line is the message; without one, the last lines of
 * stderr are kept as the error's output.
 */
export function resultFromStderr(exitCode: number, stderr: string): CliJson {
  const lines = stderr
    .replace(/\x1b\[[0-9;]*m/g, '')
    .split('\n')
    .map((line) => line.replace(/^\s*›\s*/, '').trimEnd())
  const errorLine = lines.find((line) => /^\s*Error: /.test(line))
  const hint = 'See the deployer output in the log of this step.'
  if (errorLine)
    return { ok: false, error: { message: errorLine.replace(/^\s*Error: /, ''), hint, exitCode } }
  const output = lines
    .filter((line) => line.trim() !== '')
    .slice(-20)
    .join('\n')
  return {
    ok: false,
    error: {
      message: `deployer exited with code ${exitCode} without printing a result.`,
      hint,
      exitCode,
      ...(output ? { output } : {}),
    },
  }
}
