import { randomBytes } from 'node:crypto'
import type { Actor } from './history.js'

/** Written into `.deployer/lock/owner.json` by whoever holds the lock. */
export interface LockOwner extends Actor {
  /** Random per run: only the run that took the lock removes it. */
  token: string
  /** The deployer command holding it (`release`, `rollback`, `prune`). */
  command: string
  startedAt: string
}

export function newLockOwner(actor: Actor, command: string, now: Date): LockOwner {
  return { ...actor, token: randomBytes(12).toString('hex'), command, startedAt: now.toISOString() }
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

export function formatAge(seconds: number): string {
  if (seconds < 90) return `${seconds}s`
  if (seconds < 90 * 60) return `${Math.round(seconds / 60)} min`
  if (seconds < 36 * 3600) return `${Math.round(seconds / 3600)} h`
  return `${Math.round(seconds / 86400)} days`
}
