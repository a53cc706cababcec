import { posix } from 'node:path'
import semver from 'semver'
import type { HealthSettings, ServerSettings } from '../config/types.js'
import { effectivePreload } from '../restart/preload.js'
import type { PumaConfigFacts, ServerProbe } from '../restart/server-probe.js'
import type { Finding } from './findings.js'

/*
 * What `check` read about a host's Puma, and the findings about what its config does to a restart:
 * workers, preload, prune_bundler, binds and the pidfile and control app deployer is told about. Pure;
 * assessPuma (assess-puma.ts) runs them and the table tests go through it.
 */

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

/** Workers: fewer than two defeat a phased restart (§1.3, §2); preload makes Puma refuse one (F1). */
export function workerFindings(facts: PumaFacts, config: PumaConfigFacts, name: string): Finding[] {
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
export function pruneBundlerFindings(
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
export function implicitBindFindings(
  config: PumaConfigFacts,
  name: string,
  server: ServerSettings,
): Finding[] {
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
export function bindFindings(facts: PumaFacts, config: PumaConfigFacts, name: string): Finding[] {
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
export function wiringFindings(config: PumaConfigFacts, name: string, settings: PumaSettings): Finding[] {
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

/** server.pidfile on the host (relative to deploy_to unless absolute). */
export function pidfileOf(settings: PumaSettings): string {
  const pidfile = settings.server.pidfile
  return posix.isAbsolute(pidfile) ? pidfile : posix.join(settings.deployTo, pidfile)
}
