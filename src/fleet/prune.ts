import type { DeployConfig } from '../config/types.js'
import { DeployerError, ExitCode } from '../errors.js'
import { mayUseReleases, releaseOf } from '../guard/live-dirs.js'
import { settleAll } from '../hosts/concurrency.js'
import type { HostSession } from '../hosts/host-session.js'
import { type TransportFactory, withLocks, withSessions } from '../hosts/sessions.js'
import { type Holder, type PrunePlan, planPrune } from '../plan/prune-plan.js'
import type { Reporter } from '../progress.js'
import { timedPhase } from '../progress.js'
import type { Actor } from '../release/history.js'
import type { HostState } from '../release/host-state.js'
import { deriveStates } from '../release/states.js'
import { PumaHost } from '../restart/restart-host.js'
import { findRunningReleases } from '../restart/running-release.js'

export interface PruneOutcome {
  host: string
  /** Deleted (or, in a dry run, to be deleted). */
  removed: number[]
  kept: PrunePlan['kept']
  /** Processes whose cwd and maps this SSH user could not read: releases they use could not be seen. */
  hiddenProcesses: number
  /**
   * Releases renamed to `.N.deleting` but not fully deleted (files another user owns): out of the
   * release namespace, reported by `check`, left for someone with the rights.
   */
  stuck?: number[]
}

/**
 * Prunes one host whose lock the caller holds. The live-process scan runs right before the delete,
 * and releases kept only because a process uses them are reported with who holds them.
 */
export async function pruneHost(
  session: HostSession,
  state: HostState,
  keep: number,
  options: { dryRun: boolean; reporter: Reporter; actor: Actor; now: () => Date; puma?: PumaHost },
): Promise<PruneOutcome> {
  const { value } = await timedPhase(
    options.reporter,
    session.name,
    'prune',
    async () => {
      const infos = deriveStates(
        state.releases.map((release) => release.number),
        state.current,
        state.history,
      )
      // Holders can only keep releases, never add deletions: with nothing to delete, skip the /proc scan.
      const candidates = planPrune(infos, state.current, keep, new Map())
      if (candidates.remove.length === 0) {
        return { host: session.name, removed: [], kept: candidates.kept, hiddenProcesses: 0 }
      }
      const live = await session.liveDirs()
      if (options.puma) {
        const busy = await protectPumaReleases(options.puma, state, live.byRelease)
        if (busy) {
          options.reporter.emit({ kind: 'warn', host: session.name, message: `not pruning: ${busy}` })
          return { host: session.name, removed: [], kept: [], hiddenProcesses: live.hidden }
        }
      }
      // Another user's process could have its cwd in any release: nothing is proven unused while it runs.
      const unseen = mayUseReleases(live.unseen, [session.layout.deployTo, state.realDeployTo], live.path)
      const plan = planPrune(
        infos,
        state.current,
        keep,
        live.byRelease,
        unseen.map((process) => ({
          pid: process.pid,
          command: `${process.command} (user ${process.user || process.uid})`,
          via: 'unseen' as const,
          path: '?',
        })),
      )
      for (const kept of plan.kept.filter((entry) => entry.reason === 'in-use')) {
        options.reporter.emit({
          kind: 'warn',
          host: session.name,
          message: `keeping release ${kept.number} beyond keep=${keep}: in use by ${describeHolders(kept.holders)}.`,
        })
      }
      const unproven = plan.kept.filter((entry) => entry.reason === 'unproven').map((entry) => entry.number)
      if (unproven.length > 0) {
        const users = [...new Set(unseen.map((process) => process.user || String(process.uid)))].join(', ')
        options.reporter.emit({
          kind: 'warn',
          host: session.name,
          message: `keeping release${unproven.length === 1 ? '' : 's'} ${unproven.join(', ')} beyond keep=${keep}: ${unseen.length} process(es) of ${users} could not be inspected (${describeUnseen(unseen)}), so no release is proven unused. Deploy as the user that runs the app, or let this SSH user run \`sudo -n\`${live.escalated ? '' : ' (it cannot now)'}.`,
        })
      } else if (live.hidden > 0) {
        options.reporter.emit({
          kind: 'info',
          host: session.name,
          message: `${live.hidden} process(es) of root could not be inspected (their /proc entries are not readable by this SSH user); their command lines do not name ${session.layout.deployTo}.`,
        })
      }
      const { removed, stuck } = options.dryRun
        ? { removed: plan.remove, stuck: [] as number[] }
        : await session.removeReleases(plan.remove)
      if (stuck.length > 0) {
        options.reporter.emit({
          kind: 'warn',
          host: session.name,
          message: `release${stuck.length === 1 ? '' : 's'} ${stuck.join(', ')} could not be fully deleted (files this SSH user may not remove): left as ${stuck.map((number) => `releases/.${number}.deleting`).join(', ')} for someone with the rights; later releases go on.`,
        })
      }
      if (!options.dryRun && removed.length > 0) {
        await session.record({
          event: 'prune',
          deleted: removed,
          time: options.now().toISOString(),
          by: options.actor,
        })
      }
      return { host: session.name, removed, kept: plan.kept, hiddenProcesses: live.hidden, stuck }
    },
    (outcome) => (outcome.removed.length > 0 ? `removed ${outcome.removed.join(', ')}` : 'nothing to remove'),
  )
  return value
}

/**
 * Adds what /proc alone cannot show: the release the master loaded its config from and the one it
 * booted from (a pruned master re-execs from it, F5). Returns a reason not to prune at all while a
 * phased restart is still draining old workers (F4, F28).
 */
async function protectPumaReleases(
  puma: PumaHost,
  state: HostState,
  holders: Map<number, Holder[]>,
): Promise<string | null> {
  const probe = await puma.probe()
  if ((probe.stats?.oldWorkers ?? 0) > 0)
    return `a phased restart is in progress (${probe.stats?.oldWorkers} old workers still running)`
  const master = probe.master
  // A master in the middle of a hot restart shows no proctitle, cwd or stats yet: what it will load is
  // unknown for that moment, so nothing is proven unused.
  if (master.settling) return `Puma's master (pid ${master.pid}) is restarting`
  if (!master.running || master.pid === null) return null
  const cwdRelease =
    master.cwd && state.realDeployTo ? releaseOf(`${state.realDeployTo}/releases`, master.cwd) : null
  const running = findRunningReleases(state.history, probe.stats?.startedAt ?? null, cwdRelease)
  for (const release of running.protect) {
    const list = holders.get(release) ?? []
    list.push({
      pid: master.pid,
      via: 'boot',
      path: `releases/${release}`,
      command: 'puma master (config and boot release)',
    })
    holders.set(release, list)
  }
  return null
}

function describeUnseen(unseen: readonly { pid: number; command: string }[]): string {
  return unseen
    .slice(0, 3)
    .map((process) => `pid ${process.pid} \`${process.command.slice(0, 60)}\``)
    .join(', ')
}

export function describeHolders(holders: readonly Holder[]): string {
  return holders
    .slice(0, 5)
    .map((holder) => `pid ${holder.pid} (${holder.command || '?'}) via ${holder.via} ${holder.path}`)
    .join('; ')
}

export interface PruneOptions {
  keep: number
  dryRun: boolean
  reporter: Reporter
  actor: Actor
  now?: () => Date
  open?: TransportFactory
}

/** `deployer prune`: on every host, under the lock, delete releases beyond `keep` that nobody uses. */
export async function runPrune(config: DeployConfig, options: PruneOptions): Promise<PruneOutcome[]> {
  if (!Number.isSafeInteger(options.keep) || options.keep < 1) {
    throw new DeployerError(
      `--keep must be at least 1 (got ${options.keep}): the current release is always kept.`,
      {
        exitCode: ExitCode.usage,
        hint: 'Use `--keep 1` to keep only the current release.',
      },
    )
  }
  const now = options.now ?? (() => new Date())
  return withSessions(
    config.hosts,
    async (sessions) => {
      const prune = () =>
        settleAll(sessions, config.concurrency, async (session) => {
          const state = await session.inspect()
          const puma = config.server ? new PumaHost(session, config) : undefined
          return pruneHost(session, state, options.keep, { ...options, now, puma })
        })
      const results = options.dryRun
        ? await prune()
        : await withLocks(sessions, options.actor, 'prune', options.reporter, prune, now)
      const failure = results.find((result) => result.status === 'rejected')
      if (failure) throw (failure as PromiseRejectedResult).reason
      return results.map((result) => (result as PromiseFulfilledResult<PruneOutcome>).value)
    },
    options.open,
  )
}
