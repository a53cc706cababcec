import { hostname } from 'node:os'
import type { HostConfig } from '../config/types.js'
import { DeployerError } from '../errors.js'
import type { Reporter } from '../progress.js'
import { readProcessIdentity, readStartTicks } from '../release/actor.js'
import type { Actor } from '../release/history.js'
import { describeHeldLock, judgeLockOwner, type LockOwner, newLockOwner } from '../release/lock.js'
import { openTransport } from '../transport/index.js'
import type { Transport } from '../transport/transport.js'
import { firstFailure, settleAll } from './concurrency.js'
import { HostSession, LockHeldError } from './host-session.js'

/** How a fleet operation reaches hosts; tests and embedders may pass their own. */
export type TransportFactory = (host: HostConfig) => Transport

/** Opens a session per host, runs `work`, and always closes every connection. */
export async function withSessions<T>(
  hosts: readonly HostConfig[],
  work: (sessions: HostSession[]) => Promise<T>,
  open: TransportFactory = openTransport,
): Promise<T> {
  const sessions = hosts.map((host) => new HostSession(host, open(host)))
  try {
    return await work(sessions)
  } finally {
    await Promise.allSettled(sessions.map((session) => session.close()))
  }
}

/**
 * Takes the deploy lock on every host, runs `work`, and releases the locks however `work` ends (also on
 * SIGINT/SIGTERM, which surface as an aborted run). When any host is locked by someone else, the locks
 * already taken are released again and the holder is reported.
 */
export async function withLocks<T>(
  sessions: readonly HostSession[],
  actor: Actor,
  command: string,
  reporter: Reporter,
  work: (owner: LockOwner) => Promise<T>,
  now: () => Date = () => new Date(),
  options: { readState?: boolean } = {},
): Promise<T> {
  const owner = newLockOwner(actor, command, now(), readProcessIdentity())
  const results = await settleAll(sessions, sessions.length, async (session) => {
    let outcome = await session.tryLock(owner, options)
    for (let attempt = 0; !outcome.acquired; attempt++) {
      const holder = outcome.holder
      const alive = holder ? isLockOwnerAlive(holder) : undefined
      const report = describeHeldLock(
        session.name,
        session.layout.deployTo,
        holder,
        now(),
        actor.machine,
        alive,
      )
      if (!report.stale || !holder || attempt > 0)
        throw new LockHeldError(session.name, report.message, report.hint, holder)
      // Taken on this machine by a process that no longer exists (a killed run): nobody can still be
      // working under it. Removed only while it still carries that run's token, then taken anew.
      await session.unlock(holder)
      reporter.emit({
        kind: 'warn',
        host: session.name,
        message: `broke a stale lock: ${report.message.replace(/^Host [^:]+: /, '')}`,
      })
      outcome = await session.tryLock(owner, options)
    }
    return session
  })
  const locked = results.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []))
  const failure = firstFailure(results)
  if (failure !== undefined) {
    await unlockAll(locked, owner, reporter)
    throw failure
  }
  try {
    return await work(owner)
  } finally {
    warnSessionNotes(locked, reporter)
    await unlockAll(locked, owner, reporter)
  }
}

/**
 * Says on each host what went differently without failing: copies where links were refused, history
 * events it could not write (which, why and what to do).
 */
function warnSessionNotes(sessions: readonly HostSession[], reporter: Reporter): void {
  for (const session of sessions)
    for (const message of session.warnings()) reporter.emit({ kind: 'warn', host: session.name, message })
}

async function unlockAll(
  sessions: readonly HostSession[],
  owner: LockOwner,
  reporter: Reporter,
): Promise<void> {
  const results = await settleAll(sessions, sessions.length, (session) => session.unlock(owner))
  results.forEach((result, index) => {
    if (result.status === 'rejected') {
      const name = sessions[index]?.name ?? '?'
      const reason = result.reason instanceof DeployerError ? result.reason.message : String(result.reason)
      reporter.emit({
        kind: 'warn',
        host: name,
        message: `could not release the lock (${reason}); break it with \`deployer unlock --host ${name}\`.`,
      })
    }
  })
}

/** Whether a lock's owner may still run; false only when provably gone (judgeLockOwner). */
export function isLockOwnerAlive(owner: LockOwner): boolean | undefined {
  return judgeLockOwner(
    owner,
    { machine: hostname(), process: readProcessIdentity() },
    readStartTicks(owner.pid),
  )
}
