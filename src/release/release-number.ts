/** What one host knows about numbers already used. */
export interface NumberingReport {
  host: string
  /** Published releases, partial ones and ones being deleted. */
  seen: readonly number[]
  /** The highest number ever handed out there (`.deployer/sequence`), which survives pruning. */
  sequence: number | null
}

/**
 * The next release number: one above anything any host has ever used, so a release has the same
 * number everywhere and a number is never reused, even after the release it named was pruned.
 */
export function nextReleaseNumber(reports: readonly NumberingReport[]): number {
  let highest = 0
  for (const report of reports) {
    for (const number of report.seen) highest = Math.max(highest, number)
    if (report.sequence !== null) highest = Math.max(highest, report.sequence)
  }
  return highest + 1
}
