import os from 'node:os'
import path from 'node:path'
import { DeployerError, ExitCode } from '../errors.js'
import type { ProxyHop, SshHostConfig } from './ssh-config-types.js'

/**
 * ssh_config values as OpenSSH reads them, shared by `ssh -G` and the parser: ProxyJump hops, paths with
 * `~`, `%` tokens and `${VAR}`, StrictHostKeyChecking's spellings, and the error for a bad file.
 */

/** An ssh_config file that cannot be read or that ssh rejects. Exit code: config. */
export class SshConfigError extends DeployerError {
  constructor(message: string, hint: string, cause?: unknown) {
    super(message, { exitCode: ExitCode.config, hint, cause })
  }
}

/** StrictHostKeyChecking's spellings (`true`, `off`, ...) as the four values that mean something different. */
export function normalizeStrict(value: string): NonNullable<SshHostConfig['strictHostKeyChecking']> {
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

export interface TokenValues {
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
