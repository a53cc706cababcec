import { randomBytes } from 'node:crypto'
import { formatAge } from '../format.js'
import type { Actor } from './history.js'

/** Written into `.deployer/lock/owner.json` by whoever holds the lock. */
export interface LockOwner extends Actor {
  /** Random per run: only the run that took the lock removes it. */
  token: string
  /** The deployer command holding it (`release`, `rollback`, `prune`). */
  command: string
  startedAt: string
  /**
   * Who exactly holds it: host name and pid repeat across containers and cloned VMs, so a lock is
   * judged by the kernel's boot id, the pid namespace and the process's start time as well.
   */
  process?: ProcessIdentity
}

/** A process, told apart from every other that had (or will have) its pid. */
export interface ProcessIdentity {
  /** /proc/sys/kernel/random/boot_id: changes at every boot, differs between VMs. */
  bootId: string
  /** readlink /proc/self/ns/pid: differs between containers sharing one kernel. */
  pidNamespace: string
  /** Field 22 of /proc/PID/stat (clock ticks after boot): a reused pid has another. */
  startTicks: number
}

export function newLockOwner(
  actor: Actor,
  command: string,
  now: Date,
  process?: ProcessIdentity | null,
): LockOwner {
  return {
    ...actor,
    token: randomBytes(12).toString('hex'),
    command,
    startedAt: now.toISOString(),
    ...(process ? { process } : {}),
  }
}

/**
 * Whether a lock's owner still runs, as far as this machine can prove: false only when the owner ran
 * in this very kernel and pid namespace and its pid is gone or now names a process that started at
 * another time. Anything else (another machine, a container or VM with the same host name, an owner
 * without an identity) is undefined: the owner may be alive, and its lock is never broken by itself.
 */
export function judgeLockOwner(
  owner: LockOwner,
  here: { machine: string; process: ProcessIdentity | null },
  startTicksOfPid: number | null,
): boolean | undefined {
  if (owner.machine !== here.machine || !owner.process || !here.process) return undefined
  if (owner.process.bootId !== here.process.bootId) return undefined
  if (owner.process.pidNamespace !== here.process.pidNamespace) return undefined
  if (startTicksOfPid === null) return false
  return startTicksOfPid === owner.process.startTicks
}

/** What a held lock means for the user: who holds it, for how long, and whether it looks abandoned. */
export interface LockReport {
  message: string
  hint: string
  stale: boolean
}

/**
 * Describes a lock held by someone else. A lock whose owner ran on this machine with a pid that is gone
 * is certainly stale; one from another machine can only be judged by its age, so the user decides.
 */
export function describeHeldLock(
  host: string,
  deployTo: string,
  owner: LockOwner | null,
  now: Date,
  localMachine: string,
  ownerAlive: boolean | undefined,
): LockReport {
  const unlock = `deployer unlock --host ${host}`
  if (!owner) {
    return {
      message: `Host ${host}: ${deployTo} is locked, but the lock names no owner (it is being taken right now, or a run died while taking it).`,
      hint: `Wait a few seconds and try again; if it stays locked, break the lock with \`${unlock}\`.`,
      stale: false,
    }
  }
  const ageSeconds = Math.max(0, Math.round((now.getTime() - Date.parse(owner.startedAt)) / 1000))
  const who = `${owner.user}@${owner.machine} (pid ${owner.pid}, deployer ${owner.command}${owner.ci ? `, ${owner.ci}` : ''})`
  const since = `since ${owner.startedAt} (${formatAge(ageSeconds)} ago)`
  const sameMachine = owner.machine === localMachine
  if (sameMachine && ownerAlive === false) {
    return {
      message: `Host ${host}: ${deployTo} is locked by ${who} ${since}, and that process is no longer running: the lock is stale.`,
      hint: `Break it with \`${unlock}\`, then run the command again.`,
      stale: true,
    }
  }
  return {
    message: `Host ${host}: ${deployTo} is locked by ${who} ${since}.`,
    hint: `Wait for that run to finish. If you are sure it is dead, break the lock with \`${unlock}\`.`,
    stale: false,
  }
}
