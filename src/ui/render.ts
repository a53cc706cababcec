import type { DeployConfig } from '../config/types.js'
import type { HostReleases } from '../fleet/list.js'
import { describeHolders, type PruneOutcome } from '../fleet/prune.js'
import type { ReleaseResult } from '../fleet/release.js'
import type { RollbackOutcome } from '../fleet/rollback.js'
import { formatBytes } from '../format.js'
import { quote } from '../transport/quote.js'

/** The plan `release --dry-run` prints: everything a real run would do, and nothing done. */
export function renderReleasePlan(config: DeployConfig, result: ReleaseResult): string {
  const plan = result.plan
  const lines = [
    `Plan: release ${result.release} of ${config.app} (revision ${result.revision}, ${result.files} entries, ${formatBytes(result.bytes)}); nothing was changed.`,
  ]
  for (const host of plan?.hosts ?? []) {
    lines.push(`  ${host.host} (${host.deployTo}): current ${host.current ?? 'none'} -> ${result.release}`)
    lines.push(`    steps: ${host.steps.join(', ')}`)
    lines.push(
      `    upload: ${host.reuseFrom === null ? 'every file' : `changed files; unchanged ones hard-linked from release ${host.reuseFrom}`}`,
    )
    if (host.restart)
      lines.push(
        host.restart.when === 'predicted'
          ? `    restart: ${host.restart.decision.kind} because ${host.restart.decision.reasons.join('; ')} (predicted; the new puma.rb is evaluated after the upload)`
          : '    restart: decided after the upload, when the new release is probed',
      )
    lines.push(
      `    prune: ${host.prune.length > 0 ? `releases ${host.prune.join(', ')} (unless a process still uses one)` : 'nothing'}`,
    )
  }
  if (plan && plan.waves.length > 1)
    lines.push(
      `Waves (${plan.strategy}, on failure ${plan.onFailure}): ${plan.waves.map((wave) => wave.join(' + ')).join(' -> ')}`,
    )
  const steps = [
    'take the lock .deployer/lock',
    `remove stale releases/.N.partial, build releases/.${result.release}.partial from ${config.source}`,
  ]
  if (config.shared.dirs.length + config.shared.files.length > 0)
    steps.push(`link shared: ${[...config.shared.dirs, ...config.shared.files].join(', ')}`)
  if (config.install) steps.push(`install: ${config.install.commandAsWritten ?? config.install.command}`)
  if (config.server) steps.push(`probe: evaluate ${config.server.config} and decide the restart`)
  steps.push(`publish releases/${result.release} on every host, then flip current`)
  if (config.server) steps.push('restart Puma and verify every worker serves the new release')
  steps.push(`prune to keep ${config.keepReleases} releases (never current, never one a process uses)`)
  lines.push('Steps on each host:', ...steps.map((step, index) => `  ${index + 1}. ${step}`))
  return lines.join('\n')
}

export function renderReleaseResult(result: ReleaseResult): string {
  const lines = result.hosts.map((host) => {
    const pruned = host.pruned.length > 0 ? `, pruned ${host.pruned.join(', ')}` : ''
    const restart = host.restart ? `, ${host.restart.kind} restart` : ''
    if (host.status === 'released')
      return `${host.host}: release ${host.release} is live (was ${host.previous ?? 'none'})${restart}${pruned}`
    if (host.status === 'rolled-back')
      return host.note
        ? `${host.host}: release ${host.release} went live, then was ${host.note}`
        : `${host.host}: release ${host.release} failed verification and was rolled back to ${host.previous}`
    if (host.status === 'skipped')
      return `${host.host}: release ${host.release} ${host.note ?? 'not started'}; current unchanged (${host.previous ?? 'none'})`
    if (host.status === 'discarded')
      return `${host.host}: release ${host.release ?? '?'} discarded, current unchanged (${host.previous ?? 'none'})${host.error ? `: ${firstLine(host.error.message)}` : ''}`
    const note = host.note ? ` (${host.note})` : ''
    return `${host.host}: ${host.status}${note}${host.error ? `: ${firstLine(host.error.message)}` : ''}`
  })
  for (const host of result.hosts)
    for (const warning of host.warnings ?? []) lines.push(`${host.host}: warning: ${warning}`)
  const released = result.hosts.filter((host) => host.status === 'released').length
  if (released === result.hosts.length && !result.error)
    lines.push(`Released ${result.release} (${result.revision}) to ${released} host(s).`)
  return lines.join('\n')
}

export function renderRollback(
  outcomes: readonly RollbackOutcome[],
  dryRun: boolean,
  configFile: string,
): string {
  const lines = outcomes.map((outcome) => {
    const restart = outcome.restart
      ? `; ${outcome.restart.kind} restart because ${outcome.restart.reasons.join('; ')}`
      : ''
    return `${outcome.host}: current ${dryRun ? 'would go' : 'went'} from ${outcome.from ?? 'none'} to ${outcome.to}${restart}`
  })
  const froms = [...new Set(outcomes.map((outcome) => outcome.from))]
  if (!dryRun && froms.length === 1 && froms[0] !== null && froms[0] !== undefined) {
    lines.push(`Undo with: deployer rollback --to ${froms[0]} --config ${quote(configFile)}`)
  } else if (!dryRun) {
    for (const outcome of outcomes) {
      if (outcome.from !== null)
        lines.push(
          `Undo on ${outcome.host}: deployer rollback --to ${outcome.from} --host ${quote(outcome.host)} --config ${quote(configFile)}`,
        )
    }
  }
  return lines.join('\n')
}

export function renderPrune(outcomes: readonly PruneOutcome[], dryRun: boolean): string {
  const lines: string[] = []
  for (const outcome of outcomes) {
    const verb = dryRun ? 'would remove' : 'removed'
    lines.push(
      `${outcome.host}: ${outcome.removed.length > 0 ? `${verb} ${outcome.removed.join(', ')}` : 'nothing to remove'}`,
    )
    for (const kept of outcome.kept.filter((entry) => entry.reason === 'in-use')) {
      lines.push(`  kept ${kept.number}: in use by ${describeHolders(kept.holders)}`)
    }
    for (const kept of outcome.kept.filter((entry) => entry.reason === 'unproven')) {
      lines.push(`  kept ${kept.number}: not proven unused (${describeHolders(kept.holders)})`)
    }
    for (const number of outcome.stuck ?? [])
      lines.push(`  could not fully delete ${number}: left as releases/.${number}.deleting`)
  }
  return lines.join('\n')
}

export function renderReleases(hosts: readonly HostReleases[]): string {
  const lines: string[] = []
  for (const host of hosts) {
    lines.push(`${host.host} (${host.deployTo})${host.locked ? '  [locked]' : ''}`)
    if (host.error) {
      lines.push(`  error: ${firstLine(host.error)}`)
      continue
    }
    if (host.releases.length === 0) lines.push('  no releases')
    for (const release of [...host.releases].reverse()) {
      const mark = release.current ? '*' : ' '
      lines.push(
        `  ${mark} ${String(release.number).padStart(4)}  ${release.state.padEnd(11)}  ${release.time.replace('T', ' ').slice(0, 19)}  ${release.revision}`,
      )
      if (release.modified)
        lines.push(`          modified after publishing: ${release.modified.slice(0, 5).join(', ')}`)
    }
    for (const number of host.unfinished.filter((number) => !host.deleting.includes(number)))
      lines.push(`    ${String(number).padStart(4)}  unfinished (being built, or left by a killed run)`)
    for (const number of host.deleting)
      lines.push(
        `    ${String(number).padStart(4)}  half-deleted (releases/.${number}.deleting: files the SSH user may not remove)`,
      )
    for (const entry of host.foreign)
      lines.push(
        `          foreign ${entry.type} releases/${entry.name} (not a release: never counted, pruned or rolled back to)`,
      )
  }
  return lines.join('\n')
}

function firstLine(text: string): string {
  return text.split('\n')[0] ?? ''
}
