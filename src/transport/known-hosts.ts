import { createHash, createHmac, timingSafeEqual } from 'node:crypto'

/**
 * OpenSSH known_hosts, as plain data: parsing, host matching, key comparison and formatting. No file I/O
 * here; `ssh.ts` reads and appends the file.
 */

/** One key line of a known_hosts file. `@cert-authority` lines, comments and malformed lines are skipped. */
export interface KnownHostEntry {
  /** 1-based line number in the file, for messages that point the user at it. */
  line: number
  /** `@revoked`: this key is refused for the hosts it names, whatever else the file says. */
  revoked: boolean
  /** The host field as written: a comma-separated pattern list, or one hashed `|1|salt|hmac` name. */
  hosts: string
  /** The key type as written (`ssh-ed25519`, `ssh-rsa`, `ecdsa-sha2-nistp256`, ...). */
  keyType: string
  /** The public key in SSH wire format (the base64 field, decoded). */
  key: Buffer
  /** The known_hosts file it is in, when the caller read several. */
  file?: string
}

/** What known_hosts says about the key a host offered. */
export type HostKeyCheck =
  /** The offered key is recorded for this host. */
  | { status: 'known'; entry: KnownHostEntry }
  /** Nothing is recorded for this host. */
  | { status: 'unknown' }
  /** Keys are recorded for this host, but not the offered one: possibly a man in the middle. */
  | { status: 'changed'; entries: KnownHostEntry[] }
  /** The offered key is marked `@revoked`. */
  | { status: 'revoked'; entry: KnownHostEntry }

/** Parses known_hosts text into key entries, skipping comments, `@cert-authority` and malformed lines. */
export function parseKnownHosts(text: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = []
  const lines = text.split('\n')
  for (let index = 0; index < lines.length; index++) {
    const entry = parseKnownHostsLine(lines[index]!, index + 1)
    if (entry) entries.push(entry)
  }
  return entries
}

function parseKnownHostsLine(rawLine: string, line: number): KnownHostEntry | undefined {
  const text = rawLine.trim()
  if (text === '' || text.startsWith('#')) return undefined
  const fields = text.split(/\s+/)
  let revoked = false
  if (fields[0]!.startsWith('@')) {
    const marker = fields.shift()
    // CA keys sign host certificates, which ssh2 never negotiates (ssh-host-keys.ts): they vouch for no key here.
    if (marker !== '@revoked') return undefined
    revoked = true
  }
  const [hosts, keyType, base64] = fields
  if (hosts === undefined || keyType === undefined || base64 === undefined) return undefined
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(base64)) return undefined
  const key = Buffer.from(base64, 'base64')
  // OpenSSH skips a line whose key does not parse; a blob of another type than the line claims is one.
  if (readKeyType(key) !== keyType) return undefined
  return { line, revoked, hosts, keyType, key }
}

/**
 * The lines of known_hosts `text` with a `@cert-authority` marker whose host patterns name `name` (as made
 * by `knownHostName`): a CA that vouches for this host's certificate.
 */
export function certAuthorityLines(text: string, name: string): number[] {
  const lines: number[] = []
  text.split('\n').forEach((raw, index) => {
    const fields = raw.trim().split(/\s+/)
    if (fields[0] === '@cert-authority' && fields[1] && matchesHost(fields[1], name)) lines.push(index + 1)
  })
  return lines
}

/** The name known_hosts files use for a host: `host` on port 22, `[host]:port` elsewhere (lowercased). */
export function knownHostName(hostname: string, port: number): string {
  const host = hostname.toLowerCase()
  return port === 22 ? host : `[${host}]:${port}`
}

/**
 * Whether a known_hosts host field names `name` (as made by `knownHostName`). A hashed field matches
 * when HMAC-SHA1(salt, name) equals its hash; a pattern list matches when some pattern matches (with `*`
 * and `?` wildcards) and no negated `!pattern` does, as OpenSSH's match_hostname.
 */
export function matchesHost(hosts: string, name: string): boolean {
  if (hosts.startsWith('|1|')) return matchesHashedHost(hosts, name)
  let matched = false
  for (const rawPattern of hosts.toLowerCase().split(',')) {
    const negated = rawPattern.startsWith('!')
    const pattern = negated ? rawPattern.slice(1) : rawPattern
    if (!globToRegExp(pattern).test(name)) continue
    if (negated) return false
    matched = true
  }
  return matched
}

function matchesHashedHost(hosts: string, name: string): boolean {
  const [, , saltBase64, hashBase64] = hosts.split('|')
  if (!saltBase64 || !hashBase64) return false
  const salt = Buffer.from(saltBase64, 'base64')
  const expected = Buffer.from(hashBase64, 'base64')
  const actual = createHmac('sha1', salt).update(name).digest()
  return expected.length === actual.length && timingSafeEqual(expected, actual)
}

function globToRegExp(pattern: string): RegExp {
  const source = pattern
    .split('')
    .map((char) => (char === '*' ? '.*' : char === '?' ? '.' : char.replace(/[\\^$.|+()[\]{}]/g, '\\$&')))
    .join('')
  return new RegExp(`^${source}$`)
}

/** The entries of known_hosts `text` that apply to `hostname` on `port`, revoked ones included. */
export function lookupHostKeys(text: string, hostname: string, port: number): KnownHostEntry[] {
  const name = knownHostName(hostname, port)
  return parseKnownHosts(text).filter((entry) => matchesHost(entry.hosts, name))
}

/**
 * Decides what to make of `offeredKey` given the entries that apply to its host. A revoked key is refused
 * even if also listed as valid; a host with recorded keys but not this one has "changed", including when
 * only keys of other types are recorded (OpenSSH would ask; we never guess).
 */
export function checkHostKey(entries: readonly KnownHostEntry[], offeredKey: Buffer): HostKeyCheck {
  const revoked = entries.find((entry) => entry.revoked && entry.key.equals(offeredKey))
  if (revoked) return { status: 'revoked', entry: revoked }
  const valid = entries.filter((entry) => !entry.revoked)
  if (valid.length === 0) return { status: 'unknown' }
  const known = valid.find((entry) => entry.key.equals(offeredKey))
  if (known) return { status: 'known', entry: known }
  return { status: 'changed', entries: valid }
}

/** The key type of a wire-format public key: its first SSH string (`ssh-ed25519`). Throws on a bad blob. */
export function keyTypeOf(keyBlob: Buffer): string {
  const type = readKeyType(keyBlob)
  if (type === undefined) throw new Error(`Not an SSH public key blob (${keyBlob.length} bytes).`)
  return type
}

function readKeyType(keyBlob: Buffer): string | undefined {
  if (keyBlob.length < 4) return undefined
  const length = keyBlob.readUInt32BE(0)
  if (length === 0 || length > 64 || 4 + length > keyBlob.length) return undefined
  const type = keyBlob.subarray(4, 4 + length).toString('latin1')
  return /^[\x21-\x7e]+$/.test(type) ? type : undefined
}

/** OpenSSH's fingerprint of a wire-format public key: `SHA256:` and unpadded base64, as `ssh-keygen -l`. */
export function fingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`
}

/** A plain (unhashed) known_hosts line for the key, without a trailing newline. */
export function formatKnownHostsLine(hostname: string, port: number, keyBlob: Buffer): string {
  return `${knownHostName(hostname, port)} ${keyTypeOf(keyBlob)} ${keyBlob.toString('base64')}`
}

/**
 * The host key algorithms that produce keys of the given types, in order and without duplicates. An RSA
 * key (`ssh-rsa`) is used by three signature algorithms; the SHA-2 ones come first as in OpenSSH.
 */
export function hostKeyAlgorithmsFor(keyTypes: readonly string[]): string[] {
  const algorithms: string[] = []
  for (const keyType of keyTypes) {
    const forType = keyType === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [keyType]
    for (const algorithm of forType) if (!algorithms.includes(algorithm)) algorithms.push(algorithm)
  }
  return algorithms
}
