import type { RestartKind } from '../config/types.js'
import { type Fingerprints, rubyMatches } from './fingerprints.js'

/** What deployer does to Puma after the flip. `start` when no Puma is running. */
export type RestartChoice = 'phased' | 'hot' | 'full' | 'none' | 'start'

/** Facts about the running server, read from the host (never assumed). */
export interface ServerFacts {
  running: boolean
  mode: 'cluster' | 'single'
  workers: number
  /** Effective `preload_app!` (explicit, or Puma's version-specific default). */
  preload: boolean
  pruneBundler: boolean
  /** The running master's `directory` is the `current` symlink path, so signals re-enter the new release. */
  directoryIsCurrent: boolean
  /** The new release's config sets `directory` to the `current` path. */
  nextDirectoryIsCurrent: boolean
  runningRuby: string | null
  runningPuma: string | null
  /** `PUMA_SKIP_SIGUSR2` is set in the master's environment: USR2 would not be handled. */
  skipUsr2: boolean
}

export interface RestartInputs {
  requested: RestartKind
  /** Fingerprints of the release the running master loaded its config and gems from; null when unknown. */
  running: Fingerprints | null
  next: Fingerprints
  server: ServerFacts
  /** The `current` path, for messages that say how to fix the config. */
  currentPath: string
  /** Whether `server.env_files` is configured (an unknown running environment then forces a full restart). */
  hasEnvFiles: boolean
  /** Whether env files that puma.rb loads itself are configured (`loaded_by: puma`). */
  hasPumaEnvFiles?: boolean
}

export interface RestartDecision {
  kind: RestartChoice
  /** What `auto` picks; differs from `kind` only under an override. */
  auto: RestartChoice
  reasons: string[]
  warnings: string[]
}

type Rule = { kind: Exclude<RestartChoice, 'none' | 'start'>; reason: string }

/**
 * The least disruptive restart that is still correct, first rule that matches (docs/
 * puma-restarts.md §2): full when signals cannot reach the new release or when Ruby, the environment, a
 * bind or a pruned Puma changed; hot (USR2) for single mode, preload, a config or Puma change, or new gems
 * without prune_bundler; phased (USR1) otherwise. An override wins, with a warning where it is unsafe.
 */
export function decideRestart(inputs: RestartInputs): RestartDecision {
  const { server } = inputs
  if (!server.running) {
    const warnings =
      inputs.requested !== 'auto' && inputs.requested !== 'full'
        ? [`Puma is not running, so --restart ${inputs.requested} cannot apply: starting it.`]
        : []
    if (inputs.requested === 'none')
      return {
        kind: 'none',
        auto: 'start',
        reasons: ['Puma is not running; --restart none leaves it stopped'],
        warnings: [],
      }
    return { kind: 'start', auto: 'start', reasons: ['Puma is not running'], warnings }
  }
  const rules = matchingRules(inputs)
  const full = rules.filter((rule) => rule.kind === 'full')
  const hot = rules.filter((rule) => rule.kind === 'hot')
  const phased = rules.filter((rule) => rule.kind === 'phased')
  const decisive = full.length > 0 ? full : hot.length > 0 ? hot : phased
  const auto: RestartChoice = full.length > 0 ? 'full' : hot.length > 0 ? 'hot' : 'phased'
  const reasons = decisive.map((rule) => rule.reason)
  const warnings = configWarnings(inputs)
  if (inputs.requested === 'auto') return { kind: auto, auto, reasons, warnings }

  const kind = inputs.requested
  const strength: Record<RestartChoice, number> = { none: 0, phased: 1, hot: 2, full: 3, start: 3 }
  if (strength[kind] < strength[auto]) {
    warnings.push(
      `--restart ${kind} overrides ${auto}, which is needed because ${reasons.join('; ')}.${overrideRisk(kind, auto, inputs)}`,
    )
  }
  return { kind, auto, reasons: [`--restart ${kind} (auto would choose ${auto})`, ...reasons], warnings }
}

function matchingRules(inputs: RestartInputs): Rule[] {
  const { server, running, next } = inputs
  const rules: Rule[] = []
  const changed = (part: keyof Fingerprints) =>
    running === null || JSON.stringify(running[part]) !== JSON.stringify(next[part])
  const unknown = running === null ? ' (the running release is unknown, so deployer assumes it changed)' : ''

  if (!server.directoryIsCurrent) {
    rules.push({
      kind: 'full',
      reason: `the running Puma's restart directory is not ${inputs.currentPath}, so USR1/USR2 would re-enter the old release`,
    })
  }
  const nextRuby = next.ruby
  if (nextRuby && server.runningRuby && !rubyMatches(nextRuby, server.runningRuby)) {
    rules.push({ kind: 'full', reason: `Ruby changes from ${server.runningRuby} to ${nextRuby}` })
  } else if (!server.runningRuby && running && running.ruby !== next.ruby) {
    rules.push({
      kind: 'full',
      reason: `the declared Ruby changes from ${running.ruby ?? 'none'} to ${next.ruby ?? 'none'}`,
    })
  }
  if (inputs.hasEnvFiles && changed('environment')) {
    rules.push({ kind: 'full', reason: `the server's environment files changed${unknown}` })
  }
  if (
    running?.binds &&
    next.binds &&
    JSON.stringify([...running.binds].sort()) !== JSON.stringify([...next.binds].sort())
  ) {
    rules.push({
      kind: 'full',
      reason: `the binds change from ${running.binds.join(', ')} to ${next.binds.join(', ')}`,
    })
  }
  const pumaChanged = next.puma !== null && server.runningPuma !== null && next.puma !== server.runningPuma
  if (pumaChanged && server.pruneBundler) {
    rules.push({
      kind: 'full',
      reason: `Puma changes from ${server.runningPuma} to ${next.puma} and prune_bundler keeps the old Puma on USR2`,
    })
  }

  if (server.mode === 'single')
    rules.push({ kind: 'hot', reason: 'Puma runs in single mode (no workers to replace one by one)' })
  if (server.preload)
    rules.push({ kind: 'hot', reason: 'preload_app! is in effect, so Puma refuses a phased restart' })
  if (changed('pumaConfig')) rules.push({ kind: 'hot', reason: `the Puma config changed${unknown}` })
  if (inputs.hasPumaEnvFiles && changed('pumaEnvironment')) {
    rules.push({
      kind: 'hot',
      reason: `the env files puma.rb loads itself changed (USR2 re-runs puma.rb)${unknown}`,
    })
  }
  if (pumaChanged && !server.pruneBundler)
    rules.push({ kind: 'hot', reason: `Puma changes from ${server.runningPuma} to ${next.puma}` })
  if (changed('dependencies') && !server.pruneBundler) {
    rules.push({
      kind: 'hot',
      reason: `the lockfiles changed and without prune_bundler workers keep the master's gems${unknown}`,
    })
  }
  if (
    server.skipUsr2 &&
    rules.some((rule) => rule.kind === 'hot') &&
    !rules.some((rule) => rule.kind === 'full')
  ) {
    rules.push({
      kind: 'full',
      reason: 'a hot restart is needed but PUMA_SKIP_SIGUSR2 is set in the master, so USR2 would be ignored',
    })
  }

  if (running && !changed('dependencies') && !changed('code')) {
    rules.push({
      kind: 'phased',
      reason: 'nothing changed; workers are recycled into the new release so the old one can be pruned',
    })
  } else if (changed('dependencies')) {
    rules.push({
      kind: 'phased',
      reason: 'the lockfiles changed and prune_bundler lets new workers load the new gems',
    })
  } else {
    rules.push({ kind: 'phased', reason: 'only the app code changed' })
  }
  return rules
}

function configWarnings(inputs: RestartInputs): string[] {
  const warnings: string[] = []
  if (!inputs.server.nextDirectoryIsCurrent) {
    warnings.push(
      `the new release's Puma config does not set \`directory "${inputs.currentPath}"\`: without it restarts depend on PWD (systemd sets none) and can silently serve the old release. Add that line to the Puma config.`,
    )
  }
  if (inputs.server.running && inputs.server.mode === 'cluster' && inputs.server.workers < 2) {
    warnings.push(
      'Puma runs one worker: a phased restart leaves no worker serving while it boots. Use `workers 2` or more.',
    )
  }
  return warnings
}

function overrideRisk(kind: RestartChoice, auto: RestartChoice, inputs: RestartInputs): string {
  if (kind === 'none') return ' The new release will not serve until Puma restarts.'
  if (
    kind === 'phased' &&
    inputs.next.puma !== null &&
    inputs.server.runningPuma !== null &&
    inputs.next.puma !== inputs.server.runningPuma
  ) {
    return ' USR1 after a Puma version change leaves workers mixing old and new Puma code.'
  }
  if (kind === 'phased')
    return ' USR1 keeps the old Puma config, Puma, environment and, without prune_bundler, the old gems.'
  if (kind === 'hot' && auto === 'full') return ' USR2 keeps the old environment and Ruby.'
  return ''
}
