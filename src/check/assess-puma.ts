import { posix } from 'node:path'
import semver from 'semver'
import type { HealthSettings, ServerSettings } from '../config/types.js'
import { effectivePreload } from '../restart/preload.js'
import type { PumaConfigFacts, ServerProbe } from '../restart/server-probe.js'
import { asSentences, type Finding } from './findings.js'

/** What `check` read about a host's Puma. */
export interface PumaFacts {
  /** The probe's reading of the running server; null when the probe failed (`probeError` says why). */
  probe: ServerProbe | null
  probeError?: string
  /**
   * Puma's own reading of the config a restart will use: the one in `current`, or, when nothing is
   * deployed yet, the local source's (read on this machine). Null when it could not be evaluated.
   */
  config: PumaConfigFacts | null
  configOrigin: 'current' | 'source'
  /** Why the source's config could not be evaluated here (no Ruby or Puma on this machine). */
  configError?: string
  /** deploy_to with symlinks resolved, to recognise a `directory` spelled through them. */
  realDeployTo: string | null
  /** One GET of the health URL on the host, while Puma runs. */
  health?: { status: number; body: string; expected?: string }
}

/** The parts of deployer.yml the Puma checks read, and the host's deploy_to. */
export interface PumaSettings {
  server: ServerSettings
  health?: HealthSettings
  deployTo: string
}

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

function pidfileOf(settings: PumaSettings): string {
  const pidfile = settings.server.pidfile
  return posix.isAbsolute(pidfile) ? pidfile : posix.join(settings.deployTo, pidfile)
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

/** Workers: fewer than two defeat a phased restart (§1.3, §2); preload makes Puma refuse one (F1). */
function workerFindings(facts: PumaFacts, config: PumaConfigFacts, name: string): Finding[] {
  const workers = runningWorkers(facts.probe) ?? config.workers ?? 0
  const findings: Finding[] = []
  if (workers === 0) {
    findings.push({
      check: 'puma-workers',
      severity: 'warning',
      message:
        'Puma runs in single mode (no `workers`): there are no workers to replace one at a time, so every release is a hot restart (USR2), which holds requests while Puma boots again (F1).',
      hint: `Set \`workers 2\` or more in ${name} for phased restarts.`,
    })
    return findings
  }
  if (workers === 1) {
    findings.push({
      check: 'puma-workers',
      severity: 'warning',
      message: 'Puma runs one worker: a phased restart leaves no worker serving while its replacement boots.',
      hint: `Set \`workers 2\` or more in ${name}.`,
    })
  } else {
    findings.push({
      check: 'puma-workers',
      severity: 'ok',
      message: `${workers} workers: a phased restart keeps ${workers - 1} serving.`,
    })
  }
  findings.push(preloadFinding(facts, config, name))
  return findings
}

function runningWorkers(probe: ServerProbe | null): number | null {
  if (!probe?.master.running) return null
  if (probe.stats) return probe.stats.mode === 'single' ? 0 : (probe.stats.workers ?? probe.workers.length)
  return probe.workers.length
}

function preloadFinding(facts: PumaFacts, config: PumaConfigFacts, name: string): Finding {
  const master = facts.probe?.master
  const running = master?.running ?? false
  const version = (running ? master?.pumaVersion : undefined) ?? config.pumaVersion
  // A running master is judged as a release judges it; otherwise Puma's own default, computed in the
  // environment a start over SSH would have.
  const preload =
    running && version && semver.coerce(version)
      ? effectivePreload(version, config, { webConcurrency: master?.env.webConcurrency })
      : (config.preloadApp ?? config.defaultPreload ?? false)
  if (!preload) {
    return {
      check: 'puma-preload',
      severity: 'ok',
      message: '`preload_app` is off: phased restarts are possible.',
    }
  }
  const effect =
    'Puma refuses phased restarts and does a hot restart instead (F1), and a hot restart onto a release that cannot boot takes the whole server down (F14).'
  if (config.preloadApp === true) {
    return {
      check: 'puma-preload',
      severity: 'warning',
      message: `${name} sets \`preload_app!\`: ${effect}`,
      hint: 'Remove `preload_app!` unless the app needs it (for copy-on-write memory savings).',
    }
  }
  const major = semver.coerce(version ?? '')?.major ?? 0
  if (major >= 7) {
    return {
      check: 'puma-preload',
      severity: 'warning',
      message: `Puma ${version} turns \`preload_app!\` on by default with more than one worker and no \`prune_bundler\`: ${effect}`,
      hint: `To keep phased restarts, add \`preload_app! false\` to ${name} (or turn on \`prune_bundler\`, which needs a bundled Puma with bin/puma-wild).`,
    }
  }
  const concurrency = master?.env.webConcurrency
  return {
    check: 'puma-preload',
    severity: 'warning',
    message: `WEB_CONCURRENCY${concurrency ? `=${concurrency}` : ''} in Puma's environment turns \`preload_app!\` on in Puma ${version ?? '?'}, before the config is read: ${effect}`,
    hint: `Unset WEB_CONCURRENCY and set \`workers\` in ${name}, or add \`preload_app! false\` to it.`,
  }
}

/** prune_bundler: a no-op under preload, an abort without puma-wild, and pinned Puma versions (§3.3). */
function pruneBundlerFindings(
  facts: PumaFacts,
  config: PumaConfigFacts,
  name: string,
  server: ServerSettings,
): Finding[] {
  if (!config.pruneBundler) return []
  const findings: Finding[] = []
  if (config.pumaWild === false) {
    const bundled = /\bbundle\s+exec\b/.test(server.start ?? '')
    findings.push({
      check: 'puma-prune-bundler',
      severity: bundled ? 'blocking' : 'warning',
      message: `${name} sets \`prune_bundler\`, but Puma ${config.pumaVersion ?? '?'} has no bin/puma-wild (Debian's packaged Puma ships none), so Puma aborts at boot under \`bundle exec\` (F10).`,
      hint: `Remove \`prune_bundler\` from ${name}, or bundle Puma with the app.`,
    })
  }
  if ((config.preloadApp ?? config.defaultPreload) === true) {
    findings.push({
      check: 'puma-prune-bundler',
      severity: 'warning',
      message: `${name} sets \`prune_bundler\`, but preload is on, so Puma skips pruning and workers keep the master's gems.`,
      hint: 'Turn preload off (see puma-preload) for pruning to take effect.',
    })
  }
  const version = semver.coerce(facts.probe?.master.pumaVersion ?? config.pumaVersion ?? '')
  const dropsEnv = version !== null && semver.lt(version, '8.0.1')
  findings.push({
    check: 'puma-prune-bundler',
    severity: 'info',
    message: `\`prune_bundler\` is on: a hot restart keeps the running Puma version, so deployer restarts fully when Puma's version changes (F5).${dropsEnv ? ` Before 8.0.1 pruning also drops BUNDLE_* variables other than BUNDLE_GEMFILE and BUNDLE_APP_CONFIG (F9).` : ''}`,
    hint: dropsEnv
      ? 'Keep Bundler settings in the release’s .bundle/config, not in the environment.'
      : undefined,
  })
  return findings
}

/**
 * No `bind` or `port` in the config: Puma listens on its default, which Puma 8.0 changed from
 * `tcp://0.0.0.0:9292` to `tcp://[::]:9292` wherever the host has a non-loopback IPv6 address
 * (puma/puma#3847). The address then depends on the Puma version and the host's interfaces, and a bind that
 * changes between restarts needs a full one (F15). Binds given on the start command line are not in the
 * file, so those starts are left alone.
 */
function implicitBindFindings(config: PumaConfigFacts, name: string, server: ServerSettings): Finding[] {
  if (config.bindsInFile !== false) return []
  if (/(^|\s)(-b|--bind|-p|--port)(\s|=|$)/.test(server.start ?? '')) return []
  const now =
    config.binds.length > 0
      ? `; Puma ${config.pumaVersion ?? '?'} reads it as ${config.binds.join(', ')}`
      : ''
  return [
    {
      check: 'puma-binds',
      severity: 'warning',
      message: `${name} sets no \`bind\` or \`port\`, so Puma listens on its default${now}. Puma 8 listens on tcp://[::]:9292 where the host has a non-loopback IPv6 address (0.0.0.0 before), so the address changes with the Puma version or the host's network, and a bind change needs a full restart (F15).`,
      hint: `Pin the address in ${name}, e.g. \`bind "tcp://127.0.0.1:3000"\` behind a proxy on the same host.`,
    },
  ]
}

/** A running Puma's binds against its config: a bind change needs a full restart (F15). */
function bindFindings(facts: PumaFacts, config: PumaConfigFacts, name: string): Finding[] {
  const running = facts.probe?.master.binds
  if (!running || running.length === 0 || config.binds.length === 0) return []
  const same = JSON.stringify([...running].sort()) === JSON.stringify([...config.binds].sort())
  if (same)
    return [
      {
        check: 'puma-binds',
        severity: 'ok',
        message: `Puma listens where ${name} says: ${running.join(', ')}.`,
      },
    ]
  return [
    {
      check: 'puma-binds',
      severity: 'warning',
      message: `Puma listens on ${running.join(', ')}, but ${name} binds ${config.binds.join(', ')}: a phased restart keeps the old binds, and a hot restart that binds the same port differently dies with EADDRINUSE (F15).`,
      hint: 'Restart Puma fully once (`deployer release --restart full`) so it listens where its config says.',
    },
  ]
}

/**
 * Without a running Puma nothing proves that deployer will find the one it starts: the config's pidfile
 * and control URL must be the ones deployer.yml names.
 */
function wiringFindings(config: PumaConfigFacts, name: string, settings: PumaSettings): Finding[] {
  const findings: Finding[] = []
  const pidfile = pidfileOf(settings)
  const start = settings.server.start ?? ''
  if (config.pidfile === null) {
    if (!/--pidfile\b|(^|\s)-P\s/.test(start)) {
      findings.push({
        check: 'puma-pidfile',
        severity: 'warning',
        message: `${name} sets no \`pidfile\`: deployer would not find the Puma it starts through server.pidfile (${pidfile}).`,
        hint: `Put \`pidfile ${JSON.stringify(pidfile)}\` in ${name}.`,
      })
    }
  } else if (!samePidfile(config.pidfile, pidfile, settings.deployTo)) {
    findings.push({
      check: 'puma-pidfile',
      severity: 'warning',
      message: `${name} writes its pidfile to ${config.pidfile}, but server.pidfile is ${pidfile}: deployer finds Puma through server.pidfile.`,
      hint: 'Make them the same file.',
    })
  }
  const controlUrl = settings.server.controlUrl
  if (controlUrl && config.controlUrl !== controlUrl) {
    findings.push({
      check: 'puma-stats',
      severity: 'warning',
      message: config.controlUrl
        ? `${name} starts its control app at ${config.controlUrl}, but server.control_url is ${controlUrl}: deployer could not read Puma's stats.`
        : `server.control_url is ${controlUrl}, but ${name} starts no control app: deployer could not read Puma's stats.`,
      hint: 'Make server.control_url match `activate_control_app` in the Puma config.',
    })
  }
  return findings
}

/** A pidfile relative to the release names the shared one when it lies in a shared dir (`tmp/pids`). */
function samePidfile(configured: string, expected: string, deployTo: string): boolean {
  if (posix.isAbsolute(configured)) return posix.normalize(configured) === expected
  const relative = posix.normalize(configured)
  return (
    posix.join(deployTo, 'current', relative) === expected ||
    posix.join(deployTo, 'shared', relative) === expected
  )
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
