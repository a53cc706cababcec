import type { DeployConfig, Strategy } from '../config/types.js'
import type { Phase } from '../progress.js'
import type { HostState } from '../release/host-state.js'
import { deriveStates } from '../release/states.js'
import type { RestartDecision } from '../restart/decide.js'
import { planPrune } from './prune-plan.js'

/**
 * How Puma will be restarted on a host: `predicted` by a dry run (from the source's fingerprints and
 * what the running master loaded; the new puma.rb itself is evaluated on the host only after the
 * upload, so a changed bind can still turn it into a full restart), or `after-upload`, decided by the
 * probe step of the run before anything is published.
 */
export type PlannedRestart = { when: 'predicted'; decision: RestartDecision } | { when: 'after-upload' }

/** What one host will go through. */
export interface HostPlan {
  host: string
  deployTo: string
  /** The release `current` points at now (null on a new host). */
  current: number | null
  /** The release unchanged files are hard-linked from; null: every file is sent. */
  reuseFrom: number | null
  /** The steps this host runs, in order (the keys of its `timings` once done). */
  steps: Phase[]
  /** Absent without a `server:` section. */
  restart?: PlannedRestart
  /** The releases prune removes once this one is live; fewer when a process still uses one. */
  prune: number[]
}

/** A release, decided before anything changes: `--dry-run` prints it, `--json` returns it, the run executes it. */
export interface ReleasePlan {
  app: string
  release: number
  revision: string
  strategy: Strategy
  onFailure: 'rollback' | 'stop'
  /** Host names per wave: a wave goes live together, the next starts once every host of it is verified. */
  waves: string[][]
  hosts: HostPlan[]
}

export interface PlanInput {
  config: DeployConfig
  release: number
  revision: string
  hosts: readonly { name: string; deployTo: string; state: HostState }[]
  /** The rollout's waves as host indices (fleet/waves.ts planWaves). */
  waves: readonly (readonly number[])[]
  /** Per host, a dry run's predicted decision; absent: decided after the upload. */
  predicted?: readonly (RestartDecision | null)[]
}

/** The plan of release `input.release` over hosts read under the lock (or, for a dry run, without it). */
export function planRelease(input: PlanInput): ReleasePlan {
  const { config, release } = input
  const steps: Phase[] = ['prepare', 'upload', 'link']
  if (config.install) steps.push('install')
  if (config.server) steps.push('probe')
  steps.push('publish')
  if (config.server) steps.push('restart')
  const waves = input.waves.map((wave) => wave.map((index) => input.hosts[index]?.name ?? ''))
  return {
    app: config.app,
    release,
    revision: input.revision,
    strategy: config.strategy,
    onFailure: config.onFailure,
    waves,
    hosts: input.hosts.map((host, index) => {
      const predicted = input.predicted?.[index]
      return {
        host: host.name,
        deployTo: host.deployTo,
        current: host.state.current,
        reuseFrom: reuseFrom(host.state),
        steps,
        ...(config.server
          ? {
              restart: predicted
                ? { when: 'predicted' as const, decision: predicted }
                : { when: 'after-upload' as const },
            }
          : {}),
        prune: pruneAfter(host.state, release, config.keepReleases),
      }
    }),
  }
}

/** The release a repeat release reuses files from: the live one, else the newest published. */
export function reuseFrom(state: HostState): number | null {
  if (state.current !== null && state.releases.some((release) => release.number === state.current))
    return state.current
  return state.releases.at(-1)?.number ?? null
}

/** What prune would remove once `release` is published and current, before looking at processes. */
function pruneAfter(state: HostState, release: number, keep: number): number[] {
  const numbers = [...state.releases.map((entry) => entry.number), release]
  return planPrune(deriveStates(numbers, release, state.history), release, keep, new Map()).remove
}

/** The plan's waves as host indices, in the order of `names` (the sessions). */
export function waveIndices(plan: ReleasePlan, names: readonly string[]): number[][] {
  return plan.waves.map((wave) => wave.map((name) => names.indexOf(name)))
}
