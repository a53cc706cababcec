import { readFileSync, readlinkSync } from 'node:fs'
import { hostname, userInfo } from 'node:os'
import type { Actor } from './history.js'
import type { ProcessIdentity } from './lock.js'

/** Who is running deployer, for the lock and the history: the user, this machine, and the CI run. */
export function currentActor(env: NodeJS.ProcessEnv = process.env): Actor {
  let user = env.USER ?? env.LOGNAME ?? 'unknown'
  try {
    user = userInfo().username
  } catch {
    // No passwd entry (some containers): the environment's name will do.
  }
  return { user, machine: hostname(), pid: process.pid, ci: ciRun(env) }
}

/** A link to (or the id of) the CI run, so a lock or a history line says which pipeline made it. */
export function ciRun(env: NodeJS.ProcessEnv): string | undefined {
  if (env.GITHUB_ACTIONS === 'true' && env.GITHUB_RUN_ID) {
    const server = env.GITHUB_SERVER_URL ?? 'https://github.com'
    return `${server}/${env.GITHUB_REPOSITORY ?? ''}/actions/runs/${env.GITHUB_RUN_ID}`
  }
  if (env.GITLAB_CI && env.CI_JOB_URL) return env.CI_JOB_URL
  if (env.BUILDKITE_BUILD_URL) return env.BUILDKITE_BUILD_URL
  if (env.CI === 'true' || env.CI === '1') return 'ci'
  return undefined
}

/** This process's identity for the lock (see ProcessIdentity); null where /proc is not there. */
export function readProcessIdentity(pid: number = process.pid): ProcessIdentity | null {
  try {
    const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
    const pidNamespace = readlinkSync('/proc/self/ns/pid')
    const startTicks = readStartTicks(pid)
    return bootId && startTicks !== null ? { bootId, pidNamespace, startTicks } : null
  } catch {
    return null
  }
}

/** When a pid of this namespace started (clock ticks after boot); null when no such process runs. */
export function readStartTicks(pid: number): number | null {
  if (!Number.isSafeInteger(pid) || pid <= 0) return null
  try {
    return parseStartTicks(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return null
  }
}

/** Field 22 of /proc/PID/stat; the command (field 2) may hold spaces and parentheses, so count from its end. */
export function parseStartTicks(stat: string): number | null {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const ticks = Number(fields[19])
  return Number.isSafeInteger(ticks) ? ticks : null
}
