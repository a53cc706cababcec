import { hostname, userInfo } from 'node:os'
import type { Actor } from './history.js'

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
