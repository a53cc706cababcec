import { describeHolders } from '../fleet/prune.js'
import { formatBytes } from '../format.js'
import type { ActionCommand } from './inputs.js'
import { type CliJson, type ErrorInfo, hostsOf, resultError } from './result.js'

/**
 * The Markdown job summary for one deployer run: a heading with the outcome, a table with a row per
 * host, then every error with its hint. Everything deployer reported is escaped: it is data, not
 * Markdown.
 */
export function renderSummary(command: ActionCommand | undefined, json: CliJson, exitCode: number): string {
  const parts = [heading(command, json, exitCode), ...hostTable(command, json), ...errors(command, json)]
  return `${parts.join('\n\n')}\n`
}

function heading(command: ActionCommand | undefined, json: CliJson, exitCode: number): string {
  const subject =
    command === 'release' && json.release ? `: ${json.app ?? 'app'} release ${json.release}` : ''
  const title = `### deployer${command ? ` ${command}` : ''}${subject}${json.dryRun ? ' (dry run, nothing changed)' : ''}`
  const outcome = exitCode === 0 ? 'Succeeded.' : `**Failed** with exit code ${exitCode}.`
  const source =
    command === 'release' && json.revision
      ? ` Revision \`${code(json.revision)}\`, ${json.files ?? 0} files, ${formatBytes(json.bytes ?? 0)}.`
      : ''
  return `${title}\n\n${outcome}${source}`
}

function hostTable(command: ActionCommand | undefined, json: CliJson): string[] {
  switch (command) {
    case 'release':
      return table(
        ['host', 'release', 'restart', 'why', 'status', 'rolled back', 'timings'],
        hostsOf(json, command).map((host) => [
          host.host,
          `${host.previous ?? 'none'} → ${host.release ?? '?'}`,
          host.restart
            ? `${host.restart.kind}${host.restart.done?.fellBackToHot ? ' (Puma fell back to hot)' : ''}`
            : '—',
          host.restart?.reasons.join('; ') || '—',
          host.note ? `${host.status}: ${host.note}` : host.status,
          host.status === 'rolled-back'
            ? `yes, to ${host.previous ?? 'none'}${host.restart?.recovered ? `: ${host.restart.recovered}` : ''}`
            : 'no',
          timings(host.timings),
        ]),
      )
    case 'rollback':
      return table(
        ['host', 'release', 'restart', 'why', 'done'],
        hostsOf(json, command).map((host) => [
          host.host,
          `${host.from ?? 'none'} → ${host.to}`,
          host.restart?.kind ?? '—',
          host.restart?.reasons.join('; ') || '—',
          json.dryRun ? 'planned' : host.done ? 'yes' : 'no',
        ]),
      )
    case 'prune':
      return table(
        ['host', json.dryRun ? 'would remove' : 'removed', 'kept'],
        hostsOf(json, command).map((host) => [
          host.host,
          host.removed.join(', ') || 'nothing',
          host.kept
            .map((kept) =>
              kept.reason === 'in-use'
                ? `${kept.number} (in use by ${describeHolders(kept.holders)})`
                : `${kept.number} (${kept.reason})`,
            )
            .join(', ') || 'nothing',
        ]),
      )
    case 'releases':
      return table(
        ['host', 'current', 'releases', 'locked'],
        hostsOf(json, command).map((host) => [
          host.host,
          String(host.current ?? 'none'),
          host.error
            ? 'unreadable'
            : host.releases.map((release) => `${release.number} ${release.state}`).join(', ') || 'none',
          host.locked ? 'yes' : 'no',
        ]),
      )
    case 'check':
      return table(
        ['host', 'status', 'problems'],
        hostsOf(json, command).map((host) => [
          host.host,
          host.status,
          host.findings
            .filter((finding) => finding.severity === 'blocking' || finding.severity === 'warning')
            .map((finding) => `${finding.severity}: ${finding.message}`)
            .join('; ') || 'none',
        ]),
      )
    default:
      return []
  }
}

function errors(command: ActionCommand | undefined, json: CliJson): string[] {
  const top = resultError(json)
  const hostErrors: { host: string; error: ErrorInfo }[] =
    command === 'release'
      ? hostsOf(json, command).flatMap((host) => (host.error ? [{ host: host.host, error: host.error }] : []))
      : command === 'releases'
        ? hostsOf(json, command).flatMap((host) =>
            host.error ? [{ host: host.host, error: { message: host.error } }] : [],
          )
        : []
  // A release that failed verification repeats the host's message as its own: once, under the host, is enough.
  const repeated = top && !top.hint && hostErrors.some(({ error }) => error.message === top.message)
  return [
    ...(top && !repeated ? [errorSection('Error', top)] : []),
    ...hostErrors.map(({ host, error }) => errorSection(`Error on ${host}`, error)),
  ]
}

function errorSection(title: string, error: ErrorInfo): string {
  const lines = [`**${escapeMarkdown(title)}:**`, '', fence(error.message)]
  if (error.hint) lines.push('', `**Hint:** ${escapeMarkdown(error.hint)}`)
  if (error.output) lines.push('', 'deployer printed:', '', fence(error.output))
  return lines.join('\n')
}

function table(headers: readonly string[], rows: readonly (readonly string[])[]): string[] {
  if (rows.length === 0) return []
  const line = (cells: readonly string[]) => `| ${cells.map(escapeMarkdown).join(' | ')} |`
  return [[line(headers), line(headers.map(() => '---')), ...rows.map(line)].join('\n')]
}

/** Phase timings in the order they ran, then the total: `connect 80 ms · upload 1.2 s · total 1.3 s`. */
export function timings(phases: Readonly<Partial<Record<string, number>>>): string {
  const entries = Object.entries(phases).filter((entry): entry is [string, number] => entry[1] !== undefined)
  if (entries.length === 0) return '—'
  const total = entries.reduce((sum, [, ms]) => sum + ms, 0)
  return [...entries.map(([phase, ms]) => `${phase} ${duration(ms)}`), `total ${duration(total)}`].join(' · ')
}

function duration(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`
}

/**
 * Text for a table cell or a line of prose: no HTML, no column breaks, no line breaks. Code spans
 * (`deployer init`) stay code spans: entities inside them would show literally.
 */
export function escapeMarkdown(text: string): string {
  return text
    .split(/(`[^`\n]+`)/)
    .map((part, index) =>
      // split() with a capture group puts the code spans at the odd indexes.
      index % 2 === 1
        ? part.replace(/\|/g, '\\|')
        : part
            .replace(/&/g, '&amp;')
            .replace(/</g, '&lt;')
            .replace(/>/g, '&gt;')
            .replace(/\|/g, '\\|')
            .replace(/\r?\n/g, '<br>'),
    )
    .join('')
}

/** Text inside an inline code span: backticks would end it. */
function code(text: string): string {
  return text.replace(/`/g, "'")
}

/** A fenced code block that `text` cannot close early: the fence is longer than any run of backticks in it. */
export function fence(text: string): string {
  const longest = Math.max(0, ...(text.match(/`+/g) ?? []).map((run) => run.length))
  const marks = '`'.repeat(Math.max(3, longest + 1))
  return `${marks}\n${text}\n${marks}`
}
