import type { HistoryEvent } from './history.js'
import { parseHistory } from './history.js'
import { releaseFromTarget } from './layout.js'
import type { LockOwner } from './lock.js'

export interface PublishedRelease {
  number: number
  revision: string
  /** When the release directory was published (seconds since the epoch, from its mtime). */
  mtime: number
}

/** An entry of `releases/` that deployer did not make, with what it is. */
export interface ForeignEntry {
  name: string
  type: 'file' | 'dir' | 'symlink' | 'other'
}

/** What one host reported about its `deploy_to`: the input of every decision. */
export interface HostState {
  exists: boolean
  /** deploy_to with symlinks resolved: what `/proc/PID/cwd` of a process inside it shows. */
  realDeployTo: string | null
  /** The raw `current` target, and the release it names (null when it names none). */
  currentTarget: string | null
  current: number | null
  /** `current` exists but is not a symlink: deployer will not replace it. */
  currentIsNotLink: boolean
  releases: PublishedRelease[]
  /** Numbers of `.N.partial` and `.N.deleting` entries (left by a killed run, or being built now). */
  unfinished: number[]
  /**
   * Numbers of `.N.deleting` entries: releases whose delete did not finish (a killed prune, or files
   * another user owns that the SSH user cannot remove).
   */
  deleting: number[]
  /**
   * Entries of `releases/` that are not deployer's: files, symlinks, directories not named by a number
   * (`7` as a file, `8` as a symlink, `tmp`, `3~`, `.4.swp`). Never counted, kept, pruned or rolled back to.
   */
  foreign: ForeignEntry[]
  sequence: number | null
  /** `undefined`: not locked; `null`: locked, owner unreadable. */
  lock: LockOwner | null | undefined
  history: HistoryEvent[]
}

/** Parses the tagged lines printed by inspectCommand. */
export function parseHostState(output: string): HostState {
  const state: HostState = {
    exists: true,
    realDeployTo: null,
    currentTarget: null,
    current: null,
    currentIsNotLink: false,
    releases: [],
    unfinished: [],
    deleting: [],
    foreign: [],
    sequence: null,
    lock: undefined,
    history: [],
  }
  const historyLines: string[] = []
  for (const line of output.split('\n')) {
    const [tag, ...fields] = line.split('\t')
    switch (tag) {
      case 'absent':
        state.exists = false
        break
      case 'real':
        state.realDeployTo = fields.join('\t') || null
        break
      case 'current':
        state.currentTarget = fields.join('\t')
        state.current = releaseFromTarget(state.currentTarget)
        break
      case 'current-not-link':
        state.currentIsNotLink = true
        break
      case 'sequence': {
        const value = Number.parseInt(fields[0] ?? '', 10)
        state.sequence = Number.isSafeInteger(value) && value > 0 ? value : null
        break
      }
      case 'lock':
        state.lock = parseLockOwner(Buffer.from(fields[0] ?? '', 'base64').toString('utf8'))
        break
      case 'release': {
        const number = Number(fields[0])
        if (Number.isSafeInteger(number) && number > 0) {
          state.releases.push({ number, mtime: Number(fields[1]) || 0, revision: (fields[2] ?? '').trim() })
        }
        break
      }
      case 'other': {
        const match = /^\.([1-9]\d*)\.(partial|deleting)$/.exec(fields[0] ?? '')
        if (match) {
          state.unfinished.push(Number(match[1]))
          if (match[2] === 'deleting') state.deleting.push(Number(match[1]))
        } else if (fields[0]) state.foreign.push({ name: fields[0], type: 'dir' })
        break
      }
      case 'foreign': {
        const type = fields[0]
        const name = fields.slice(1).join('\t')
        if (name)
          state.foreign.push({
            name,
            type: type === 'file' || type === 'dir' || type === 'symlink' ? type : 'other',
          })
        break
      }
      case 'history':
        historyLines.push(fields.join('\t'))
        break
    }
  }
  state.releases.sort((a, b) => a.number - b.number)
  state.history = parseHistory(historyLines.join('\n'))
  return state
}

/** Reads a lock's owner.json; null when it is empty or torn (a run died while taking the lock). */
export function parseLockOwner(text: string): LockOwner | null {
  try {
    const value = JSON.parse(text) as LockOwner
    return value && typeof value.token === 'string' ? value : null
  } catch {
    return null
  }
}
