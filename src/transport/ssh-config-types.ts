/** The data ssh_config resolution produces and takes, shared by its resolver, parser and value readers. */

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
