import { readdir, readFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import picomatch from 'picomatch'
// ssh-config tokenizes one OpenSSH config line the way ssh does (quotes, `=`, multi-value keywords and Match
// criteria). Include, Host/Match evaluation and first-value-wins live here because the library does no
// Include and keeps no line numbers, and messages must name the file and line that set a value.
import SSHConfig from 'ssh-config'
import { matchesHost } from './known-hosts.js'
import type { ResolveOptions, SshConfigKey, SshConfigSource, SshHostConfig } from './ssh-config-types.js'
import {
  expandPath,
  normalizeStrict,
  parseProxyJump,
  SshConfigError,
  type TokenValues,
} from './ssh-config-values.js'

/**
 * Reading ssh_config files the way ssh does, for machines without the OpenSSH client (where it is
 * installed, ssh-config.ts asks `ssh -G` and uses this only for the file and line of each value).
 */

const SYSTEM_CONFIG = '/etc/ssh/ssh_config'
/** Keywords that change what deployer uses in ways the parser does not work out. */
const NOT_EVALUATED = new Set(['canonicalizehostname', 'canonicaldomains', 'proxycommand'])
// OpenSSH's own limit on nested Include.
const MAX_INCLUDE_DEPTH = 16

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
