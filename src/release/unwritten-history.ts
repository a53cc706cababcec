import { diskFullError } from '../errors.js'
import { quote } from '../transport/quote.js'
import type { HistoryEvent } from './history.js'

/**
 * A history event that could not be appended. Every event is appended after the host already changed
 * (a flip, a restart, a delete), so a failed append never undoes or fails that change: the host stays
 * the truth (`current`, releases/ and Puma, which every command reads back), and the missing lines are
 * reported instead of being mistaken for a failed step.
 */
export interface UnwrittenEvent {
  event: HistoryEvent
  /** What the append printed (the shell's or cat's error), trimmed. */
  reason: string
}

/** `release 4`, `restart 4 (phased)`, `failed 4`, `rollback 4 -> 3`, `prune 1, 2`. Pure. */
export function describeEvent(event: HistoryEvent): string {
  switch (event.event) {
    case 'release':
      return `release ${event.release}`
    case 'restart':
      return `restart ${event.release} (${event.kind})`
    case 'failed':
      return `failed ${event.release}`
    case 'rollback':
      return `rollback ${event.from ?? 'none'} -> ${event.to}`
    case 'prune':
      return `prune ${event.deleted.join(', ')}`
  }
}

/**
 * The warning for events a host's history lacks: which, why, what stays right and what to do. A
 * release that failed but is not marked so is named, since only the history says it failed. Pure.
 */
export function describeUnwritten(
  deployTo: string,
  history: string,
  unwritten: readonly UnwrittenEvent[],
): string {
  const reasons = [...new Set(unwritten.map((entry) => entry.reason.split('\n')[0] || 'unknown error'))]
  const full = unwritten.map((entry) => diskFullError(entry.reason)).find((found) => found !== null)
  const lines = [
    `the history ${history} could not be written (${reasons.join('; ')}); it lacks ${unwritten.length} event${unwritten.length === 1 ? '' : 's'}: ${unwritten.map((entry) => describeEvent(entry.event)).join(', ')}.`,
    'What is live is as reported (current, releases/ and Puma are read from the host, not from the history).',
  ]
  const failed = unwritten.flatMap((entry) => (entry.event.event === 'failed' ? [entry.event.release] : []))
  if (failed.length > 0)
    lines.push(
      `Release ${failed.join(', ')} failed but is not marked so: do not roll back to it with \`deployer rollback --to\`.`,
    )
  lines.push(
    full
      ? `Free space on that disk (\`df -h ${quote(deployTo)}\` on the host; \`deployer prune --keep N\` deletes old releases) before the next run.`
      : `Make ${history} writable by the SSH user before the next run.`,
  )
  return lines.join(' ')
}

/**
 * Adds each session's warnings (copies where links were refused, history it could not write) to its
 * host's outcome (outcomes in session order), so `--json` carries them beside what is live.
 */
export function attachSessionWarnings(
  sessions: readonly { warnings(): string[] }[],
  outcomes: readonly { warnings?: string[] }[],
): void {
  sessions.forEach((session, index) => {
    const warnings = session.warnings()
    const outcome = outcomes[index]
    if (warnings.length > 0 && outcome) outcome.warnings = [...(outcome.warnings ?? []), ...warnings]
  })
}
