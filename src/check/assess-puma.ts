import { posix } from 'node:path'
import type { HealthSettings } from '../config/types.js'
import type { PumaConfigFacts } from '../restart/server-probe.js'
import {
  bindFindings,
  implicitBindFindings,
  type PumaFacts,
  type PumaSettings,
  pidfileOf,
  pruneBundlerFindings,
  wiringFindings,
  workerFindings,
} from './assess-puma-config.js'
import { asSentences, type Finding } from './findings.js'

export type { PumaFacts, PumaSettings } from './assess-puma-config.js'

/*
 * The Puma part of `check`: the process behind the pidfile, `directory`, the health URL, and (from
 * assess-puma-config.ts) what the config does to a restart: workers, preload, prune_bundler, binds.
 */

/**
 * Judges the host's Puma: whether a release can find, start and verify it, and which settings defeat a
 * zero-downtime restart (docs/puma-restarts.md §1.3, §3, F1–F15). Settings that deployer works
 * around with a heavier restart are warnings; a setting that makes Puma serve the wrong release is
 * blocking.
 */
export function assessPuma(facts: PumaFacts, settings: PumaSettings): Finding[] {
  const findings: Finding[] = [...processFindings(facts, settings)]
  const running = facts.probe?.master.running ?? false
  const config = facts.config
  const name = configName(facts, settings)
  if (!config) {
    if (facts.configError) {
      findings.push({
        check: 'puma-config',
        severity: 'warning',
        message: `Nothing is deployed yet, and the source's ${settings.server.config} could not be read with Puma on this machine: ${facts.configError}`,
        hint: 'Run check again after the first release, which reads it on the host.',
      })
    }
  } else if (!config.ok) {
    findings.push({
      check: 'puma-config',
      severity: 'blocking',
      message: `Puma cannot read ${name}: ${config.error ?? 'unknown error'}`,
      hint: `Fix ${settings.server.config} (or server.config); a release refuses a config Puma cannot read.`,
    })
  } else {
    if (facts.configOrigin === 'source') {
      findings.push({
        check: 'puma-config',
        severity: 'info',
        message: `Nothing is deployed yet: the Puma checks read ${name} with Puma ${config.pumaVersion ?? '?'} on this machine.`,
      })
    }
    const current = posix.join(settings.deployTo, 'current')
    findings.push(directoryFinding(config, name, current, facts.realDeployTo))
    findings.push(...workerFindings(facts, config, name))
    findings.push(...pruneBundlerFindings(facts, config, name, settings.server))
    findings.push(...implicitBindFindings(config, name, settings.server))
    if (running) findings.push(...bindFindings(facts, config, name))
    else findings.push(...wiringFindings(config, name, settings))
  }
  if (settings.health) findings.push(healthFinding(facts, settings.health))
  return asSentences(findings)
}

function configName(facts: PumaFacts, settings: PumaSettings): string {
  return facts.configOrigin === 'current'
    ? posix.join(settings.deployTo, 'current', settings.server.config)
    : `the source's ${settings.server.config}`
}

function processFindings(facts: PumaFacts, settings: PumaSettings): Finding[] {
  const probe = facts.probe
  if (!probe) {
    return [
      {
        check: 'puma',
        severity: 'blocking',
        message: `Could not read Puma's state: ${facts.probeError ?? 'no answer'}`,
        hint: 'A release reads Puma the same way before restarting it; it needs ruby on the host.',
      },
    ]
  }
  const { master, stats } = probe
  if (!master.running) {
    const pidfile = pidfileOf(settings)
    const why =
      master.pid === null
        ? `no pid in ${pidfile} (${master.pidfileError ?? 'missing'})`
        : master.alive
          ? `pid ${master.pid} from ${pidfile} is not Puma (a stale pidfile)`
          : `pid ${master.pid} from ${pidfile} is not running`
    if (!settings.server.start) {
      return [
        {
          check: 'puma',
          severity: 'blocking',
          message: `Puma is not running (${why}) and server.start is not set, so a release could not start it.`,
          hint: 'Set server.start (e.g. `bundle exec puma -C config/puma.rb`), or start Puma and make server.pidfile name its pidfile.',
        },
      ]
    }
    return [
      {
        check: 'puma',
        severity: 'warning',
        message: `Puma is not running (${why}); a release will start it with server.start.`,
        hint: 'Nothing to do if that is expected; if Puma does run, make server.pidfile name its pidfile.',
      },
    ]
  }
  const shape = !stats
    ? `${probe.workers.length} workers`
    : stats.mode === 'single'
      ? 'single mode'
      : `${stats.bootedWorkers ?? '?'} of ${stats.workers ?? '?'} workers booted, phase ${stats.phase ?? '?'}`
  const findings: Finding[] = [
    {
      check: 'puma',
      severity: 'ok',
      message: `Puma ${master.pumaVersion ?? '?'} runs as pid ${master.pid} in ${master.cwd ?? '?'} (${shape}).`,
    },
  ]
  const controlUrl = settings.server.controlUrl
  if (!controlUrl) {
    findings.push({
      check: 'puma-stats',
      severity: 'info',
      message:
        'server.control_url is not set: restarts are verified from /proc alone, which cannot tell a phased restart that fell back to a hot one (F1).',
      hint: 'Add `activate_control_app` with a fixed URL and token to the Puma config, and set server.control_url and server.control_token.',
    })
  } else if (probe.statsError) {
    findings.push({
      check: 'puma-stats',
      severity: 'warning',
      message: `Cannot read Puma's stats from ${controlUrl}: ${probe.statsError}. Restarts are then verified from /proc alone, which cannot tell a phased restart that fell back to a hot one (F1).`,
      hint: 'Make server.control_url and server.control_token match `activate_control_app` in the Puma config.',
    })
  }
  if ((stats?.oldWorkers ?? 0) > 0) {
    findings.push({
      check: 'puma',
      severity: 'warning',
      message: `A phased restart is in progress or stuck: ${stats?.oldWorkers} workers still run the previous phase (F13).`,
      hint: 'Look in Puma’s log for workers that fail to boot; a release waits 60 s for it to finish, then fails.',
    })
  }
  if (master.env.skipUsr2) {
    findings.push({
      check: 'puma',
      severity: 'info',
      message:
        'PUMA_SKIP_SIGUSR2 is set in the master’s environment: Puma ignores USR2, so a release that needs a hot restart does a full one (F29).',
    })
  }
  return findings
}

/**
 * `directory` decides where every restart re-enters (§3.1). Unset, restarts depend on the PWD Puma was
 * started with (systemd sets none), so deployer chooses a full restart: correct, but with downtime.
 * Set to anything but the `current` path, Puma keeps changing into that directory whatever is current.
 */
function directoryFinding(
  config: PumaConfigFacts,
  name: string,
  current: string,
  realDeployTo: string | null,
): Finding {
  const fix = `Put \`directory ${JSON.stringify(current)}\` in ${name}.`
  if (config.directory === null) {
    return {
      check: 'puma-directory',
      severity: 'warning',
      message: `${name} does not set \`directory\`: restarts then depend on the PWD Puma was started with and can re-enter the old release (F2, F3), so every release restarts Puma with a full stop and start, which drops requests.`,
      hint: fix,
    }
  }
  if (config.directory === current) {
    return {
      check: 'puma-directory',
      severity: 'ok',
      message: `\`directory\` is ${current}: restarts follow the current symlink.`,
    }
  }
  const viaRealPath = realDeployTo !== null && posix.normalize(config.directory) === `${realDeployTo}/current`
  if (viaRealPath) {
    return {
      check: 'puma-directory',
      severity: 'warning',
      message: `\`directory\` is ${config.directory}, which reaches ${current} through a symlink; deployer compares the path as written, so every release restarts Puma with a full stop and start.`,
      hint: fix,
    }
  }
  return {
    check: 'puma-directory',
    severity: 'blocking',
    message: `\`directory\` is ${config.directory}, not ${current}: Puma changes into it on every start and restart, so it keeps serving that directory whatever release is current (F2).`,
    hint: fix,
  }
}

function healthFinding(facts: PumaFacts, health: HealthSettings): Finding {
  const url = health.urlAsWritten ?? health.url
  const result = facts.health
  if (!facts.probe?.master.running || !result) {
    return { check: 'health', severity: 'info', message: `${url} not checked: Puma is not running.` }
  }
  const answered = result.status >= 200 && result.status < 400
  if (answered && (!result.expected || result.body.includes(result.expected))) {
    return {
      check: 'health',
      severity: 'ok',
      message: `${url} answers HTTP ${result.status}${result.expected ? ` with "${result.expected}"` : ''}.`,
    }
  }
  const seen =
    result.status === 0
      ? `fails: ${result.body.slice(0, 200)}`
      : answered
        ? `answers HTTP ${result.status} without "${result.expected}"`
        : `answers HTTP ${result.status}`
  return {
    check: 'health',
    severity: 'warning',
    message: `${url} ${seen}: the current release does not pass the check a new release must pass.`,
    hint: 'Check health.url and health.expect against what the app serves ({release} and {revision} are filled in).',
  }
}
