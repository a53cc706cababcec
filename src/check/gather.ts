import { readFile } from 'node:fs/promises'
import type { DeployConfig } from '../config/types.js'
import { ConnectionError, HostKeyError } from '../errors.js'
import type { HostSession } from '../hosts/host-session.js'
import { isLockOwnerAlive } from '../hosts/sessions.js'
import { type Reporter, timedPhase } from '../progress.js'
import type { HostState } from '../release/host-state.js'
import { healthCheckCommand, parseHealth } from '../restart/puma-commands.js'
import { PumaHost } from '../restart/restart-host.js'
import type { PumaConfigFacts, ServerProbe } from '../restart/server-probe.js'
import { lookupHostKeys } from '../transport/known-hosts.js'
import { SshTransport } from '../transport/ssh.js'
import { type HostFacts, withoutHostPrefix } from './assess-host.js'
import type { PumaFacts } from './assess-puma.js'
import { hostFactsCommand, parseHostFacts, type RemoteFacts, requiredTools } from './host-facts.js'

/** The local source's Puma config as Puma reads it here, or why it could not be read. */
export type SourceConfig = { config: PumaConfigFacts } | { error: string }

/** What gatherHost needs besides the session and the config. */
export interface GatherOptions {
  reporter: Reporter
  /** Evaluates the source's Puma config on this machine (once for all hosts): for hosts with no release. */
  sourceConfig: () => Promise<SourceConfig>
}

/**
 * Reads everything `check` judges on one host, changing nothing there: deploy_to and the tools (one
 * command), the releases and the lock (HostSession.inspect), and Puma (the restart probe), concurrently
 * over one connection; then, while Puma runs, one GET of the health URL. SSH failures become
 * `unreachable`; any other failure is kept as the fact it is.
 */
export async function gatherHost(
  session: HostSession,
  config: DeployConfig,
  options: GatherOptions,
): Promise<HostFacts> {
  const { host } = session
  const facts: HostFacts = {
    host: host.name,
    deployTo: host.deployTo,
    address:
      host.kind === 'local' ? 'local' : `${host.user ?? ''}@${host.hostname ?? host.name}:${host.port}`,
    local: host.kind === 'local',
    remote: null,
    state: null,
  }
  try {
    const transport = session.transport
    if (transport instanceof SshTransport) {
      await timedPhase(options.reporter, host.name, 'connect', () => transport.connect())
      // ssh_config may have changed the address, and accept-new may have recorded a key on any hop.
      facts.address = transport.address
      facts.hostKeyRecorded = transport.recordedHostKeys.length > 0
    } else if (transport.connect) {
      // The OpenSSH client records an unknown key under accept-new without telling: look before it connects.
      const unknownKey = await hostKeyUnknown(session)
      const connect = transport.connect.bind(transport)
      await timedPhase(options.reporter, host.name, 'connect', connect)
      facts.hostKeyRecorded = unknownKey && host.ssh.hostKey === 'accept-new'
    }
    await timedPhase(options.reporter, host.name, 'inspect', () => readHost(session, config, facts))
    if (config.server && facts.puma)
      await completePuma(session, config, facts.puma, facts.state, options.sourceConfig)
  } catch (error) {
    if (error instanceof HostKeyError || error instanceof ConnectionError) {
      facts.unreachable = {
        kind: error instanceof HostKeyError ? 'host-key' : 'connection',
        message: withoutHostPrefix(host.name, error.message),
        hint: error.hint,
      }
    } else throw error
  }
  return facts
}

async function readHost(session: HostSession, config: DeployConfig, facts: HostFacts): Promise<void> {
  const tools = requiredTools(config)
    .filter((tool) => !tool.inRelease)
    .map((tool) => tool.name)
  const [remote, state, probe] = await Promise.all([
    attempt(async () => {
      const deployTo = session.layout.deployTo
      const output = await session.run('reading deploy_to and the tools', hostFactsCommand(deployTo, tools))
      return parseHostFacts(output, deployTo)
    }),
    attempt(() => session.inspect()),
    config.server ? attempt(() => new PumaHost(session, config).probe(['current'])) : undefined,
  ])
  const name = session.name
  facts.remote = resultValue<RemoteFacts>(remote)
  facts.remoteError = errorOf(remote, name)
  facts.state = resultValue<HostState>(state)
  facts.stateError = errorOf(state, name)
  if (facts.state?.releases.length) {
    const numbers = facts.state.releases.map((release) => release.number)
    const modified = await attempt(() => session.modifiedReleases(numbers))
    facts.modified = resultValue(modified) ?? undefined
  }
  const lock = facts.state?.lock
  if (lock) facts.lockOwnerAlive = isLockOwnerAlive(lock)
  if (probe) {
    const read = resultValue<ServerProbe>(probe)
    facts.puma = {
      probe: read,
      probeError: errorOf(probe, name),
      config: read?.configs[0] ?? null,
      configOrigin: 'current',
      realDeployTo: facts.state?.realDeployTo ?? null,
    }
  }
}

/**
 * With nothing deployed there is no config on the host to read, so the source's is read here; with Puma
 * running, its health URL is fetched once on the host.
 */
async function completePuma(
  session: HostSession,
  config: DeployConfig,
  puma: PumaFacts,
  state: HostState | null,
  sourceConfig: () => Promise<SourceConfig>,
): Promise<void> {
  if (state && state.currentTarget === null && !state.currentIsNotLink) {
    const source = await sourceConfig()
    puma.configOrigin = 'source'
    puma.config = 'config' in source ? source.config : null
    puma.configError = 'error' in source ? source.error : undefined
  }
  const health = config.health
  if (!health || !puma.probe?.master.running) return
  const release = state?.releases.find((entry) => entry.number === state.current)
  const expected = health.expect
    ?.replaceAll('{release}', String(state?.current ?? '{release}'))
    .replaceAll('{revision}', release?.revision ?? '{revision}')
  const output = await attempt(() =>
    session.run('the health check', healthCheckCommand(health.url, Math.min(10, health.timeout))),
  )
  const answer =
    'value' in output ? parseHealth(output.value) : { status: 0, body: errorOf(output, session.name) ?? '' }
  puma.health = { ...answer, expected }
}

type Attempt<T> = { value: T } | { error: unknown }

/** Runs `read`, keeping a failure as a fact; SSH failures still end the host's check. */
async function attempt<T>(read: () => Promise<T>): Promise<Attempt<T>> {
  try {
    return { value: await read() }
  } catch (error) {
    if (error instanceof ConnectionError || error instanceof HostKeyError) throw error
    return { error }
  }
}

function resultValue<T>(result: Attempt<T>): T | null {
  return 'value' in result ? result.value : null
}

function errorOf(result: Attempt<unknown>, host: string): string | undefined {
  if (!('error' in result)) return undefined
  return withoutHostPrefix(host, result.error instanceof Error ? result.error.message : String(result.error))
}

/** Whether the host's key is missing from known_hosts (checked before an OpenSSH connect may record it). */
async function hostKeyUnknown(session: HostSession): Promise<boolean> {
  const { host } = session
  if (host.kind !== 'ssh') return false
  const text = await readFile(host.ssh.knownHosts, 'utf8').catch(() => '')
  return lookupHostKeys(text, host.hostname ?? host.name, host.port).length === 0
}
