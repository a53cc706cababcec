import { readFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {
  type Document,
  isAlias,
  isMap,
  isNode,
  isScalar,
  isSeq,
  LineCounter,
  parseDocument,
  type YAMLError,
} from 'yaml'
import { ConfigError, DeployerError, ExitCode } from '../errors.js'
import { applySshEnv } from './ssh-env.js'
import { didYouMean } from './suggest.js'
import type {
  DeployConfig,
  HealthSettings,
  HostConfig,
  HostKeyPolicy,
  InstallSettings,
  RestartKind,
  ServerSettings,
  SharedSettings,
  SshSettings,
  Strategy,
} from './types.js'

/**
 * Reads and validates a deployer.yml. A missing or unreadable file is a DeployerError with the config exit
 * code; a file with problems is one ConfigError listing every problem with its line and column. The
 * `DEPLOYER_SSH_IDENTITY`, `DEPLOYER_KNOWN_HOSTS` and `DEPLOYER_HOST_KEY` variables override `ssh:`.
 */
export async function loadConfig(
  file: string,
  options: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<DeployConfig> {
  const env = options.env ?? process.env
  const cwd = options.cwd ?? process.cwd()
  const homeDir = env.HOME || os.homedir()
  const absolute = path.resolve(cwd, file)
  let text: string
  try {
    text = await readFile(absolute, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT') {
      throw new DeployerError(`There is no config file at ${absolute}.`, {
        exitCode: ExitCode.config,
        hint: 'Run `deployer init` to write one, or pass --config FILE.',
        cause: error,
      })
    }
    throw new DeployerError(`Cannot read the config file ${absolute} (${code ?? String(error)}).`, {
      exitCode: ExitCode.config,
      hint: 'Check that the path is a readable file.',
      cause: error,
    })
  }
  return applySshEnv(parseConfig(text, absolute, env, homeDir), env, { cwd, homeDir })
}

/**
 * Validates the text of a deployer.yml and fills in every default. `file` should be absolute: it names the
 * file in problems and `source` and other local paths are resolved against its directory. Throws one
 * ConfigError with every problem found, each as `file:line:col: key.path: message`.
 */
export function parseConfig(
  text: string,
  file: string,
  env: NodeJS.ProcessEnv,
  homeDir: string,
): DeployConfig {
  const lineCounter = new LineCounter()
  // prettyErrors would append a code frame to each message; we report positions our own way.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false })
  const format = (problems: Problem[]) => formatProblems(file, lineCounter, problems)
  // Past a syntax error the tree is a guess: checking keys in it would bury the real problem in noise.
  if (doc.errors.length > 0) throw new ConfigError(file, format(doc.errors.map(syntaxProblem)))

  const ctx: Ctx = { doc, env, homeDir, configDir: path.dirname(file), problems: [] }
  const config = readConfig(ctx, file)
  if (ctx.problems.length > 0) throw new ConfigError(file, format(ctx.problems))
  return config
}

/** One target as written in `hosts:` (`deploy@web1:2222`, `[::1]:22`, `local`), before defaults apply. */
export type HostSpec = { kind: 'local' } | { kind: 'ssh'; user?: string; hostname: string; port?: number }

/**
 * Parses `user@host[:port]`, `host`, `host:port`, `[ipv6]:port`, a bare IPv6 address or `local`. Problems
 * never quote the spec back, so a caller can decide whether the text is safe to show.
 */
export function parseHostSpec(spec: string): { ok: true; spec: HostSpec } | { ok: false; problem: string } {
  const fail = (problem: string) => ({ ok: false as const, problem })
  if (spec === 'local') return { ok: true, spec: { kind: 'local' } }
  if (spec === '') return fail('is empty')
  if (/[\s\x00-\x1f\x7f]/.test(spec)) return fail('must not contain spaces or control characters')

  let rest = spec
  let user: string | undefined
  const at = spec.indexOf('@')
  if (at >= 0) {
    user = spec.slice(0, at)
    rest = spec.slice(at + 1)
    if (user === '') return fail('has nothing before the @: write user@host')
    if (!USER_PATTERN.test(user)) return fail('has an invalid user name before the @')
  }

  let hostname: string
  let portText: string | undefined
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']')
    if (close < 0) return fail('opens an IPv6 address with [ but never closes it')
    hostname = rest.slice(1, close)
    const after = rest.slice(close + 1)
    if (after !== '') {
      if (!after.startsWith(':')) return fail('must have nothing but :port after the ]')
      portText = after.slice(1)
    }
    if (!IPV6_PATTERN.test(hostname)) return fail('has an invalid IPv6 address between [ and ]')
  } else {
    const colons = rest.split(':').length - 1
    if (colons >= 2) {
      // Two colons or more can only be an IPv6 address; a port needs the [addr]:port form to be unambiguous.
      if (!IPV6_PATTERN.test(rest)) return fail('is not a valid address: write IPv6 addresses as [addr]:port')
      hostname = rest
    } else {
      const colon = rest.indexOf(':')
      hostname = colon < 0 ? rest : rest.slice(0, colon)
      portText = colon < 0 ? undefined : rest.slice(colon + 1)
      if (hostname === '') return fail('has no host name')
      // A leading `-` would read as an option to anything that passes the name to a command line.
      if (!HOSTNAME_PATTERN.test(hostname)) return fail('has an invalid host name')
    }
  }

  if (portText === undefined) return { ok: true, spec: { kind: 'ssh', hostname, ...(user ? { user } : {}) } }
  if (!/^\d+$/.test(portText)) return fail('has a port that is not a number')
  const port = Number(portText)
  if (port < 1 || port > 65535) return fail('has a port outside 1-65535')
  return { ok: true, spec: { kind: 'ssh', hostname, port, ...(user ? { user } : {}) } }
}

/**
 * Why `deployTo` is unsafe to release into, or undefined when it is fine. Releases are created, flipped
 * and pruned (`rm -rf`) under it, so a typo must never aim that at `/`, a system directory or a path
 * that means something else once the remote shell or `..` gets at it.
 */
export function deployToProblem(deployTo: string): string | undefined {
  if (deployTo === '') return 'must not be empty'
  if (/[\x00-\x1f\x7f]/.test(deployTo)) return 'must not contain control characters such as newlines'
  if (!deployTo.startsWith('/')) return 'must be an absolute path'
  if (deployTo.split('/').includes('..')) return 'must not contain .. segments'
  if (path.posix.normalize(deployTo) === '/') return 'must not be / itself'
  if (path.posix.normalize(deployTo) !== deployTo || deployTo.endsWith('/')) {
    return 'must be normalised: no //, no /./ and no trailing /'
  }
  if (SYSTEM_DIRS.has(deployTo)) return 'is a system directory: use a directory of its own, such as /srv/APP'
  return undefined
}

/**
 * Expands `${VAR}` and `${VAR:-default}` (default when VAR is unset or empty) from `env`; `$${` is a
 * literal `${` so shell commands can keep their own `${...}`. `$VAR` without braces is left alone for the
 * same reason. Problems name variables only: their values may be secrets.
 */
export function expandEnv(
  text: string,
  env: NodeJS.ProcessEnv,
): { value: string; fromEnv: boolean; problems: string[] } {
  const problems: string[] = []
  let fromEnv = false
  const value = text.replace(
    /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{/g,
    (match, name: string | undefined, fallback: string | undefined) => {
      if (match === '$${') return '${'
      if (name === undefined) {
        problems.push('has a ${ that is not ${NAME} or ${NAME:-default} (write $${ for a literal ${)')
        return match
      }
      fromEnv = true
      const set = env[name]
      if (fallback !== undefined) return set ? set : fallback
      if (set === undefined) {
        problems.push(`\${${name}} is not set: set it in the environment or write \${${name}:-default}`)
        return match
      }
      return set
    },
  )
  return { value, fromEnv, problems }
}

/**
 * The hosts that `--host` names select, in config order; all of them when `names` is empty. A name matches
 * a host's name or, failing that, its host name. An unknown name is an error listing the known ones.
 */
export function selectHosts(config: DeployConfig, names: readonly string[]): HostConfig[] {
  if (names.length === 0) return config.hosts
  const matches = (host: HostConfig, name: string) => host.name === name || host.hostname === name
  const unknown = names.filter((name) => !config.hosts.some((host) => matches(host, name)))
  if (unknown.length > 0) {
    const quoted = unknown.map((name) => JSON.stringify(name)).join(', ')
    throw new DeployerError(
      `${config.file} has no host named ${quoted}; its hosts are ${config.hosts.map((host) => host.name).join(', ')}.`,
      { exitCode: ExitCode.usage, hint: 'Pass --host with one of the names above, or its host name.' },
    )
  }
  return config.hosts.filter((host) => names.some((name) => matches(host, name)))
}

// ---------------------------------------------------------------------------------------------------------

const TOP_KEYS = [
  'app',
  'source',
  'exclude',
  'deploy_to',
  'keep_releases',
  'hosts',
  'strategy',
  'concurrency',
  'batch',
  'canary_then',
  'on_failure',
  'ssh',
  'shared',
  'install',
  'server',
  'health',
] as const
const SSH_KEYS = ['user', 'identity', 'known_hosts', 'host_key', 'connect_timeout'] as const
const SHARED_KEYS = ['files', 'dirs'] as const
const INSTALL_KEYS = ['command', 'lockfiles', 'vendor', 'check'] as const
const SERVER_KEYS = [
  'kind',
  'config',
  'pidfile',
  'control_url',
  'control_token',
  'restart',
  'start',
  'full_restart',
  'env_files',
  'restart_timeout',
] as const
const ENV_FILE_KEYS = ['path', 'loaded_by'] as const
const ENV_LOADERS = ['process_manager', 'puma'] as const
const HEALTH_KEYS = ['url', 'expect', 'timeout'] as const
const HOST_KEYS = ['name', 'ssh', 'deploy_to', 'port', 'user'] as const
/** Sections whose keys are sometimes written at the top level by mistake (`known_hosts:` instead of under `ssh:`). */
const SECTION_KEYS: Record<string, readonly string[]> = {
  ssh: SSH_KEYS,
  shared: SHARED_KEYS,
  install: INSTALL_KEYS,
  server: SERVER_KEYS,
  health: HEALTH_KEYS,
}

const STRATEGIES = ['parallel', 'rolling', 'canary'] as const satisfies readonly Strategy[]
const ON_FAILURE = ['rollback', 'stop'] as const
const CANARY_THEN = ['parallel', 'rolling'] as const
const HOST_KEY_POLICIES = ['strict', 'accept-new'] as const satisfies readonly HostKeyPolicy[]
const RESTARTS = ['auto', 'phased', 'hot', 'full', 'none'] as const satisfies readonly RestartKind[]
const SERVER_KINDS = ['puma'] as const

const DEFAULT_EXCLUDE = ['.git', 'log', 'tmp', 'node_modules']
const DEFAULT_LOCKFILES = ['Gemfile.lock']

/** Exactly these directories; their subdirectories (`/var/www/shop`, `/home/deploy/shop`) are fine. */
const SYSTEM_DIRS = new Set([
  '/bin',
  '/boot',
  '/dev',
  '/etc',
  '/home',
  '/lib',
  '/lib64',
  '/proc',
  '/root',
  '/run',
  '/sbin',
  '/sys',
  '/usr',
  '/var',
  '/tmp',
])

/** What `app:` may hold: letters, digits, `.`, `_` and `-`, starting with a letter or digit. */
export const APP_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/
/** POSIX portable user names; no leading `-` so a name can never read as an option. */
export const USER_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/
const HOSTNAME_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/
// Hex groups, embedded IPv4 and an optional zone (`fe80::1%eth0`); must contain a colon to be IPv6 at all.
const IPV6_PATTERN = /^(?=[^%]*:)[0-9A-Fa-f:.]+(%[A-Za-z0-9_.-]+)?$/

interface Ctx {
  readonly doc: Document
  readonly env: NodeJS.ProcessEnv
  readonly homeDir: string
  readonly configDir: string
  readonly problems: Problem[]
}

/** A problem before it is given a line: `offset` is a character offset into the file. */
interface Problem {
  offset: number
  path: string
  message: string
}

/** A node of the file with its key path (`hosts[2].deploy_to`) and where problems about it point. */
interface Entry {
  node: unknown
  path: string
  offset: number
}

/** A value under a key; `keyOffset` is where the key itself is, for problems about the key. */
interface Field extends Entry {
  keyOffset: number
}

/** A string value after `${VAR}` expansion; `raw` is what the file says, the only form safe to show. */
interface Text extends Entry {
  value: string
  raw: string
  fromEnv: boolean
}

function readConfig(ctx: Ctx, file: string): DeployConfig {
  const root: Entry = { node: ctx.doc.contents, path: '', offset: offsetOf(ctx.doc.contents, 0) }
  if (isNull(root.node)) {
    report(ctx, root, 'the file is empty: it needs at least app, deploy_to and hosts')
  }
  const fields = isNull(root.node) ? undefined : readMap(ctx, root, TOP_KEYS)

  const appText = readText(ctx, required(ctx, fields, 'app', root))
  if (appText && !APP_PATTERN.test(appText.value)) {
    report(
      ctx,
      appText,
      `${show(appText)} must start with a letter or digit and hold only letters, digits, ., _ and -`,
    )
  }

  const sourceText = readText(ctx, optional(fields, 'source'))
  const source = sourceText ? readLocalPath(ctx, sourceText) : ctx.configDir

  const deployTo = readDeployTo(ctx, required(ctx, fields, 'deploy_to', root))
  const ssh = readSsh(ctx, optional(fields, 'ssh'))

  return {
    file,
    app: appText?.value ?? '',
    source,
    exclude: readRelativePaths(ctx, optional(fields, 'exclude')) ?? DEFAULT_EXCLUDE,
    deployTo: deployTo ?? '',
    keepReleases: readInteger(ctx, optional(fields, 'keep_releases'), 1) ?? 5,
    hosts: readHosts(ctx, required(ctx, fields, 'hosts', root), {
      deployTo,
      ssh: ssh.settings,
      user: ssh.user,
    }),
    strategy: readEnum(ctx, optional(fields, 'strategy'), STRATEGIES) ?? 'parallel',
    concurrency: readInteger(ctx, optional(fields, 'concurrency'), 1) ?? 10,
    batch: readInteger(ctx, optional(fields, 'batch'), 1) ?? 1,
    canaryThen: readEnum(ctx, optional(fields, 'canary_then'), CANARY_THEN) ?? 'parallel',
    onFailure: readEnum(ctx, optional(fields, 'on_failure'), ON_FAILURE) ?? 'rollback',
    ssh: ssh.settings,
    shared: readShared(ctx, optional(fields, 'shared')),
    ...optionalSection('install', readInstall(ctx, optional(fields, 'install'))),
    ...optionalSection('server', readServer(ctx, optional(fields, 'server'))),
    ...optionalSection('health', readHealth(ctx, optional(fields, 'health'))),
  }
}

function readSsh(ctx: Ctx, field: Field | undefined): { settings: SshSettings; user?: string } {
  const fields = field ? readMap(ctx, field, SSH_KEYS) : undefined
  const identity = readText(ctx, optional(fields, 'identity'))
  const knownHosts = readText(ctx, optional(fields, 'known_hosts'))
  const user = readText(ctx, optional(fields, 'user'))
  if (user && !USER_PATTERN.test(user.value)) report(ctx, user, `${show(user)} is not a valid user name`)
  return {
    settings: {
      ...(identity ? { identity: readLocalPath(ctx, identity) } : {}),
      knownHosts: knownHosts ? readLocalPath(ctx, knownHosts) : path.join(ctx.homeDir, '.ssh', 'known_hosts'),
      hostKey: readEnum(ctx, optional(fields, 'host_key'), HOST_KEY_POLICIES) ?? 'strict',
      connectTimeout: readDuration(ctx, optional(fields, 'connect_timeout')) ?? 10,
    },
    ...(user ? { user: user.value } : {}),
  }
}

interface HostDefaults {
  deployTo: string | undefined
  ssh: SshSettings
  user: string | undefined
}

function readHosts(ctx: Ctx, field: Field | undefined, defaults: HostDefaults): HostConfig[] {
  if (!field) return []
  const node = deref(ctx, field.node)
  if (!isSeq(node)) {
    report(ctx, field, 'must be a list of hosts: user@host[:port], local, or { name, ssh } mappings')
    return []
  }
  if (node.items.length === 0) report(ctx, field, 'must list at least one host')

  const hosts: HostConfig[] = []
  const byName = new Map<string, string>()
  const byTarget = new Map<string, string>()
  node.items.forEach((item, index) => {
    const entry: Entry = { node: item, path: `${field.path}[${index}]`, offset: offsetOf(item, field.offset) }
    const built = isMap(deref(ctx, item))
      ? readHostMapping(ctx, entry, defaults)
      : readHostString(ctx, entry, defaults)
    if (!built) return
    const { host, shownName } = built

    const sameName = byName.get(host.name)
    if (sameName !== undefined) {
      report(ctx, entry, `the name ${shownName} is also used by ${sameName}; names must be unique`)
      return
    }
    byName.set(host.name, entry.path)
    // Two entries for one directory on one machine would fight over its lock and its release numbers.
    const target = `${host.kind === 'local' ? 'local' : `${host.hostname?.toLowerCase()}:${host.port}`} ${host.deployTo}`
    const sameTarget = byTarget.get(target)
    if (sameTarget !== undefined)
      report(ctx, entry, `deploys to the same machine and deploy_to as ${sameTarget}`)
    byTarget.set(target, entry.path)
    hosts.push(host)
  })
  return hosts
}

/** A host read from the file, and its name as it may be shown in messages. */
type BuiltHost = { host: HostConfig; shownName: string }

function readHostString(ctx: Ctx, entry: Entry, defaults: HostDefaults): BuiltHost | undefined {
  const node = deref(ctx, entry.node)
  if (!isScalar(node) || typeof node.value !== 'string') {
    report(ctx, entry, 'must be user@host[:port], local, or a mapping with name and ssh')
    return undefined
  }
  const text = readText(ctx, entry)
  if (!text) return undefined
  const parsed = parseHostSpec(text.value)
  if (!parsed.ok) {
    report(ctx, text, `${show(text)} ${parsed.problem}`)
    return undefined
  }
  if (defaults.deployTo === undefined) return undefined
  return buildHost(ctx, entry, text, parsed.spec, { deployTo: defaults.deployTo }, defaults)
}

function readHostMapping(ctx: Ctx, entry: Entry, defaults: HostDefaults): BuiltHost | undefined {
  const fields = readMap(ctx, entry, HOST_KEYS)
  const name = readText(ctx, required(ctx, fields, 'name', entry))
  const sshField = optional(fields, 'ssh')
  // Without `ssh`, the name is also the address: `{ name: web3.example.com, deploy_to: /srv/blue }`.
  const address = sshField ? readText(ctx, sshField) : name
  if (sshField && name && /[\s\x00-\x1f\x7f]/.test(name.value)) {
    report(ctx, name, `${show(name)} must not contain spaces or control characters`)
  }
  const parsed = address ? parseHostSpec(address.value) : undefined
  if (address && parsed && !parsed.ok) report(ctx, address, `${show(address)} ${parsed.problem}`)

  const deployToField = optional(fields, 'deploy_to')
  const deployTo = deployToField ? readDeployTo(ctx, deployToField) : defaults.deployTo
  const user = readText(ctx, optional(fields, 'user'))
  if (user && !USER_PATTERN.test(user.value)) report(ctx, user, `${show(user)} is not a valid user name`)
  const port = readInteger(ctx, optional(fields, 'port'), 1, 65535)

  if (parsed?.ok && parsed.spec.kind === 'local') {
    if (user) report(ctx, user, 'does not apply to a local host')
    if (port !== undefined) report(ctx, fields?.get('port') ?? entry, 'does not apply to a local host')
  }
  if (parsed?.ok && parsed.spec.kind === 'ssh' && address) {
    // Two answers to "which user" would be a guess either way; make the user pick one.
    if (user && parsed.spec.user !== undefined)
      report(ctx, user, `conflicts with the user in ${show(address)}`)
    if (port !== undefined && parsed.spec.port !== undefined) {
      report(ctx, fields?.get('port') ?? entry, `conflicts with the port in ${show(address)}`)
    }
  }
  if (!name || !parsed?.ok || deployTo === undefined) return undefined
  return buildHost(ctx, entry, name, parsed.spec, { deployTo, user: user?.value, port }, defaults)
}

function buildHost(
  ctx: Ctx,
  entry: Entry,
  name: Text,
  spec: HostSpec,
  overrides: { deployTo: string; user?: string; port?: number },
  defaults: HostDefaults,
): BuiltHost | undefined {
  const common = { name: name.value, port: 22, deployTo: overrides.deployTo, ssh: defaults.ssh }
  const shownName = show(name)
  if (spec.kind === 'local') return { host: { ...common, kind: 'local' }, shownName }
  const user = spec.user ?? overrides.user ?? defaults.user ?? ctx.env.USER
  if (!user) {
    report(
      ctx,
      entry,
      'has no user to connect as: write user@host, set ssh.user, or set USER in the environment',
    )
    return undefined
  }
  const port = spec.port ?? overrides.port ?? 22
  return { host: { ...common, kind: 'ssh', user, hostname: spec.hostname, port }, shownName }
}

function readShared(ctx: Ctx, field: Field | undefined): SharedSettings {
  const fields = field ? readMap(ctx, field, SHARED_KEYS) : undefined
  return {
    files: readRelativePaths(ctx, optional(fields, 'files')) ?? [],
    dirs: readRelativePaths(ctx, optional(fields, 'dirs')) ?? [],
  }
}

function readInstall(ctx: Ctx, field: Field | undefined): InstallSettings | undefined {
  if (!field) return undefined
  const fields = readMap(ctx, field, INSTALL_KEYS)
  const command = readText(ctx, required(ctx, fields, 'command', field))
  const vendor = readText(ctx, optional(fields, 'vendor'))
  const vendorPath = vendor ? relativePath(ctx, vendor) : undefined
  const check = readText(ctx, optional(fields, 'check'))
  // The check stands in for the install only over dependencies reused from the previous release.
  if (check && !vendor) report(ctx, check, 'needs install.vendor: only reused dependencies are checked')
  return {
    command: command?.value ?? '',
    lockfiles: readRelativePaths(ctx, optional(fields, 'lockfiles')) ?? DEFAULT_LOCKFILES,
    ...(vendorPath ? { vendor: vendorPath } : {}),
    ...(check?.value ? { check: check.value } : {}),
    ...(command?.fromEnv ? { commandAsWritten: command.raw } : {}),
    ...(check?.fromEnv ? { checkAsWritten: check.raw } : {}),
  }
}

function readServer(ctx: Ctx, field: Field | undefined): ServerSettings | undefined {
  if (!field) return undefined
  const fields = readMap(ctx, field, SERVER_KEYS)
  const config = readText(ctx, optional(fields, 'config'))
  const pidfile = readText(ctx, optional(fields, 'pidfile'))
  const controlUrl = readText(ctx, optional(fields, 'control_url'))
  if (controlUrl && !/^(unix|tcp|ssl):\/\/./.test(controlUrl.value)) {
    report(
      ctx,
      controlUrl,
      `${show(controlUrl)} must be a Puma control URL: unix://PATH, tcp://HOST:PORT or ssl://…`,
    )
  }
  const controlToken = readText(ctx, optional(fields, 'control_token'))
  const start = readText(ctx, optional(fields, 'start'))
  const fullRestart = readText(ctx, optional(fields, 'full_restart'))
  const envFiles = readEnvFiles(ctx, optional(fields, 'env_files'))
  const restartTimeout = readDuration(ctx, optional(fields, 'restart_timeout'))
  return {
    kind: readEnum(ctx, optional(fields, 'kind'), SERVER_KINDS) ?? 'puma',
    config: (config && relativePath(ctx, config)) ?? 'config/puma.rb',
    pidfile: (pidfile && hostPath(ctx, pidfile)) ?? 'shared/tmp/pids/puma.pid',
    ...(controlUrl ? { controlUrl: controlUrl.value } : {}),
    ...(controlToken ? { controlToken: controlToken.value } : {}),
    restart: readEnum(ctx, optional(fields, 'restart'), RESTARTS) ?? 'auto',
    ...(start ? { start: start.value } : {}),
    ...(fullRestart ? { fullRestart: fullRestart.value } : {}),
    envFiles: (envFiles ?? []).filter((file) => file.loadedBy === 'process_manager').map((file) => file.path),
    pumaEnvFiles: (envFiles ?? []).filter((file) => file.loadedBy === 'puma').map((file) => file.path),
    ...(restartTimeout === undefined ? {} : { restartTimeout }),
  }
}

/**
 * `server.env_files`: each a path (the process manager loads it: systemd EnvironmentFile, the start
 * command) or `{ path, loaded_by: puma }` for a file puma.rb loads itself (dotenv), which a hot restart
 * re-reads. A change to the first kind needs a full restart, to the second a hot one.
 */
function readEnvFiles(
  ctx: Ctx,
  field: Field | undefined,
): { path: string; loadedBy: (typeof ENV_LOADERS)[number] }[] | undefined {
  if (!field) return undefined
  const node = deref(ctx, field.node)
  if (!isSeq(node)) {
    report(ctx, field, `must be a list, not ${describe(node)} (write [a, b] or one "- item" per line)`)
    return undefined
  }
  return node.items.map((item, index) => {
    const entry = { node: item, path: `${field.path}[${index}]`, offset: offsetOf(item, field.offset) }
    if (!isMap(deref(ctx, item))) {
      const text = readText(ctx, entry)
      return { path: (text && hostPath(ctx, text)) ?? '', loadedBy: 'process_manager' as const }
    }
    const fields = readMap(ctx, entry, ENV_FILE_KEYS)
    const text = readText(ctx, required(ctx, fields, 'path', entry))
    return {
      path: (text && hostPath(ctx, text)) ?? '',
      loadedBy: readEnum(ctx, optional(fields, 'loaded_by'), ENV_LOADERS) ?? 'process_manager',
    }
  })
}

function readHealth(ctx: Ctx, field: Field | undefined): HealthSettings | undefined {
  if (!field) return undefined
  const fields = readMap(ctx, field, HEALTH_KEYS)
  const url = readText(ctx, required(ctx, fields, 'url', field))
  if (url && !isHttpUrl(url.value)) report(ctx, url, `${show(url)} must be an http:// or https:// URL`)
  const expect = readText(ctx, optional(fields, 'expect'))
  return {
    url: url?.value ?? '',
    ...(url?.fromEnv ? { urlAsWritten: url.raw } : {}),
    ...(expect ? { expect: expect.value } : {}),
    timeout: readDuration(ctx, optional(fields, 'timeout')) ?? 60,
  }
}

// ---------------------------------------------------------------------------------------------------------
// Readers: each checks one node, reports what is wrong with it, and returns undefined when it is unusable.

function readMap(ctx: Ctx, entry: Entry, allowed: readonly string[]): Map<string, Field> | undefined {
  const node = deref(ctx, entry.node)
  if (!isMap(node)) {
    const what = entry.path === '' ? 'the top level must be a mapping' : 'must be a mapping'
    report(ctx, entry, `${what} with keys such as ${allowed.slice(0, 3).join(', ')}`)
    return undefined
  }
  const fields = new Map<string, Field>()
  for (const pair of node.items) {
    const keyOffset = offsetOf(pair.key, entry.offset)
    const key = isScalar(pair.key) ? pair.key.value : undefined
    if (typeof key !== 'string') {
      report(ctx, { ...entry, offset: keyOffset }, 'has a key that is not a plain word')
      continue
    }
    const keyPath = joinPath(entry.path, key)
    if (!allowed.includes(key)) {
      report(ctx, { path: keyPath, offset: keyOffset }, unknownKeyMessage(key, allowed, entry.path))
      continue
    }
    fields.set(key, { node: pair.value, path: keyPath, offset: offsetOf(pair.value, keyOffset), keyOffset })
  }
  return fields
}

function unknownKeyMessage(key: string, allowed: readonly string[], parentPath: string): string {
  const suggestion = didYouMean(key, allowed)
  if (suggestion) return `unknown key; did you mean ${suggestion}?`
  if (parentPath === '') {
    const section = Object.keys(SECTION_KEYS).find((name) => SECTION_KEYS[name]?.includes(key))
    if (section) return `unknown key at the top level; did you mean ${section}.${key} (under ${section}:)?`
  }
  return `unknown key; expected one of ${allowed.join(', ')}`
}

/** A key's field when it has a value; `key:` with nothing after it counts as absent. */
function optional(fields: Map<string, Field> | undefined, key: string): Field | undefined {
  const field = fields?.get(key)
  return field && !isNull(field.node) ? field : undefined
}

function required(
  ctx: Ctx,
  fields: Map<string, Field> | undefined,
  key: string,
  parent: Entry,
): Field | undefined {
  // No fields means the parent was not a mapping at all, which is already reported.
  if (!fields) return undefined
  const field = fields.get(key)
  if (field && !isNull(field.node)) return field
  if (field) report(ctx, { ...field, offset: field.keyOffset }, 'needs a value')
  else report(ctx, { ...parent, path: joinPath(parent.path, key) }, 'is required')
  return undefined
}

function readText(ctx: Ctx, entry: Entry | undefined): Text | undefined {
  if (!entry) return undefined
  const node = deref(ctx, entry.node)
  let raw: string
  if (isScalar(node) && typeof node.value === 'string') raw = node.value
  // `app: 2048` or `expect: 200`: keep the digits exactly as written (`0123` would otherwise become 123).
  else if (isScalar(node) && typeof node.value === 'number' && node.source) raw = node.source
  else {
    report(ctx, entry, `must be a string, not ${describe(node)}`)
    return undefined
  }
  const expansion = expandEnv(raw, ctx.env)
  for (const problem of expansion.problems) report(ctx, entry, problem)
  if (expansion.problems.length > 0) return undefined
  if (expansion.value === '') {
    report(ctx, entry, expansion.fromEnv ? 'is empty once ${...} is expanded' : 'must not be empty')
    return undefined
  }
  return { ...entry, value: expansion.value, raw, fromEnv: expansion.fromEnv }
}

function readTexts(ctx: Ctx, field: Field | undefined): Text[] | undefined {
  if (!field) return undefined
  const node = deref(ctx, field.node)
  if (!isSeq(node)) {
    report(ctx, field, `must be a list, not ${describe(node)} (write [a, b] or one "- item" per line)`)
    return undefined
  }
  const texts = node.items.map((item, index) =>
    readText(ctx, { node: item, path: `${field.path}[${index}]`, offset: offsetOf(item, field.offset) }),
  )
  return texts.every((text) => text !== undefined) ? texts : undefined
}

function readRelativePaths(ctx: Ctx, field: Field | undefined): string[] | undefined {
  const texts = readTexts(ctx, field)
  if (!texts) return undefined
  const paths = texts.map((text) => relativePath(ctx, text))
  return paths.every((entry) => entry !== undefined) ? paths : undefined
}

/** A path inside a release: relative, never climbing out with `..`, stored normalised. */
function relativePath(ctx: Ctx, text: Text): string | undefined {
  const problem = relativePathProblem(text.value)
  if (problem) {
    report(ctx, text, `${show(text)} ${problem}`)
    return undefined
  }
  return path.posix.normalize(text.value).replace(/\/+$/, '')
}

function relativePathProblem(value: string): string | undefined {
  if (/[\x00-\x1f\x7f]/.test(value)) return 'must not contain control characters such as newlines'
  if (value.startsWith('/')) return 'must be a relative path, not an absolute one'
  if (value.split('/').includes('..')) return 'must not contain .. segments'
  if (path.posix.normalize(value).replace(/\/+$/, '') === '.') return 'must name something inside the release'
  return undefined
}

/** A path on the host: absolute, or relative to deploy_to (`shared/tmp/pids/puma.pid`). */
function hostPath(ctx: Ctx, text: Text): string | undefined {
  if (!text.value.startsWith('/')) return relativePath(ctx, text)
  if (/[\x00-\x1f\x7f]/.test(text.value)) {
    report(ctx, text, `${show(text)} must not contain control characters such as newlines`)
    return undefined
  }
  return text.value
}

/** A path on this machine: `~` and `~/` are the home directory; relative paths start at the config's directory. */
function readLocalPath(ctx: Ctx, text: Text): string {
  const value = text.value
  if (value === '~') return ctx.homeDir
  if (value.startsWith('~/')) return path.join(ctx.homeDir, value.slice(2))
  if (value.startsWith('~'))
    report(ctx, text, `${show(text)}: only ~ and ~/ are expanded; write the full path`)
  return path.resolve(ctx.configDir, value)
}

function readDeployTo(ctx: Ctx, field: Field | undefined): string | undefined {
  const text = readText(ctx, field)
  if (!text) return undefined
  const problem = deployToProblem(text.value)
  if (!problem) return text.value
  const normalised = path.posix.normalize(text.value).replace(/(.)\/+$/, '$1')
  // Suggesting the fix would repeat an expanded value, so only values written in the file get one.
  const fix =
    !text.fromEnv && normalised !== text.value && !deployToProblem(normalised) ? `; write ${normalised}` : ''
  report(ctx, text, `${show(text)} ${problem}${fix}`)
  return undefined
}

function readInteger(ctx: Ctx, field: Field | undefined, min: number, max?: number): number | undefined {
  if (!field) return undefined
  const node = deref(ctx, field.node)
  let value: number
  let shown: string
  if (isScalar(node) && typeof node.value === 'number') {
    value = node.value
    shown = String(node.value)
  } else if (isScalar(node) && typeof node.value === 'string' && node.value.includes('${')) {
    // `concurrency: ${DEPLOY_CONCURRENCY}`: a string in YAML, a number once expanded.
    const text = readText(ctx, field)
    if (!text) return undefined
    value = /^\d+$/.test(text.value) ? Number(text.value) : Number.NaN
    shown = JSON.stringify(text.raw)
  } else {
    report(ctx, field, `must be a whole number, not ${describe(node)}`)
    return undefined
  }
  if (!Number.isInteger(value)) {
    report(ctx, field, `must be a whole number, not ${shown}`)
    return undefined
  }
  if (value < min || (max !== undefined && value > max)) {
    const range = max === undefined ? `at least ${min}` : `between ${min} and ${max}`
    report(ctx, field, `must be ${range}, not ${shown}`)
    return undefined
  }
  return value
}

/** Seconds, from `60`, `"60s"`, `"2m"`, `"1.5h"`. */
function readDuration(ctx: Ctx, field: Field | undefined): number | undefined {
  if (!field) return undefined
  const node = deref(ctx, field.node)
  const expected = 'must be a duration above 0, such as 60s, 2m or a number of seconds'
  let seconds: number
  let shown: string
  if (isScalar(node) && typeof node.value === 'number') {
    seconds = node.value
    shown = String(node.value)
  } else if (isScalar(node) && typeof node.value === 'string') {
    const text = readText(ctx, field)
    if (!text) return undefined
    const match = /^(\d+(?:\.\d+)?)\s*(s|m|h)?$/.exec(text.value)
    seconds = match
      ? Number(match[1]) * SECONDS_PER[(match[2] ?? 's') as keyof typeof SECONDS_PER]
      : Number.NaN
    shown = show(text)
  } else {
    report(ctx, field, `${expected}, not ${describe(node)}`)
    return undefined
  }
  if (!(seconds > 0 && Number.isFinite(seconds))) {
    report(ctx, field, `${expected}, not ${shown}`)
    return undefined
  }
  return seconds
}

const SECONDS_PER = { s: 1, m: 60, h: 3600 } as const

function readEnum<T extends string>(ctx: Ctx, field: Field | undefined, values: readonly T[]): T | undefined {
  const text = readText(ctx, field)
  if (!text) return undefined
  if ((values as readonly string[]).includes(text.value)) return text.value as T
  const suggestion = text.fromEnv ? undefined : didYouMean(text.value, values)
  const hint = suggestion ? `; did you mean ${suggestion}?` : ''
  report(ctx, text, `must be one of ${values.join(', ')}, not ${show(text)}${hint}`)
  return undefined
}

// ---------------------------------------------------------------------------------------------------------

function report(ctx: Ctx, at: { path: string; offset: number }, message: string): void {
  ctx.problems.push({ path: at.path, offset: at.offset, message })
}

/** How a value may appear in a message: as written in the file when `${VAR}` filled it, since it may be a secret. */
function show(text: Text): string {
  return text.fromEnv ? `${JSON.stringify(text.raw)} (expanded)` : JSON.stringify(text.value)
}

function deref(ctx: Ctx, node: unknown): unknown {
  return isAlias(node) ? node.resolve(ctx.doc) : node
}

function isNull(node: unknown): boolean {
  return node === null || node === undefined || (isScalar(node) && node.value === null)
}

function offsetOf(node: unknown, fallback: number): number {
  return isNode(node) && node.range ? node.range[0] : fallback
}

function joinPath(parent: string, key: string): string {
  return parent === '' ? key : `${parent}.${key}`
}

function describe(node: unknown): string {
  if (isMap(node)) return 'a mapping'
  if (isSeq(node)) return 'a list'
  if (isScalar(node)) {
    if (node.value === null) return 'empty'
    if (typeof node.value === 'boolean') return `${node.value} (quote it to mean the word)`
    if (typeof node.value === 'number') return 'a number'
    if (typeof node.value === 'string') return 'a string'
  }
  return 'this value'
}

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value)
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== ''
  } catch {
    return false
  }
}

function optionalSection<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V }
}

function syntaxProblem(error: YAMLError): Problem {
  const message =
    error.code === 'MULTIPLE_DOCS'
      ? 'holds more than one YAML document (a second ---); deployer.yml must be a single document'
      : `YAML syntax: ${error.message}`
  return { offset: error.pos[0], path: '', message }
}

function formatProblems(file: string, lines: LineCounter, problems: readonly Problem[]): string[] {
  // Sorted by position so the list reads top to bottom like the file; sort is stable for same-spot problems.
  return [...problems]
    .sort((a, b) => a.offset - b.offset)
    .map((problem) => {
      const { line, col } = lines.linePos(problem.offset)
      const where = `${file}:${Math.max(line, 1)}:${Math.max(col, 1)}`
      return problem.path === ''
        ? `${where}: ${problem.message}`
        : `${where}: ${problem.path}: ${problem.message}`
    })
}
