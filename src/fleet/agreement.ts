import { DeployerError, ExitCode } from '../errors.js'

/** What one host said about its releases, as far as agreement goes. */
export interface HostReleases {
  host: string
  current: number | null
  /** Published release numbers. */
  releases: readonly number[]
}

export interface Agreement {
  agree: boolean
  /** Hosts with nothing deployed yet: they join the fleet with this release. */
  fresh: string[]
  /** One line per host that differs from the majority, naming what differs. */
  problems: string[]
}

/**
 * Whether the hosts agree on what is deployed, before a release changes any of them. They must have
 * the same `current` and the same releases from the oldest `current` on; older releases may differ,
 * since prune keeps a release a live process still uses on one host and not on another. Hosts with
 * nothing deployed are new to the fleet and always agree. The majority view is the reference, so the
 * report names the odd host out rather than every host.
 */
export function checkAgreement(reports: readonly HostReleases[]): Agreement {
  const fresh = reports.filter((report) => report.current === null && report.releases.length === 0)
  const deployed = reports.filter((report) => !fresh.includes(report))
  const agreement: Agreement = { agree: true, fresh: fresh.map((report) => report.host), problems: [] }
  if (deployed.length < 2) return agreement

  const currents = deployed.map((report) => report.current).filter((current) => current !== null)
  const floor = currents.length > 0 ? Math.min(...currents) : 0
  const recent = (report: HostReleases) =>
    [...report.releases]
      .filter((release) => release >= floor)
      .sort((a, b) => a - b)
      .join(',')
  const view = (report: HostReleases) => `${report.current ?? 'none'}|${recent(report)}`
  const reference = majority(deployed.map(view))
  const [refCurrent = 'none', refReleases = ''] = reference.split('|')
  for (const report of deployed) {
    if (view(report) === reference) continue
    const differences: string[] = []
    if (String(report.current ?? 'none') !== refCurrent)
      differences.push(`current is ${report.current ?? 'not set'}, not ${refCurrent}`)
    const mine = recent(report)
    if (mine !== refReleases) differences.push(...describeSetDifference(mine, refReleases))
    agreement.problems.push(`${report.host}: ${differences.join('; ')}`)
  }
  agreement.agree = agreement.problems.length === 0
  return agreement
}

/** The most common value; on a tie, the first one seen. */
function majority(values: readonly string[]): string {
  const counts = new Map<string, number>()
  for (const value of values) counts.set(value, (counts.get(value) ?? 0) + 1)
  let best = values[0] ?? ''
  for (const [value, count] of counts) if (count > (counts.get(best) ?? 0)) best = value
  return best
}

function describeSetDifference(mine: string, reference: string): string[] {
  const have = new Set(mine.split(',').filter(Boolean))
  const want = new Set(reference.split(',').filter(Boolean))
  const missing = [...want].filter((release) => !have.has(release))
  const extra = [...have].filter((release) => !want.has(release))
  return [
    ...(missing.length > 0 ? [`missing release ${missing.join(', ')}`] : []),
    ...(extra.length > 0 ? [`has release ${extra.join(', ')} the others do not`] : []),
  ]
}

/** The hosts do not agree on what is deployed: nothing was changed. */
export class DisagreementError extends DeployerError {
  readonly problems: string[]
  constructor(problems: string[]) {
    super(`The hosts do not agree on what is deployed; nothing was changed:\n  ${problems.join('\n  ')}`, {
      exitCode: ExitCode.disagreement,
      hint: 'Bring the odd hosts in line first: `deployer rollback --to N --host NAME` for a host on another current, or `deployer release --host NAME` for a host that missed a release. `deployer releases` shows every host.',
    })
    this.problems = problems
  }
}
