/** The steps of one host's release, in order; progress output and timings use these names. */
export type Phase =
  | 'connect'
  | 'lock'
  | 'inspect'
  | 'prepare'
  | 'upload'
  | 'link'
  | 'install'
  | 'publish'
  | 'probe'
  | 'flip'
  | 'restart'
  | 'prune'
  | 'rollback'
  | 'unlock'

/** What the core reports while it works. The CLI decides how (or whether) to show it. */
export type ProgressEvent =
  | {
      kind: 'phase'
      host: string
      phase: Phase
      status: 'start' | 'done' | 'failed'
      ms?: number
      detail?: string
    }
  /** How far a long step is, e.g. bytes uploaded; sent at most a few times a second. */
  | { kind: 'progress'; host: string; phase: Phase; detail: string }
  | { kind: 'info' | 'warn'; host?: string; message: string }

export interface Reporter {
  emit(event: ProgressEvent): void
  /** Called once when the run is over (a terminal renderer draws its last frame). */
  close?(): Promise<void>
}

export const silentReporter: Reporter = { emit() {} }

/**
 * Runs `step` as a phase of `host`: reports its start, its end with the time it took, or its failure,
 * and returns the milliseconds spent so callers can keep per-phase timings.
 */
export async function timedPhase<T>(
  reporter: Reporter,
  host: string,
  phase: Phase,
  step: () => Promise<T>,
  describe?: (value: T) => string | undefined,
): Promise<{ value: T; ms: number }> {
  const started = performance.now()
  reporter.emit({ kind: 'phase', host, phase, status: 'start' })
  try {
    const value = await step()
    const ms = Math.round(performance.now() - started)
    reporter.emit({ kind: 'phase', host, phase, status: 'done', ms, detail: describe?.(value) })
    return { value, ms }
  } catch (error) {
    const ms = Math.round(performance.now() - started)
    reporter.emit({ kind: 'phase', host, phase, status: 'failed', ms })
    throw error
  }
}
