/**
 * `hosts:`: parsing a host spec (`deploy@web1:2222`, `[::1]:22`, `local`), reading each entry with the
 * top-level defaults, refusing duplicates, and selecting hosts by `--host`.
 */

import { isMap, isScalar, isSeq } from 'yaml'
import { DeployerError, ExitCode } from '../errors.js'
import { parseProxyJump } from '../transport/ssh-config.js'
import type { DeployConfig, ExplicitSshSetting, HostConfig, SshSettings } from './types.js'
import { HOSTNAME_PATTERN, IPV6_PATTERN, readDeployTo, USER_PATTERN } from './value-rules.js'
import {
  type Ctx,
  deref,
  type Entry,
  type Field,
  offsetOf,
  optional,
  readInteger,
  readMap,
  readText,
  report,
  required,
  show,
  type Text,
} from './yaml-reader.js'

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

const HOST_KEYS = ['name', 'ssh', 'deploy_to', 'port', 'user', 'proxy_jump'] as const

/** `proxy_jump`: hops as ssh's -J takes them, checked now so a typo is a config problem with its line. */
export function readProxyJump(ctx: Ctx, field: Field | undefined): string | undefined {
  const text = readText(ctx, field)
  if (!text) return undefined
  try {
    parseProxyJump(text.value)
  } catch (error) {
    report(
      ctx,
      text,
      `${(error as Error).message}: write user@host[:port], hops separated by commas, or none`,
    )
    return undefined
  }
  return text.value
}

/** What a host takes from the top level of the file unless it says otherwise. */
export interface HostDefaults {
  deployTo: string | undefined
  ssh: SshSettings
  user: string | undefined
  /** The ssh port when neither the host nor ssh_config names one. */
  port: number
}

/** `hosts:`: every entry with the defaults applied; duplicate names and targets are problems. */
export function readHosts(ctx: Ctx, field: Field | undefined, defaults: HostDefaults): HostConfig[] {
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
  const proxyJump = readProxyJump(ctx, optional(fields, 'proxy_jump'))

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
  const ssh = proxyJump ? { ...defaults.ssh, proxyJump } : defaults.ssh
  return buildHost(ctx, entry, name, parsed.spec, { deployTo, user: user?.value, port }, { ...defaults, ssh })
}

function buildHost(
  ctx: Ctx,
  entry: Entry,
  name: Text,
  spec: HostSpec,
  overrides: { deployTo: string; user?: string; port?: number },
  defaults: HostDefaults,
): BuiltHost | undefined {
  const common = { name: name.value, port: defaults.port, deployTo: overrides.deployTo, ssh: defaults.ssh }
  const shownName = show(name)
  if (spec.kind === 'local') return { host: { ...common, kind: 'local' }, shownName }
  const user = spec.user ?? overrides.user ?? defaults.user ?? ctx.env.USER
  // With ssh_config on, its User (or, as with ssh, the local user) decides at connection time.
  if (!user && !defaults.ssh.config) {
    report(
      ctx,
      entry,
      'has no user to connect as: write user@host, set ssh.user, or set USER in the environment',
    )
    return undefined
  }
  const port = spec.port ?? overrides.port ?? defaults.port
  // ssh_config may supply what deployer.yml leaves out; $USER and port 22 are only the last resort.
  const explicit: ExplicitSshSetting[] = [...(defaults.ssh.explicit ?? [])]
  if (spec.user ?? overrides.user ?? defaults.user) explicit.push('user')
  if (spec.port ?? overrides.port) explicit.push('port')
  const ssh = { ...defaults.ssh, explicit }
  return {
    host: { ...common, ssh, kind: 'ssh', ...(user ? { user } : {}), hostname: spec.hostname, port },
    shownName,
  }
}
