import { execFile } from 'node:child_process'
import { readdir, readFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import picomatch from 'picomatch'
// ssh-config tokenizes one OpenSSH config line the way ssh does (quotes, `=`, multi-value keywords and Match
// criteria). Include, Host/Match evaluation and first-value-wins live here because the library does no
// Include and keeps no line numbers, and messages must name the file and line that set a value.
import SSHConfig from 'ssh-config'
import { DeployerError, ExitCode } from '../errors.js'
import { matchesHost } from './known-hosts.js'

/**
 * The user's OpenSSH client settings for one host, as plain data both transports use: resolved by
 * `ssh -G` where the OpenSSH client is installed, else by reading the files (Include, Host, Match).
 */

/** Where a value came from. */
export interface SshConfigSource {
  file: string
  /** 1-based. */
  line: number
}

/** The settings deployer takes from ssh_config. */
export type SshConfigKey =
  | 'hostname'
  | 'user'
  | 'port'
  | 'identityFiles'
  | 'identitiesOnly'
  | 'proxyJump'
  | 'userKnownHostsFiles'
  | 'strictHostKeyChecking'
  | 'connectTimeout'
  | 'serverAliveInterval'
  | 'hostKeyAlias'
  | 'certificateFiles'
  | 'proxyCommand'

/** One `ProxyJump` hop: `[user@]host[:port]` or `ssh://[user@]host[:port]`, as written. */
export interface ProxyHop {
  /** The hop as written, for messages. */
  spec: string
  user?: string
  /** The name to connect to; itself looked up in ssh_config (it may be an alias). */
  host: string
  port?: number
}

/**
 * What ssh_config says about one host. A field is undefined (or an empty list) when no config file set
 * it, so the caller's own default applies; OpenSSH's defaults are not filled in here.
 */
export interface SshHostConfig {
  /** The name looked up (an alias or a host name). */
  host: string
  hostname?: string
  user?: string
  port?: number
  /** `~`, `%` tokens and `${VAR}` expanded. Empty: OpenSSH's defaults (DEFAULT_IDENTITY_FILES) apply. */
  identityFiles: string[]
  identitiesOnly?: boolean
  /** The hops in the order they are connected through; `[]` for `ProxyJump none`. */
  proxyJump?: ProxyHop[]
  /** Expanded paths; the first is where new host keys are recorded. */
  userKnownHostsFiles: string[]
  strictHostKeyChecking?: 'yes' | 'no' | 'ask' | 'accept-new'
  /** Seconds. */
  connectTimeout?: number
  /** Seconds; 0 is off. */
  serverAliveInterval?: number
  hostKeyAlias?: string
  certificateFiles: string[]
  /** ProxyCommand as written (`none` left out): the built-in client cannot run it, so it is named in an error. */
  proxyCommand?: string
  /** The file and line that set each value, where known (the parser always knows; `ssh -G` does not say). */
  sources: Partial<Record<SshConfigKey, SshConfigSource>>
  /** `ssh -G` (the OpenSSH client) or `parser` (deployer reading the files). */
  resolvedBy: 'ssh -G' | 'parser'
  /** Lines the parser did not evaluate: `Match exec` (taken as not matching), CanonicalizeHostname, ProxyCommand. */
  skipped: SshConfigSource[]
}

/** Which files to read: the user's (`~/.ssh/config`, then `/etc/ssh/ssh_config`, as ssh) or one file (`ssh -F`). */
export type SshConfigFiles = { kind: 'default' } | { kind: 'file'; file: string }

export interface ResolveOptions {
  /** The name to look up: deployer.yml's host name or alias. */
  host: string
  /** A user given in deployer.yml, which wins and which `Match user` sees (`ssh -l`). */
  user?: string
  /** A port given in deployer.yml (`ssh -p`). */
  port?: number
  files: SshConfigFiles
  /** Default: the user's home directory. */
  homeDir?: string
  /** Default: the user running deployer. */
  localUser?: string
  env?: NodeJS.ProcessEnv
  /** `auto` (default): `ssh -G` when the client is installed, else the parser. */
  resolver?: 'auto' | 'ssh -G' | 'parser'
}

/** OpenSSH's identity files when none is configured, in the order ssh tries them. */
export const DEFAULT_IDENTITY_FILES = [
  '~/.ssh/id_rsa',
  '~/.ssh/id_ecdsa',
  '~/.ssh/id_ecdsa_sk',
  '~/.ssh/id_ed25519',
  '~/.ssh/id_ed25519_sk',
  '~/.ssh/id_xmss',
  '~/.ssh/id_dsa',
] as const

const SYSTEM_CONFIG = '/etc/ssh/ssh_config'
/** Keywords that change what deployer uses in ways the parser does not work out. */
const NOT_EVALUATED = new Set(['canonicalizehostname', 'canonicaldomains', 'proxycommand'])
// OpenSSH's own limit on nested Include.
const MAX_INCLUDE_DEPTH = 16
const SSH_G_TIMEOUT_MS = 10_000

/** An ssh_config file that cannot be read or that ssh rejects. Exit code: config. */
export class SshConfigError extends DeployerError {
  constructor(message: string, hint: string, cause?: unknown) {
    super(message, { exitCode: ExitCode.config, hint, cause })
  }
}

const cache = new Map<string, Promise<SshHostConfig>>()

/**
 * What ssh_config says about `options.host`. Resolved once per process for each host, user, port and file:
 * bastions shared by many hosts are looked up once.
 */
export function resolveSshConfig(options: ResolveOptions): Promise<SshHostConfig> {
  const key = JSON.stringify([options.host, options.user, options.port, options.files, options.resolver])
  let resolved = cache.get(key)
  if (!resolved) {
    resolved = resolveUncached(options)
    // A failure (an unreadable file the user then fixes) must not stick for a long-lived process.
    resolved.catch(() => cache.delete(key))
    cache.set(key, resolved)
  }
  return resolved
}

async function resolveUncached(options: ResolveOptions): Promise<SshHostConfig> {
  const resolver = options.resolver ?? 'auto'
  if (resolver === 'parser') return parseSshConfigFiles(options)
  // ssh -G knows the values but not their lines: the parser gives the lines wherever it agrees.
  const parsed = await parseSshConfigFiles(options).catch(() => undefined)
  // Two ssh processes cost 30 ms to 0.4 s per host on a busy machine. When no file sets anything deployer
  // uses, nor anything the parser cannot evaluate (Match exec, canonicalization, ProxyCommand), ssh -G
  // could only repeat OpenSSH's defaults: the common case on CI, with no ~/.ssh/config.
  if (
    resolver === 'auto' &&
    parsed &&
    Object.keys(parsed.sources).length === 0 &&
    parsed.skipped.length === 0
  ) {
    return parsed
  }
  const fromClient = await resolveWithSshG(options)
  if (fromClient === undefined) {
    if (resolver === 'ssh -G')
      throw new SshConfigError('ssh -G: the OpenSSH client is not installed.', 'Install openssh-client.')
    return parsed ?? parseSshConfigFiles(options)
  }
  if (parsed) {
    for (const key of Object.keys(parsed.sources) as SshConfigKey[]) {
      if (JSON.stringify(parsed[key]) === JSON.stringify(fromClient[key]))
        fromClient.sources[key] = parsed.sources[key]!
    }
  }
  return fromClient
}

// ---------------------------------------------------------------------------------------------------------
// ssh -G

/** `ssh -G` output (`keyword value` lines; repeated keywords repeat) as a map of lowercased keyword to values. */
export function parseSshGOutput(text: string): Map<string, string[]> {
  const values = new Map<string, string[]>()
  for (const line of text.split('\n')) {
    const match = /^(\S+)\s+(.*)$/.exec(line.trim())
    if (!match) continue
    const keyword = match[1]!.toLowerCase()
    values.set(keyword, [...(values.get(keyword) ?? []), match[2]!])
  }
  return values
}

/**
 * The settings that `ssh -G` gives for the host and that differ from what it gives with no config at all
 * (`-F /dev/null`): only those were set by a config file. undefined when ssh is not installed.
 */
async function resolveWithSshG(options: ResolveOptions): Promise<SshHostConfig | undefined> {
  const common = [
    ...(options.user ? ['-l', options.user] : []),
    ...(options.port ? ['-p', String(options.port)] : []),
  ]
  const configArgs = options.files.kind === 'file' ? ['-F', options.files.file] : []
  let configured: string
  let baseline: string
  try {
    ;[configured, baseline] = await Promise.all([
      runSshG([...configArgs, ...common, '--', options.host], options),
      runSshG(['-F', '/dev/null', ...common, '--', options.host], options),
    ])
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    const stderr = String((error as { stderr?: string }).stderr ?? '').trim()
    throw new SshConfigError(
      `\`ssh -G ${[...configArgs, options.host].join(' ')}\` failed: ${stderr || (error as Error).message}`,
      'Fix the ssh_config line it names (`ssh -G HOST` shows what ssh makes of it), or set ssh.config: false in deployer.yml.',
      error,
    )
  }
  return fromSshG(options, parseSshGOutput(configured), parseSshGOutput(baseline))
}

function runSshG(args: string[], options: ResolveOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      'ssh',
      ['-G', ...args],
      { timeout: SSH_G_TIMEOUT_MS, env: options.env ?? process.env, maxBuffer: 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error) reject(Object.assign(error, { stderr }))
        else resolve(stdout)
      },
    )
  })
}

/** Turns `ssh -G` output into SshHostConfig, keeping only what differs from the no-config `baseline`. */
export function fromSshG(
  options: Pick<ResolveOptions, 'host' | 'homeDir' | 'localUser' | 'env'>,
  configured: Map<string, string[]>,
  baseline: Map<string, string[]>,
): SshHostConfig {
  const changed = (keyword: string): string[] | undefined => {
    const value = configured.get(keyword)
    if (value === undefined) return undefined
    return JSON.stringify(value) === JSON.stringify(baseline.get(keyword)) ? undefined : value
  }
  const one = (keyword: string) => changed(keyword)?.[0]
  const hostname = one('hostname')
  const user = one('user')
  const tokens: TokenValues = {
    host: options.host,
    hostname: hostname ?? configured.get('hostname')?.[0] ?? options.host,
    user: user ?? configured.get('user')?.[0],
    port: configured.get('port')?.[0],
    homeDir: options.homeDir ?? os.homedir(),
    localUser: options.localUser ?? os.userInfo().username,
    env: options.env ?? process.env,
  }
  const port = one('port')
  const connectTimeout = one('connecttimeout')
  const serverAlive = one('serveraliveinterval')
  const strict = one('stricthostkeychecking')
  const identitiesOnly = one('identitiesonly')
  const proxyJump = one('proxyjump')
  const alias = one('hostkeyalias')
  const proxyCommand = one('proxycommand')
  return {
    host: options.host,
    ...(hostname !== undefined ? { hostname } : {}),
    ...(user !== undefined ? { user } : {}),
    ...(port !== undefined ? { port: Number(port) } : {}),
    identityFiles: (changed('identityfile') ?? []).map((file) => expandPath(file, tokens)),
    ...(identitiesOnly !== undefined ? { identitiesOnly: identitiesOnly === 'yes' } : {}),
    ...(proxyJump !== undefined ? { proxyJump: parseProxyJump(proxyJump) } : {}),
    userKnownHostsFiles: (changed('userknownhostsfile')?.[0]?.split(/\s+/) ?? []).map((file) =>
      expandPath(file, tokens),
    ),
    ...(strict !== undefined ? { strictHostKeyChecking: normalizeStrict(strict) } : {}),
    ...(connectTimeout !== undefined && connectTimeout !== 'none'
      ? { connectTimeout: Number(connectTimeout) }
      : {}),
    ...(serverAlive !== undefined ? { serverAliveInterval: Number(serverAlive) } : {}),
    ...(alias !== undefined ? { hostKeyAlias: alias } : {}),
    certificateFiles: (changed('certificatefile') ?? []).map((file) => expandPath(file, tokens)),
    ...(proxyCommand !== undefined && proxyCommand !== 'none' ? { proxyCommand } : {}),
    sources: {},
    resolvedBy: 'ssh -G',
    skipped: [],
  }
}

// ---------------------------------------------------------------------------------------------------------
// The parser, for machines without the OpenSSH client.

/** One directive of an ssh_config file. */
export interface ConfigLine {
  /** Lowercased keyword. */
  keyword: string
  /** Arguments, unquoted. */
  args: string[]
  file: string
  line: number
}

/** The directives of ssh_config text, one per line, with comments and blank lines dropped. */
export function parseConfigLines(text: string, file: string): ConfigLine[] {
  const lines: ConfigLine[] = []
  text.split(/\r?\n/).forEach((raw, index) => {
    const trimmed = raw.trim()
    if (trimmed === '' || trimmed.startsWith('#')) return
    let parsed: ReturnType<typeof SSHConfig.parse>
    try {
      parsed = SSHConfig.parse(trimmed)
    } catch (error) {
      throw new SshConfigError(
        `${file}:${index + 1}: cannot parse \`${trimmed}\`: ${(error as Error).message}.`,
        'Fix that line (`ssh -G HOST` shows how ssh reads it), or set ssh.config: false in deployer.yml.',
        error,
      )
    }
    const directive = parsed.find((line) => line.type === SSHConfig.DIRECTIVE)
    if (!directive || !('param' in directive)) return
    const value = directive.value
    const args = Array.isArray(value) ? value.map((part) => part.val) : value === '' ? [] : [value]
    lines.push({ keyword: directive.param.toLowerCase(), args, file, line: index + 1 })
  })
  return lines
}

/** Reads a file's text, or undefined when it does not exist. */
export type ReadConfigFile = (file: string) => Promise<string | undefined>

const readIfExists: ReadConfigFile = async (file) => {
  try {
    return await readFile(file, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new SshConfigError(
      `cannot read the ssh config file ${file} (${(error as NodeJS.ErrnoException).code ?? error}).`,
      'Make it readable by this user, or set ssh.config: false in deployer.yml.',
      error,
    )
  }
}

/**
 * Evaluates the config files for `options.host` as ssh does: the first value obtained for a keyword wins
 * (IdentityFile and CertificateFile accumulate), Host matches the name as given, Match host the host name
 * set so far, and Include reads files in place (relative to ~/.ssh, or /etc/ssh for the system file).
 */
export async function parseSshConfigFiles(
  options: ResolveOptions,
  read: ReadConfigFile = readIfExists,
): Promise<SshHostConfig> {
  const homeDir = options.homeDir ?? os.homedir()
  const localUser = options.localUser ?? os.userInfo().username
  const env = options.env ?? process.env
  const state = new EvaluationState(options.host, options.user, localUser)
  const evaluate = async (file: string, baseDir: string, depth: number): Promise<void> => {
    const text = await read(file)
    if (text === undefined) {
      if (depth === 0 && options.files.kind === 'file') {
        throw new SshConfigError(
          `the ssh config file ${file} (ssh.config in deployer.yml) does not exist.`,
          'Point ssh.config at an existing file, or set it to true for ~/.ssh/config.',
        )
      }
      return
    }
    let active = true
    for (const line of parseConfigLines(text, file)) {
      if (line.keyword === 'host') {
        active = matchesHost(line.args.join(','), options.host.toLowerCase())
        continue
      }
      if (line.keyword === 'match') {
        active = state.matches(line)
        continue
      }
      if (!active) continue
      if (line.keyword === 'include') {
        if (depth >= MAX_INCLUDE_DEPTH) {
          throw new SshConfigError(
            `${file}:${line.line}: Include is nested more than ${MAX_INCLUDE_DEPTH} deep.`,
            'Look for an Include that includes itself.',
          )
        }
        for (const pattern of line.args) {
          const expanded = expandPath(pattern, { host: options.host, homeDir, localUser, env })
          for (const included of await globFiles(path.resolve(baseDir, expanded))) {
            await evaluate(included, baseDir, depth + 1)
          }
        }
        continue
      }
      state.set(line)
    }
  }
  if (options.files.kind === 'file') {
    const file = expandPath(options.files.file, { host: options.host, homeDir, localUser, env })
    await evaluate(file, path.join(homeDir, '.ssh'), 0)
  } else {
    await evaluate(path.join(homeDir, '.ssh', 'config'), path.join(homeDir, '.ssh'), 0)
    await evaluate(SYSTEM_CONFIG, path.dirname(SYSTEM_CONFIG), 0)
  }
  return state.result({ homeDir, localUser, env, port: options.port })
}

/** The values set so far while reading the files, first one wins. */
class EvaluationState {
  private readonly values = new Map<string, ConfigLine>()
  private readonly identityFiles: ConfigLine[] = []
  private readonly certificateFiles: ConfigLine[] = []
  readonly skipped: SshConfigSource[] = []

  constructor(
    private readonly host: string,
    private readonly user: string | undefined,
    private readonly localUser: string,
  ) {}

  set(line: ConfigLine): void {
    // Applied, but beyond this parser: ssh -G decides (the host name or the way to connect may change).
    if (NOT_EVALUATED.has(line.keyword)) this.skipped.push({ file: line.file, line: line.line })
    if (line.keyword === 'identityfile') this.identityFiles.push(line)
    else if (line.keyword === 'certificatefile') this.certificateFiles.push(line)
    else if (!this.values.has(line.keyword)) this.values.set(line.keyword, line)
  }

  /** Match criteria as OpenSSH's match_cfg_line: all must hold; `!` negates one. */
  matches(line: ConfigLine): boolean {
    const args = [...line.args]
    let all = true
    while (args.length > 0) {
      const raw = args.shift()!.toLowerCase()
      const negated = raw.startsWith('!')
      const criterion = negated ? raw.slice(1) : raw
      if (criterion === 'all' || criterion === 'final') continue
      if (criterion === 'canonical') {
        all = false
        continue
      }
      const value = args.shift()
      if (value === undefined) {
        throw new SshConfigError(
          `${line.file}:${line.line}: Match ${criterion} needs an argument.`,
          'Fix that line: `Match host PATTERN`, `Match user PATTERN`, ...',
        )
      }
      let holds: boolean
      switch (criterion) {
        case 'host': {
          const hostname = this.values.get('hostname')?.args[0]
          holds = matchesHost(
            value,
            (hostname ? hostname.replace(/%h/g, this.host) : this.host).toLowerCase(),
          )
          break
        }
        case 'originalhost':
          holds = matchesHost(value, this.host.toLowerCase())
          break
        case 'user':
          holds = matchesHost(value, this.user ?? this.values.get('user')?.args[0] ?? this.localUser)
          break
        case 'localuser':
          holds = matchesHost(value, this.localUser)
          break
        default:
          // exec, localnetwork, tagged: never run a command or guess; ssh -G evaluates them where installed.
          this.skipped.push({ file: line.file, line: line.line })
          holds = negated
      }
      if (holds === negated) all = false
    }
    return all
  }

  result(context: {
    homeDir: string
    localUser: string
    env: NodeJS.ProcessEnv
    port?: number
  }): SshHostConfig {
    const get = (keyword: string) => this.values.get(keyword)
    const source = (line: ConfigLine | undefined) => (line ? { file: line.file, line: line.line } : undefined)
    const hostnameLine = get('hostname')
    const userLine = get('user')
    const portLine = get('port')
    const hostname = hostnameLine?.args[0]?.replace(/%h/g, this.host)
    const tokens: TokenValues = {
      homeDir: context.homeDir,
      localUser: context.localUser,
      env: context.env,
      host: this.host,
      hostname: hostname ?? this.host,
      user: this.user ?? userLine?.args[0],
      port: String(context.port ?? portLine?.args[0] ?? 22),
    }
    const sources: Partial<Record<SshConfigKey, SshConfigSource>> = {}
    const out: SshHostConfig = {
      host: this.host,
      identityFiles: this.identityFiles.map((line) => expandPath(line.args[0] ?? '', tokens)),
      userKnownHostsFiles: (get('userknownhostsfile')?.args ?? []).map((file) => expandPath(file, tokens)),
      certificateFiles: this.certificateFiles.map((line) => expandPath(line.args[0] ?? '', tokens)),
      sources,
      resolvedBy: 'parser',
      skipped: this.skipped,
    }
    const take = <K extends SshConfigKey>(key: K, line: ConfigLine | undefined, value: SshHostConfig[K]) => {
      if (!line || value === undefined) return
      out[key] = value
      sources[key] = source(line)!
    }
    take('hostname', hostnameLine, hostname)
    if (this.user === undefined) take('user', userLine, userLine?.args[0])
    if (context.port === undefined) take('port', portLine, readNumber(portLine))
    take('identitiesOnly', get('identitiesonly'), readYesNo(get('identitiesonly')))
    const proxyJump = get('proxyjump')
    take('proxyJump', proxyJump, proxyJump ? parseProxyJump(proxyJump.args.join(',')) : undefined)
    const strict = get('stricthostkeychecking')
    take('strictHostKeyChecking', strict, strict ? normalizeStrict(strict.args[0] ?? '') : undefined)
    take('connectTimeout', get('connecttimeout'), readNumber(get('connecttimeout')))
    take('serverAliveInterval', get('serveraliveinterval'), readNumber(get('serveraliveinterval')))
    take('hostKeyAlias', get('hostkeyalias'), get('hostkeyalias')?.args[0])
    const proxyCommand = get('proxycommand')?.args.join(' ')
    take('proxyCommand', get('proxycommand'), proxyCommand === 'none' ? undefined : proxyCommand)
    if (this.identityFiles[0]) sources.identityFiles = source(this.identityFiles[0])
    if (this.certificateFiles[0]) sources.certificateFiles = source(this.certificateFiles[0])
    if (get('userknownhostsfile')) sources.userKnownHostsFiles = source(get('userknownhostsfile'))
    return out
  }
}

function readNumber(line: ConfigLine | undefined): number | undefined {
  const text = line?.args[0]
  if (text === undefined) return undefined
  if (!/^\d+$/.test(text)) {
    throw new SshConfigError(
      `${line!.file}:${line!.line}: ${line!.keyword} must be a number, not ${JSON.stringify(text)}.`,
      'Fix that line in the ssh config file.',
    )
  }
  return Number(text)
}

function readYesNo(line: ConfigLine | undefined): boolean | undefined {
  const text = line?.args[0]?.toLowerCase()
  return text === undefined ? undefined : text === 'yes' || text === 'true'
}

function normalizeStrict(value: string): NonNullable<SshHostConfig['strictHostKeyChecking']> {
  switch (value.toLowerCase()) {
    case 'yes':
    case 'true':
      return 'yes'
    case 'no':
    case 'off':
    case 'false':
      return 'no'
    case 'accept-new':
      return 'accept-new'
    default:
      return 'ask'
  }
}

/**
 * Parses a ProxyJump value: comma-separated `[user@]host[:port]` or `ssh://[user@]host[:port]` hops,
 * `[addr]:port` for IPv6; `none` is no jump. Throws on an empty hop or a bad port.
 */
export function parseProxyJump(value: string): ProxyHop[] {
  if (value.trim().toLowerCase() === 'none') return []
  return value.split(',').map((raw) => {
    const spec = raw.trim()
    let rest = spec.startsWith('ssh://') ? spec.slice('ssh://'.length).replace(/\/$/, '') : spec
    let user: string | undefined
    const at = rest.lastIndexOf('@')
    if (at >= 0) {
      user = rest.slice(0, at)
      rest = rest.slice(at + 1)
    }
    let host = rest
    let portText: string | undefined
    const bracketed = /^\[([^\]]+)\](?::(.*))?$/.exec(rest)
    if (bracketed) {
      host = bracketed[1]!
      portText = bracketed[2]
    } else if (rest.split(':').length === 2) {
      ;[host, portText] = rest.split(':') as [string, string]
    }
    if (host === '' || user === '' || /\s/.test(spec))
      throw new Error(`bad ProxyJump hop ${JSON.stringify(spec)}`)
    const hop: ProxyHop = { spec, host, ...(user ? { user } : {}) }
    if (portText !== undefined) {
      const port = Number(portText)
      if (!/^\d+$/.test(portText) || port < 1 || port > 65535) {
        throw new Error(`bad port in ProxyJump hop ${JSON.stringify(spec)}`)
      }
      return { ...hop, port }
    }
    return hop
  })
}

// ---------------------------------------------------------------------------------------------------------

interface TokenValues {
  host: string
  hostname?: string
  user?: string
  port?: string
  homeDir: string
  localUser: string
  env: NodeJS.ProcessEnv
}

/**
 * A path as ssh expands it: `~/` is the home directory, `%d` `%u` `%h` `%n` `%p` `%r` `%l` `%%` are filled
 * in, and `${VAR}` reads the environment (left as written when unset).
 */
export function expandPath(value: string, tokens: TokenValues): string {
  let text = value.replace(
    /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g,
    (match, name: string) => tokens.env[name] ?? match,
  )
  text = text.replace(/%([%dhnprulL])/g, (match, token: string) => {
    switch (token) {
      case '%':
        return '%'
      case 'd':
        return tokens.homeDir
      case 'h':
        return tokens.hostname ?? tokens.host
      case 'n':
        return tokens.host
      case 'p':
        return tokens.port ?? '22'
      case 'r':
        return tokens.user ?? tokens.localUser
      case 'u':
        return tokens.localUser
      case 'l':
        return os.hostname()
      case 'L':
        return os.hostname().split('.')[0]!
      default:
        return match
    }
  })
  if (text === '~') return tokens.homeDir
  if (text.startsWith('~/')) return path.join(tokens.homeDir, text.slice(2))
  return text
}

/** The files a glob names, sorted like glob(3); a pattern without wildcards names itself. */
async function globFiles(pattern: string): Promise<string[]> {
  if (!/[*?[]/.test(pattern)) return [pattern]
  const parts = pattern.split('/')
  let bases = ['/']
  for (const part of parts.slice(1)) {
    if (!/[*?[]/.test(part)) {
      bases = bases.map((base) => path.join(base, part))
      continue
    }
    const isMatch = picomatch(part, { dot: false })
    const next: string[] = []
    for (const base of bases) {
      const names = await readdir(base).catch(() => [] as string[])
      for (const name of names.sort()) if (isMatch(name)) next.push(path.join(base, name))
    }
    bases = next
  }
  return bases
}
