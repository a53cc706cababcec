import { appendFile, mkdir } from 'node:fs/promises'
import { dirname } from 'node:path'
import type { ConnectConfig, ServerHostKeyAlgorithm } from 'ssh2'
import { HostKeyError } from '../errors.js'
import {
  certAuthorityLines,
  checkHostKey,
  fingerprint,
  type HostKeyCheck,
  hostKeyAlgorithmsFor,
  type KnownHostEntry,
  keyTypeOf,
  knownHostName,
  lookupHostKeys,
} from './known-hosts.js'
import { quote } from './quote.js'
import { readOnce } from './ssh-auth.js'
import { type HopContext, keyscanCommand, withSources } from './ssh-messages.js'
import type { Endpoint } from './ssh-route.js'

/**
 * The built-in client's host key checks at one hop: reading the known_hosts files an endpoint checks,
 * recording a new key (accept-new), and the error that says why a key was refused. known-hosts.ts
 * holds the pure parsing and matching.
 *
 * Host certificates (`@cert-authority`) are not checked here, on purpose. ssh2 1.17 negotiates only
 * plain host key algorithms: `*-cert-v01@openssh.com` names are not in its SUPPORTED_SERVER_HOST_KEY, so
 * it refuses them in `algorithms.serverHostKey`, and its key exchange parses the host key blob as a
 * plain key, so it never hands a certificate to `hostVerifier`. Accepting them would mean patching
 * ssh2's key exchange; instead a host known only through its CA is refused with `ssh.client: openssh`
 * named, and the OpenSSH transport checks the certificate as ssh does.
 */

// The host key algorithms ssh2 1.x can verify; a known_hosts file may also hold others (sk-*, certificates).
const SUPPORTED_HOST_KEY_ALGORITHMS: readonly ServerHostKeyAlgorithm[] = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa',
  'ssh-dss',
]

/** Host key entries from every known_hosts file an endpoint checks, and the CA lines that name it. */
export interface KnownHosts {
  /** The name looked up: HostKeyAlias, or `host` / `[host]:port`. */
  name: string
  entries: KnownHostEntry[]
  /** `file:line` of @cert-authority lines for this host. */
  certAuthorities: string[]
}

/** Every known_hosts entry for the endpoint, from each file it checks (a pipe is read once). */
export async function readKnownHosts(endpoint: Endpoint, hop: HopContext): Promise<KnownHosts> {
  const name = endpoint.hostKeyAlias
    ? knownHostName(endpoint.hostKeyAlias, 22)
    : knownHostName(endpoint.hostname, endpoint.port)
  const known: KnownHosts = { name, entries: [], certAuthorities: [] }
  for (const file of endpoint.knownHostsFiles) {
    let text: string
    try {
      text = (await readOnce(file)).toString('utf8')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue
      throw new HostKeyError(
        hop.host,
        `${hop.where}cannot read the known_hosts file ${file} (${(error as NodeJS.ErrnoException).code ?? error}).`,
        'Make it readable by this user, or point ssh.known_hosts at another file.',
      )
    }
    // lookupHostKeys makes `[name]:port` itself; HostKeyAlias is looked up bare, as OpenSSH does.
    const entries = endpoint.hostKeyAlias
      ? lookupHostKeys(text, endpoint.hostKeyAlias, 22)
      : lookupHostKeys(text, endpoint.hostname, endpoint.port)
    known.entries.push(...entries.map((entry) => ({ ...entry, file })))
    known.certAuthorities.push(...certAuthorityLines(text, name).map((line) => `${file}:${line}`))
  }
  return known
}

/**
 * Appends the key to the endpoint's first known_hosts file, unless a parallel run recorded it already;
 * true when this call wrote it.
 */
export async function recordHostKey(
  endpoint: Endpoint,
  hop: HopContext,
  name: string,
  key: Buffer,
): Promise<boolean> {
  const file = endpoint.knownHostsFiles[0]!
  try {
    await mkdir(dirname(file), { recursive: true, mode: 0o700 })
    // Another transport (a parallel deploy to the same host) may have recorded it in the meantime.
    const again = await readKnownHosts({ ...endpoint, knownHostsFiles: [file] }, hop)
    if (checkHostKey(again.entries, key).status === 'known') return false
    const existing = (await readOnce(file).catch(() => Buffer.alloc(0))).toString('utf8')
    const separator = existing === '' || existing.endsWith('\n') ? '' : '\n'
    await appendFile(file, `${separator}${name} ${keyTypeOf(key)} ${key.toString('base64')}\n`, {
      mode: 0o600,
    })
    return true
  } catch (error) {
    if (error instanceof HostKeyError) throw error
    // Going on without recording would trust whatever key the host offers next time too.
    throw new HostKeyError(
      hop.host,
      `${hop.where}cannot record the host key of ${name} in ${file}: ${(error as Error).message}.`,
      `Make ${file} and its directory writable by this user, or record the key yourself with ${keyscanCommand(endpoint)}.`,
    )
  }
}

/** Why the key the endpoint offered is refused, naming the files, lines and fingerprints involved. */
export function hostKeyError(
  endpoint: Endpoint,
  hop: HopContext,
  known: KnownHosts,
  check: Exclude<HostKeyCheck, { status: 'known' }>,
  key: Buffer,
): HostKeyError {
  const files = endpoint.knownHostsFiles.join(', ')
  const name = known.name
  const offered = `${keyTypeOf(key)} key ${fingerprint(key)}`
  const where = hop.where
  const alias = endpoint.hostKeyAlias
    ? ` (HostKeyAlias${withSources(endpoint, ['hostKeyAlias'], ' from ')})`
    : ''
  switch (check.status) {
    case 'unknown':
      if (known.certAuthorities.length > 0) {
        return new HostKeyError(
          hop.host,
          `${where}${name}${alias} is vouched for only by the host CA at ${known.certAuthorities.join(', ')} (@cert-authority), ` +
            `and deployer's built-in SSH client (ssh2) cannot check host certificates; the host offered its plain ${offered}.`,
          'Set `ssh.client: openssh` in deployer.yml to let the system ssh check the certificate, ' +
            `or record the host's own key once checked with ${keyscanCommand(endpoint)}.`,
        )
      }
      return new HostKeyError(
        hop.host,
        `${where}${name}${alias} is not in ${files}; it offered the ${offered}.`,
        `Check that fingerprint with whoever runs the host (\`ssh-keygen -lf /etc/ssh/ssh_host_${keyTypeOf(key).replace(/^ssh-|-.*$/g, '')}_key.pub\` there), ` +
          `then record it with ${keyscanCommand(endpoint)}; or set \`host_key: accept-new\` to record it on first connection.`,
      )
    case 'revoked':
      return new HostKeyError(
        hop.host,
        `${where}${name}${alias} offered the ${offered}, which ${check.entry.file}:${check.entry.line} marks @revoked.`,
        'A revoked key is never accepted: the host needs a new host key, recorded in known_hosts once checked.',
      )
    case 'changed':
      return new HostKeyError(
        hop.host,
        `${where}the host key of ${name}${alias} has changed: it offered the ${offered}, but ${files} records ${describeEntries(check.entries)}.`,
        'This can be a man-in-the-middle attack, and deployer never replaces a recorded key. If the host was reinstalled, ' +
          `confirm the new fingerprint out of band, remove the old key with \`ssh-keygen -R ${quote(name)} -f ${quote(check.entries[0]?.file ?? files)}\`, and connect again.`,
      )
  }
}

/**
 * ssh2 picks the first host key algorithm both sides support, so a host whose known_hosts entry is an
 * ECDSA key would offer its ed25519 key and look "changed". Like OpenSSH, put the recorded types first.
 * ssh2's `prepend` skips algorithms already in its default list, hence remove-then-prepend (applied in
 * this key order).
 */
export function preferredAlgorithms(entries: readonly KnownHostEntry[]): ConnectConfig['algorithms'] {
  const recorded = hostKeyAlgorithmsFor(
    entries.filter((entry) => !entry.revoked).map((entry) => entry.keyType),
  )
  const preferred = SUPPORTED_HOST_KEY_ALGORITHMS.filter((algorithm) => recorded.includes(algorithm)).sort(
    (a, b) => recorded.indexOf(a) - recorded.indexOf(b),
  )
  if (preferred.length === 0) return undefined
  // @types/ssh2 requires all three operations; an empty `append` changes nothing.
  return { serverHostKey: { remove: preferred, prepend: preferred, append: [] } }
}

function describeEntries(entries: readonly KnownHostEntry[]): string {
  return entries
    .map((entry) => `${entry.keyType} key ${fingerprint(entry.key)} at ${entry.file}:${entry.line}`)
    .join(', ')
}
