import { execFile } from 'node:child_process'
import os from 'node:os'
import { parseSshConfigFiles } from './ssh-config-parser.js'
import type { ResolveOptions, SshConfigKey, SshHostConfig } from './ssh-config-types.js'
import {
  expandPath,
  normalizeStrict,
  parseProxyJump,
  SshConfigError,
  type TokenValues,
} from './ssh-config-values.js'

export {
  type ConfigLine,
  parseConfigLines,
  parseSshConfigFiles,
  type ReadConfigFile,
} from './ssh-config-parser.js'
export type {
  ProxyHop,
  ResolveOptions,
  SshConfigFiles,
  SshConfigKey,
  SshConfigSource,
  SshHostConfig,
} from './ssh-config-types.js'
export { expandPath, parseProxyJump, SshConfigError } from './ssh-config-values.js'

/**
 * The user's OpenSSH client settings for one host, as plain data both transports use: resolved by
 * `ssh -G` where the OpenSSH client is installed, else by reading the files (Include, Host, Match) in
 * ssh-config-parser.ts; ssh-config-values.ts reads the values both share (ProxyJump, paths).
 */

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

const SSH_G_TIMEOUT_MS = 10_000

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
