import type { HostCheck, Severity } from '../check/findings.js'
import type { CheckResult } from '../check/run-check.js'
import { count, formatBytes } from '../format.js'

const LABEL: Record<Severity, string> = { ok: 'ok', info: 'info', warning: 'warning', blocking: 'BLOCKING' }

/** `deployer check`'s report: per host, one line per finding with its hint below, then a summary. */
export function renderCheck(result: CheckResult): string {
  const lines: string[] = []
  const source = result.source
  lines.push(
    source.error
      ? `Source ${source.path}: could not be read (${source.error.split('\n')[0]}); disk space is checked without the release size.`
      : `Source ${source.path}: ${formatBytes(source.bytes ?? 0)} in ${count(source.entries ?? 0, 'entry', 'entries')}.`,
  )
  const width = Math.max(
    0,
    ...result.hosts.flatMap((host) => host.findings.map((finding) => finding.check.length)),
  )
  for (const host of result.hosts) {
    lines.push('', `${host.host} (${host.deployTo}): ${verdict(host)}`)
    for (const finding of host.findings) {
      const [first = '', ...rest] = finding.message.split('\n')
      const prefix = `  ${LABEL[finding.severity].padEnd(8)}  ${finding.check.padEnd(width)}  `
      lines.push(`${prefix}${first}`, ...rest.map((line) => `${' '.repeat(prefix.length)}${line}`))
      if (finding.hint && finding.severity !== 'ok')
        lines.push(`${' '.repeat(prefix.length)}hint: ${finding.hint}`)
    }
  }
  lines.push('', summary(result.hosts))
  return lines.join('\n')
}

function verdict(host: HostCheck): string {
  if (!host.reachable) return 'UNREACHABLE'
  if (host.status === 'blocking') return 'BLOCKED: a release would fail here'
  if (host.status === 'warning') return 'ready, with warnings'
  return 'ready'
}

function summary(hosts: readonly HostCheck[]): string {
  const names = (list: HostCheck[]) =>
    list.length > 0 ? ` (${list.map((host) => host.host).join(', ')})` : ''
  const unreachable = hosts.filter((host) => !host.reachable)
  const blocked = hosts.filter((host) => host.reachable && host.status === 'blocking')
  const ready = hosts.length - unreachable.length - blocked.length
  const warnings = hosts
    .flatMap((host) => host.findings)
    .filter((finding) => finding.severity === 'warning').length
  const parts = [`${ready} ready`]
  if (blocked.length > 0) parts.push(`${blocked.length} blocked${names(blocked)}`)
  if (unreachable.length > 0) parts.push(`${unreachable.length} unreachable${names(unreachable)}`)
  return `${count(hosts.length, 'host')} checked: ${parts.join(', ')}; ${count(warnings, 'warning')}.`
}
