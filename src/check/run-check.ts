import { hostname } from 'node:os'
import type { DeployConfig } from '../config/types.js'
import { ExitCode, lastLines } from '../errors.js'
import { settleAll } from '../hosts/concurrency.js'
import { type TransportFactory, withSessions } from '../hosts/sessions.js'
import type { Reporter } from '../progress.js'
import { GENERATED_NAMES } from '../release/manifest.js'
import { probeServer } from '../restart/server-probe.js'
import { LocalTransport } from '../transport/local.js'
import { HashCache } from '../upload/hash-cache.js'
import { scanTree } from '../upload/local-tree.js'
import { assessHost, type SourceSize } from './assess-host.js'
import { type HostCheck, worstSeverity } from './findings.js'
import { gatherHost, type SourceConfig } from './gather.js'

/** What `deployer check` found. */
export interface CheckResult {
  /** No host is unreachable or has a blocking finding. */
  ok: boolean
  /** The local source the release size comes from. */
  source: { path: string } & Partial<{ bytes: number; entries: number; error: string }>
  hosts: HostCheck[]
}

/** How runCheck reports progress and reaches hosts (tests pass their own transports and clock). */
export interface CheckOptions {
  reporter: Reporter
  open?: TransportFactory
  now?: () => Date
}

/**
 * `deployer check`: reads every host (at most `concurrency` at once) and judges whether a release can run
 * there and restart Puma without downtime. Changes nothing on any host and takes no lock.
 */
export async function runCheck(config: DeployConfig, options: CheckOptions): Promise<CheckResult> {
  const now = options.now ?? (() => new Date())
  // The source is read while the connections open, as a release does.
  const sourceSize = readSourceSize(config)
  let sourceConfig: Promise<SourceConfig> | undefined
  const readSourceConfig = () => {
    sourceConfig ??= evaluateSourceConfig(config)
    return sourceConfig
  }
  const hosts = await withSessions(
    config.hosts,
    async (sessions) => {
      const results = await settleAll(sessions, config.concurrency, async (session) => {
        const facts = await gatherHost(session, config, {
          reporter: options.reporter,
          sourceConfig: readSourceConfig,
        })
        const findings = assessHost(facts, config, {
          now: now(),
          machine: hostname(),
          source: await sourceSize,
        })
        const check: HostCheck = {
          host: facts.host,
          deployTo: facts.deployTo,
          status: worstSeverity(findings),
          reachable: !facts.unreachable,
          findings,
        }
        if (facts.unreachable)
          check.exitCode = facts.unreachable.kind === 'host-key' ? ExitCode.hostKey : ExitCode.connection
        return check
      })
      return results.map((result, index): HostCheck => {
        if (result.status === 'fulfilled') return result.value
        const session = sessions[index]
        const reason = result.reason instanceof Error ? result.reason.message : String(result.reason)
        return {
          host: session?.name ?? '?',
          deployTo: session?.layout.deployTo ?? '',
          status: 'blocking',
          reachable: true,
          findings: [
            {
              check: 'check',
              severity: 'blocking',
              message: `The check itself failed: ${reason}`,
              hint: 'This looks like a bug in deployer; run again with DEBUG=deployer* for details.',
            },
          ],
        }
      })
    },
    options.open,
  )
  const size = await sourceSize
  return {
    ok: hosts.every((host) => host.reachable && host.status !== 'blocking'),
    source: { path: config.source, ...size },
    hosts,
  }
}

/** The release's size as a release would upload it (same excludes); never rejects. */
async function readSourceSize(config: DeployConfig): Promise<SourceSize> {
  try {
    const excludes = [...config.exclude, ...GENERATED_NAMES.map((name) => `/${name}`)]
    const tree = await scanTree(config.source, excludes, await HashCache.open(config.source))
    return { bytes: tree.totalBytes, entries: tree.entries.length }
  } catch (error) {
    return { error: error instanceof Error ? error.message : String(error) }
  }
}

/**
 * The source's Puma config as Puma reads it on this machine, through the same probe a release runs on
 * the host (with a pidfile that cannot exist, so it looks at no process here).
 */
async function evaluateSourceConfig(config: DeployConfig): Promise<SourceConfig> {
  const server = config.server
  if (!server) return { error: 'no server section' }
  const local = new LocalTransport()
  try {
    const probe = await probeServer(
      async (command, stdin) => {
        const result = await local.exec(command, { stdin })
        if (result.code !== 0) throw new Error(lastLines(result.stderr || result.stdout, 3))
        return result.stdout
      },
      {
        deployTo: config.source,
        pidfile: '/dev/null/no-puma.pid',
        configs: [{ dir: '.', file: server.config }],
      },
    )
    const evaluated = probe.configs[0]
    if (!evaluated) return { error: 'the probe evaluated no config' }
    // Puma itself did not load here: that says nothing about the config.
    if (!evaluated.ok && evaluated.pumaVersion === null)
      return { error: evaluated.error ?? 'Puma did not load' }
    return { config: evaluated }
  } catch (error) {
    return { error: error instanceof Error ? error.message : String(error) }
  }
}
