import os from 'node:os'
import path from 'node:path'
import type { HostConfig, HostKeyPolicy, SshSettings } from '../config/types.js'
import { DeployerError, ExitCode } from '../errors.js'
import {
  DEFAULT_IDENTITY_FILES,
  expandPath,
  type ProxyHop,
  parseProxyJump,
  resolveSshConfig,
  type SshConfigKey,
  type SshConfigSource,
  type SshHostConfig,
} from './ssh-config.js'

/**
 * The route to a host: the jump hosts in the order they are connected through, then the host itself,
 * each with the settings that apply to it once deployer.yml and ssh_config are merged. Plain data: the
 * ssh2 transport connects along it.
 */

/** One SSH server on the way to a host (a jump host or the host itself), with its merged settings. */
export interface Endpoint {
  /** How messages name it: the host's name, or `jump host bastion (hop 1 of 2)`. */
  label: string
  /** The name looked up in ssh_config (an alias, or the host name as written). */
  alias: string
  hostname: string
  port: number
  user: string
  /** deployer.yml's `ssh.identity` (or DEPLOYER_SSH_IDENTITY): this key only, no agent. */
  identity?: string
  /** ssh_config's IdentityFile list, else OpenSSH's defaults; tried after the agent. */
  identityFiles: string[]
  /** IdentitiesOnly: offer only agent keys that are also identity files. */
  identitiesOnly: boolean
  /** CertificateFile lines: user certificates offered with the identity each one certifies. */
  certificateFiles: string[]
  /** known_hosts files to check; new keys are recorded in the first. */
  knownHostsFiles: string[]
  hostKeyPolicy: HostKeyPolicy
  /** HostKeyAlias: the name host keys are looked up and recorded under, instead of `[host]:port`. */
  hostKeyAlias?: string
  /** Seconds. */
  connectTimeout: number
  /** Milliseconds between keepalives (ServerAliveInterval, else deployer's 10 s). */
  keepaliveIntervalMs: number
  /** Where ssh_config set each value; empty when ssh_config is off or set nothing. */
  sources: Partial<Record<SshConfigKey, SshConfigSource>>
}

/** deployer's keepalive when ssh_config sets no ServerAliveInterval: a dead peer is noticed in ~30 s. */
export const DEFAULT_KEEPALIVE_MS = 10_000
// A ProxyJump whose first hop has a ProxyJump of its own, and so on: OpenSSH has no limit, a loop would spin.
const MAX_JUMP_DEPTH = 8

/** What planRoute needs from the outside, replaceable in tests. */
export interface RouteContext {
  resolve: (options: Parameters<typeof resolveSshConfig>[0]) => Promise<SshHostConfig>
  homeDir: string
  localUser: string
}

const defaultContext = (): RouteContext => ({
  resolve: resolveSshConfig,
  homeDir: os.homedir(),
  localUser: os.userInfo().username,
})

/** The endpoints to connect through to reach `host`, jump hosts first and the host last. */
export async function planRoute(
  host: HostConfig,
  context: RouteContext = defaultContext(),
): Promise<Endpoint[]> {
  const ssh = host.ssh
  const explicit = new Set(
    ssh.explicit ?? ['user', 'port', 'identity', 'knownHosts', 'hostKey', 'connectTimeout'],
  )
  const alias = host.hostname ?? host.name
  const resolved = await resolveFor(ssh, context, {
    host: alias,
    user: explicit.has('user') ? host.user : undefined,
    port: explicit.has('port') ? host.port : undefined,
  })
  const target = mergeEndpoint({
    label: host.name,
    alias,
    user: explicit.has('user') ? host.user : undefined,
    port: explicit.has('port') ? host.port : undefined,
    fallbackUser: host.user,
    fallbackPort: host.port,
    ssh,
    explicit,
    resolved,
    context,
  })
  // OpenSSH takes whichever of ProxyJump and ProxyCommand comes first; ssh2 can run only a jump.
  if (resolved?.proxyCommand && ssh.proxyJump === undefined && !resolved.proxyJump?.length) {
    throw new DeployerError(
      `Host ${host.name}: ssh_config sets ProxyCommand ${JSON.stringify(resolved.proxyCommand)}` +
        `${describeSources(resolved, ['proxyCommand']).replace(/^ProxyCommand/, '')}, ` +
        "which deployer's built-in SSH client cannot run.",
      {
        exitCode: ExitCode.connection,
        host: host.name,
        hint: 'Set `ssh.client: openssh` to connect with the system ssh, or replace it with ProxyJump (or ssh.proxy_jump in deployer.yml).',
      },
    )
  }
  let jumps: ProxyHop[] = []
  if (ssh.proxyJump !== undefined) {
    jumps = parseProxyJump(ssh.proxyJump)
  } else if (resolved?.proxyJump) jumps = resolved.proxyJump
  const hops = await planJumps(jumps, ssh, explicit, context, 0)
  hops.forEach((hop, index) => {
    hop.label = `jump host ${hop.alias} (hop ${index + 1} of ${hops.length} to ${host.name})`
  })
  return [...hops, target]
}

/**
 * The endpoints for ProxyJump hops, as OpenSSH connects them: `ProxyJump a,b` reaches b through a, and
 * a itself through a's own ProxyJump, if ssh_config gives it one.
 */
async function planJumps(
  hops: readonly ProxyHop[],
  ssh: SshSettings,
  explicit: ReadonlySet<string>,
  context: RouteContext,
  depth: number,
): Promise<Endpoint[]> {
  if (hops.length === 0) return []
  if (depth >= MAX_JUMP_DEPTH) {
    throw new DeployerError(
      `ProxyJump nests more than ${MAX_JUMP_DEPTH} deep at ${hops[0]!.spec}: the jump hosts' ProxyJump lines form a loop.`,
      { exitCode: ExitCode.config, hint: 'Give the first jump host `ProxyJump none` in ssh_config.' },
    )
  }
  const endpoints: Endpoint[] = []
  for (const [index, hop] of hops.entries()) {
    const resolved = await resolveFor(ssh, context, { host: hop.host, user: hop.user, port: hop.port })
    if (index === 0 && resolved?.proxyJump?.length) {
      endpoints.push(...(await planJumps(resolved.proxyJump, ssh, explicit, context, depth + 1)))
    }
    endpoints.push(
      mergeEndpoint({
        label: hop.spec,
        alias: hop.host,
        user: hop.user,
        port: hop.port,
        ssh,
        // A jump host has its own user and port: deployer.yml's user and port are the target's.
        explicit: new Set([...explicit].filter((key) => key !== 'user' && key !== 'port')),
        resolved,
        context,
      }),
    )
  }
  return endpoints
}

async function resolveFor(
  ssh: SshSettings,
  context: RouteContext,
  target: { host: string; user?: string; port?: number },
): Promise<SshHostConfig | undefined> {
  if (!ssh.config) return undefined
  const files =
    ssh.config === true ? { kind: 'default' as const } : { kind: 'file' as const, file: ssh.config }
  return context.resolve({ ...target, files, homeDir: context.homeDir, localUser: context.localUser })
}

interface MergeInput {
  label: string
  alias: string
  /** Given in deployer.yml (or the hop spec): wins over ssh_config. */
  user?: string
  port?: number
  /** deployer.yml's defaults ($USER, 22), used when neither deployer.yml nor ssh_config says. */
  fallbackUser?: string
  fallbackPort?: number
  ssh: SshSettings
  explicit: ReadonlySet<string>
  resolved: SshHostConfig | undefined
  context: Pick<RouteContext, 'homeDir' | 'localUser'>
}

/**
 * One endpoint's settings: what deployer.yml gives wins, then ssh_config, then deployer's defaults.
 * StrictHostKeyChecking `yes`/`ask` mean strict (nobody is there to answer), `accept-new` and `no` mean
 * accept-new: a changed key is refused whatever ssh_config says.
 */
export function mergeEndpoint(input: MergeInput): Endpoint {
  const { ssh, explicit, resolved, context } = input
  const given = (key: string) => explicit.has(key)
  const hostname = resolved?.hostname ?? input.alias
  const port = input.port ?? resolved?.port ?? input.fallbackPort ?? 22
  const user = input.user ?? resolved?.user ?? input.fallbackUser ?? context.localUser
  const tokens = {
    host: input.alias,
    hostname,
    user,
    port: String(port),
    homeDir: context.homeDir,
    localUser: context.localUser,
    env: process.env,
  }
  const identityFiles = resolved?.identityFiles.length
    ? resolved.identityFiles
    : DEFAULT_IDENTITY_FILES.map((file) => expandPath(file, tokens))
  const knownHostsFiles =
    given('knownHosts') || !resolved?.userKnownHostsFiles.length
      ? [ssh.knownHosts]
      : resolved.userKnownHostsFiles
  const strict = resolved?.strictHostKeyChecking
  const hostKeyPolicy: HostKeyPolicy =
    given('hostKey') || strict === undefined
      ? ssh.hostKey
      : strict === 'accept-new' || strict === 'no'
        ? 'accept-new'
        : 'strict'
  const interval = resolved?.serverAliveInterval
  return {
    label: input.label,
    alias: input.alias,
    hostname,
    port,
    user,
    ...(given('identity') && ssh.identity ? { identity: ssh.identity } : {}),
    identityFiles,
    identitiesOnly: resolved?.identitiesOnly ?? false,
    certificateFiles: resolved?.certificateFiles ?? [],
    knownHostsFiles,
    hostKeyPolicy,
    ...(resolved?.hostKeyAlias ? { hostKeyAlias: resolved.hostKeyAlias } : {}),
    connectTimeout:
      given('connectTimeout') || resolved?.connectTimeout === undefined
        ? ssh.connectTimeout
        : resolved.connectTimeout,
    keepaliveIntervalMs: interval ? interval * 1000 : DEFAULT_KEEPALIVE_MS,
    sources: resolved?.sources ?? {},
  }
}

const SOURCE_NAMES: Record<SshConfigKey, string> = {
  hostname: 'HostName',
  user: 'User',
  port: 'Port',
  identityFiles: 'IdentityFile',
  identitiesOnly: 'IdentitiesOnly',
  proxyJump: 'ProxyJump',
  userKnownHostsFiles: 'UserKnownHostsFile',
  strictHostKeyChecking: 'StrictHostKeyChecking',
  connectTimeout: 'ConnectTimeout',
  serverAliveInterval: 'ServerAliveInterval',
  hostKeyAlias: 'HostKeyAlias',
  certificateFiles: 'CertificateFile',
  proxyCommand: 'ProxyCommand',
}

/**
 * Which ssh_config lines shaped this endpoint, for error messages: `HostName (~/.ssh/config:3), Port
 * (~/.ssh/config:4)`. Empty when ssh_config set nothing or the lines are not known.
 */
export function describeSources(endpoint: Pick<Endpoint, 'sources'>, keys?: readonly SshConfigKey[]): string {
  const home = os.homedir()
  return (Object.keys(endpoint.sources) as SshConfigKey[])
    .filter((key) => !keys || keys.includes(key))
    .map((key) => {
      const source = endpoint.sources[key]!
      const file = source.file.startsWith(`${home}${path.sep}`)
        ? `~${source.file.slice(home.length)}`
        : source.file
      return `${SOURCE_NAMES[key]} (${file}:${source.line})`
    })
    .join(', ')
}
