import { formatMs } from '../format.js'
import type { Phase, ProgressEvent } from '../progress.js'

/** One host's progress as a terminal shows it: a title line and the steps done so far. */
export interface HostProgress {
  host: string
  /** The step running now, with its live detail (bytes sent). */
  running?: { phase: Phase; detail?: string }
  done: { phase: Phase; ms: number; failed: boolean }[]
  /** Warnings and the last detail of each finished step, in order. */
  notes: string[]
  failed: boolean
}

export function newHostProgress(host: string): HostProgress {
  return { host, done: [], notes: [], failed: false }
}

/** Folds one event into a host's progress; pure, so the terminal renderer only draws. */
export function applyProgress(progress: HostProgress, event: ProgressEvent): HostProgress {
  if (event.kind === 'progress') return { ...progress, running: { phase: event.phase, detail: event.detail } }
  if (event.kind !== 'phase') {
    const note = event.kind === 'warn' ? `warning: ${event.message}` : event.message
    return { ...progress, notes: [...progress.notes, note] }
  }
  if (event.status === 'start') return { ...progress, running: { phase: event.phase } }
  const failed = event.status === 'failed'
  return {
    ...progress,
    running: undefined,
    failed: progress.failed || failed,
    done: [...progress.done, { phase: event.phase, ms: event.ms ?? 0, failed }],
    notes: event.detail ? [...progress.notes, `${event.phase}: ${event.detail}`] : progress.notes,
  }
}

/** `web1  upload 12.0 MiB of 57.0 MiB` while running; `web1  done in 3.4s` at the end. */
export function progressTitle(progress: HostProgress, finished: boolean): string {
  const total = progress.done.reduce((sum, step) => sum + step.ms, 0)
  if (finished) return `${progress.host}  ${progress.failed ? 'failed' : 'done'} in ${formatMs(total)}`
  if (!progress.running) return progress.host
  const detail = progress.running.detail ? ` ${progress.running.detail}` : '…'
  return `${progress.host}  ${progress.running.phase}${detail}`
}

/** `upload 1.2s · install 0.4s · publish 12ms`, a failed step marked. */
export function progressSteps(progress: HostProgress): string {
  return progress.done
    .map((step) => `${step.phase} ${formatMs(step.ms)}${step.failed ? ' FAILED' : ''}`)
    .join(' · ')
}
