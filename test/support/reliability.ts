import { appendFile } from 'node:fs/promises'

/**
 * One case of the fault and hostile-input suite, as docs/reliability.md lists it. Tests call
 * `recordCase` after their assertions passed, so a recorded case is an observed one; with
 * DEPLOYER_RELIABILITY_LOG set (npm run test:faults does), each case is appended there as a JSON line
 * and `scripts/reliability-report.ts` renders the table from it.
 */
export interface ReliabilityCase {
  /** `fault` (something breaks during a run) or `input` (bad or hostile input). */
  kind: 'fault' | 'input'
  /** Short group name, e.g. `kill during a phase`, `remote shell quoting`. */
  group: string
  /** What was done, e.g. `SIGKILL during upload`. */
  name: string
  /** What deployer must do. */
  expected: string
  /** What the test saw (exit code, state of current, requests failed...). */
  observed: string
  /** Requests that failed while Puma served under load during the case (when there was load). */
  failedRequests?: number
  /** Files or releases lost or damaged: the suite's claim is that this is always 0. */
  dataLost?: number
}

export async function recordCase(entry: ReliabilityCase): Promise<void> {
  const log = process.env.DEPLOYER_RELIABILITY_LOG
  if (!log) return
  await appendFile(log, `${JSON.stringify({ dataLost: 0, ...entry })}\n`)
}
