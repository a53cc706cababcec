import type { DeployConfig } from '../config/types.js'
import { settleAll } from '../hosts/concurrency.js'
import { type TransportFactory, withSessions } from '../hosts/sessions.js'
import type { ForeignEntry } from '../release/host-state.js'
import { deriveStates, type ReleaseState } from '../release/states.js'

export interface ListedRelease {
  number: number
  revision: string
  /** ISO time the release was published. */
  time: string
  state: ReleaseState
  current: boolean
  /** Files changed on the server since the release was published (a hotfix), first 20. */
  modified?: string[]
}

export interface HostReleases {
  host: string
  deployTo: string
  current: number | null
  releases: ListedRelease[]
  /** Releases being built now, or left half-built by a killed run (`.N.partial`). */
  unfinished: number[]
  /** Releases whose delete did not finish (`.N.deleting`: files another user owns, or a killed prune). */
  deleting: number[]
  /** Entries of releases/ that are not deployer's (files, symlinks, other names): never touched. */
  foreign: ForeignEntry[]
  locked: boolean
  error?: string
}

/** `deployer releases`: each host's releases with revision, time and state. Read-only, takes no lock. */
export async function listReleases(config: DeployConfig, open?: TransportFactory): Promise<HostReleases[]> {
  return withSessions(
    config.hosts,
    async (sessions) => {
      const results = await settleAll(sessions, config.concurrency, async (session) => {
        const state = await session.inspect()
        const modified = await session.modifiedReleases(state.releases.map((release) => release.number))
        const states = new Map(
          deriveStates(
            state.releases.map((release) => release.number),
            state.current,
            state.history,
          ).map((info) => [info.number, info.state]),
        )
        const published = new Map<number, string>()
        for (const event of state.history)
          if (event.event === 'release') published.set(event.release, event.time)
        return {
          host: session.name,
          deployTo: session.layout.deployTo,
          current: state.current,
          unfinished: state.unfinished,
          deleting: state.deleting,
          foreign: state.foreign,
          locked: state.lock !== undefined,
          releases: state.releases.map((release) => ({
            number: release.number,
            revision: release.revision,
            time: published.get(release.number) ?? new Date(release.mtime * 1000).toISOString(),
            state: states.get(release.number) ?? 'previous',
            current: release.number === state.current,
            ...(modified.has(release.number) ? { modified: modified.get(release.number) } : {}),
          })),
        }
      })
      return results.map((entry, index) =>
        entry.status === 'fulfilled'
          ? entry.value
          : {
              host: sessions[index]?.name ?? '?',
              deployTo: sessions[index]?.layout.deployTo ?? '',
              current: null,
              releases: [],
              unfinished: [],
              deleting: [],
              foreign: [],
              locked: false,
              error: entry.reason instanceof Error ? entry.reason.message : String(entry.reason),
            },
      )
    },
    open,
  )
}

/** `deployer unlock`: breaks the deploy lock on the selected hosts, whoever holds it. */
export async function breakLocks(config: DeployConfig, open?: TransportFactory): Promise<string[]> {
  return withSessions(
    config.hosts,
    async (sessions) => {
      const results = await settleAll(sessions, config.concurrency, (session) => session.breakLock())
      const failure = results.find((entry) => entry.status === 'rejected')
      if (failure) throw (failure as PromiseRejectedResult).reason
      return sessions.map((session) => session.name)
    },
    open,
  )
}
