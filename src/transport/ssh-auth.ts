import { readFile, stat } from 'node:fs/promises'
import type { AnyAuthMethod, AuthenticationType, IdentityCallback, NextAuthHandler, ParsedKey } from 'ssh2'
// ssh2 is CommonJS; Node's ESM loader does not see its named exports.
import ssh2 from 'ssh2'
import { fingerprint } from './known-hosts.js'
import { certificateAlgorithms, certificateProblem, parseCertificateFile } from './ssh-certificate.js'
import { certificateKey } from './ssh-certificate-auth.js'

const { OpenSSHAgent, utils } = ssh2

/** Environment variable holding the passphrase of encrypted private keys. */
export const PASSPHRASE_ENV = 'DEPLOYER_SSH_PASSPHRASE'

/**
 * Reads a file once per process when it is not a regular file: a key or known_hosts given as a pipe
 * (`<(echo "$KEY")`, /dev/fd/3, /dev/stdin) has nothing left for the second host that reads it.
 * Regular files are read each time (accept-new appends to known_hosts while a run goes on).
 */
const streamed = new Map<string, Buffer>()
// Hosts connect in parallel: readers that arrive while a read is under way share it.
const inFlight = new Map<string, Promise<Buffer>>()
export function readOnce(file: string): Promise<Buffer> {
  const kept = streamed.get(file)
  if (kept) return Promise.resolve(kept)
  const pending = inFlight.get(file)
  if (pending) return pending
  const reading = (async () => {
    const info = await stat(file)
    const data = await readFile(file)
    if (!info.isFile()) streamed.set(file, data)
    return data
  })()
  inFlight.set(file, reading)
  reading.then(
    () => inFlight.delete(file),
    () => inFlight.delete(file),
  )
  return reading
}

/** A private key ready to sign, and how messages name it. */
export interface LoadedKey {
  path: string
  key: ParsedKey
  fingerprint: string
}

/** Why a key file was not offered. */
export type KeyProblem =
  | { kind: 'missing' }
  | { kind: 'encrypted' }
  | { kind: 'wrong-passphrase' }
  | { kind: 'public' }
  | { kind: 'unreadable'; message: string }
  /** A user certificate that cannot be offered (expired, for another user, pairs with no identity). */
  | { kind: 'certificate'; message: string }

export type KeyLoad = { ok: true; loaded: LoadedKey } | { ok: false; path: string; problem: KeyProblem }

/** Asks for a key's passphrase; undefined when nobody can be asked. */
export type AskPassphrase = (file: string) => Promise<string | undefined>

const passphrases = new Map<string, Promise<string | undefined>>()
let promptQueue: Promise<unknown> = Promise.resolve()

/**
 * Asks on the terminal, once per key for all hosts, one prompt at a time; undefined without a terminal
 * (CI), where DEPLOYER_SSH_PASSPHRASE is the way.
 */
export const askOnTerminal: AskPassphrase = (file) => {
  if (!process.stdin.isTTY || !process.stderr.isTTY) return Promise.resolve(undefined)
  let asked = passphrases.get(file)
  if (!asked) {
    asked = promptQueue.then(() => promptHidden(`Enter passphrase for key ${file}: `))
    promptQueue = asked.catch(() => {})
    passphrases.set(file, asked)
  }
  return asked
}

function promptHidden(question: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const input = process.stdin
    process.stderr.write(question)
    const wasRaw = input.isRaw
    input.setRawMode(true)
    input.resume()
    let answer = ''
    const finish = (value: string | undefined) => {
      input.off('data', onData)
      input.setRawMode(wasRaw)
      input.pause()
      process.stderr.write('\n')
      resolve(value)
    }
    const onData = (chunk: Buffer) => {
      for (const char of chunk.toString('utf8')) {
        if (char === '\r' || char === '\n') return finish(answer)
        // Ctrl-C or Ctrl-D: skip this key, as ssh does on an empty answer.
        if (char === '\u0003' || char === '\u0004') return finish(undefined)
        if (char === '\u007f' || char === '\b') answer = answer.slice(0, -1)
        else answer += char
      }
    }
    input.on('data', onData)
  })
}

/**
 * Loads a private key file: decrypted with DEPLOYER_SSH_PASSPHRASE, else with a passphrase asked on the
 * terminal. Never throws: the caller decides whether a missing or locked key is an error.
 */
export async function loadKey(
  file: string,
  options: { env?: NodeJS.ProcessEnv; ask?: AskPassphrase } = {},
): Promise<KeyLoad> {
  const fail = (problem: KeyProblem): KeyLoad => ({ ok: false, path: file, problem })
  let data: Buffer
  try {
    data = await readOnce(file)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    return code === 'ENOENT'
      ? fail({ kind: 'missing' })
      : fail({ kind: 'unreadable', message: code ?? String(error) })
  }
  const fromEnv = (options.env ?? process.env)[PASSPHRASE_ENV] || undefined
  let parsed = utils.parseKey(data, fromEnv)
  if (parsed instanceof Error && /no passphrase given/i.test(parsed.message)) {
    const asked = await (options.ask ?? askOnTerminal)(file)
    if (asked === undefined) return fail({ kind: 'encrypted' })
    parsed = utils.parseKey(data, asked)
    if (parsed instanceof Error) return fail({ kind: 'wrong-passphrase' })
  }
  if (parsed instanceof Error) {
    if (fromEnv !== undefined && /passphrase|integrity|decrypt/i.test(parsed.message)) {
      return fail({ kind: 'wrong-passphrase' })
    }
    return fail({ kind: 'unreadable', message: parsed.message })
  }
  // OpenSSH's key format could hold several keys; ssh uses the first.
  const key = Array.isArray(parsed) ? parsed[0]! : parsed
  if (!key.isPrivateKey()) return fail({ kind: 'public' })
  return { ok: true, loaded: { path: file, key, fingerprint: fingerprint(key.getPublicSSH()) } }
}

/** The wire-format public key of an identity file, from its `.pub` (which an encrypted key needs). */
async function publicBlobOf(file: string): Promise<Buffer | undefined> {
  const text = await readOnce(`${file}.pub`).catch(() => undefined)
  const parsed = text ? utils.parseKey(text) : undefined
  if (!parsed || parsed instanceof Error) return undefined
  return (Array.isArray(parsed) ? parsed[0]! : parsed).getPublicSSH()
}

/** ssh-agent, offering only the keys `allowed` lists (IdentitiesOnly), or all of them. */
class FilteredAgent extends OpenSSHAgent {
  constructor(
    socket: string,
    private readonly allowed: readonly Buffer[] | undefined,
    private readonly seen: (count: number) => void,
  ) {
    super(socket)
  }

  override getIdentities(cb: IdentityCallback<ParsedKey>): void {
    // OpenSSHAgent always answers with parsed keys.
    super.getIdentities((error, found) => {
      const keys = found as ParsedKey[] | undefined
      if (error || !keys) return cb(error, keys)
      const offered = this.allowed
        ? keys.filter((key) => this.allowed!.some((blob) => blob.equals(key.getPublicSSH())))
        : keys
      this.seen(offered.length)
      cb(undefined, offered)
    })
  }
}

/** What was offered to a server, for the message when it refuses all of it. */
export interface AuthAttempts {
  /** The agent's socket and how many keys it offered, if it was asked. */
  agent?: { socket: string; keys: number }
  /** Key files offered, in order. */
  keys: LoadedKey[]
  /** User certificates offered (each before its key), as `path (ID "id", CA fingerprint)`. */
  certificates: string[]
  /** Key files that could not be offered, and why (missing default identities are left out). */
  skipped: Array<{ path: string; problem: KeyProblem }>
}

/** What an authentication attempt starts from: nothing offered yet. */
export function noAttempts(): AuthAttempts {
  return { keys: [], certificates: [], skipped: [] }
}

export interface AuthPlan {
  user: string
  /** deployer.yml's ssh.identity: this key alone. */
  identity?: string
  identityFiles: readonly string[]
  identitiesOnly: boolean
  /** ssh_config's CertificateFile list; `KEY-cert.pub` beside each identity is tried too, as OpenSSH does. */
  certificateFiles: readonly string[]
  /** Whether the client can send certificate requests (ssh-certificate-auth.ts); asked when one is due. */
  certificatesEnabled?: () => boolean
  agentSocket?: string
  env?: NodeJS.ProcessEnv
  ask?: AskPassphrase
  /** For certificate validity; default: the clock. */
  now?: () => Date
}

/**
 * An ssh2 authHandler that tries what OpenSSH tries, in its order: the agent's keys (only those named by
 * IdentityFile with IdentitiesOnly), then each identity file that exists, loaded only when the server
 * is still asking (so a passphrase is asked only if needed), its user certificates first. With
 * deployer.yml's ssh.identity, that key alone (with its certificates). `attempts` fills in as it goes.
 */
export function createAuthHandler(plan: AuthPlan, attempts: AuthAttempts) {
  const files = plan.identity ? [plan.identity] : [...plan.identityFiles]
  let agentOffered = plan.identity !== undefined || plan.agentSocket === undefined
  /** What to offer before the next key file: a key's certificates, then the key itself in its forms. */
  const queued: AnyAuthMethod[] = []
  /** CertificateFile entries paired with an identity, or reported as unusable, so far. */
  const pairedCertificates = new Set<string>()
  let unpairedReported = false
  return (authsLeft: AuthenticationType[] | null, _partial: boolean | null, next: NextAuthHandler) => {
    // ssh2 passes null before the first attempt; after that, the methods the server still accepts.
    if (authsLeft && !authsLeft.includes('publickey')) return next(false as unknown as AnyAuthMethod)
    void nextMethod().then((method) => next(method ?? (false as unknown as AnyAuthMethod)))
  }

  async function nextMethod(): Promise<AnyAuthMethod | undefined> {
    if (!agentOffered) {
      agentOffered = true
      const socket = plan.agentSocket!
      const allowed = plan.identitiesOnly
        ? (await Promise.all(plan.identityFiles.map(publicBlobOf))).filter((blob) => blob !== undefined)
        : undefined
      attempts.agent = { socket, keys: 0 }
      const agent = new FilteredAgent(socket, allowed, (count) => {
        attempts.agent = { socket, keys: count }
      })
      return { type: 'agent', username: plan.user, agent }
    }
    if (queued.length > 0) return queued.shift()
    while (files.length > 0) {
      const file = files.shift()!
      const load = await loadKey(file, { env: plan.env, ask: plan.ask })
      if (load.ok) {
        attempts.keys.push(load.loaded)
        const key = load.loaded.key
        for (const certified of await certificatesFor(load.loaded)) {
          queued.push({ type: 'publickey', username: plan.user, key: certified })
        }
        // The plain RSA key comes after its rsa-sha2-512 form was refused (an old server that wants ssh-rsa).
        if (key.type === 'ssh-rsa')
          queued.push({ type: 'publickey', username: plan.user, key: asRsaSha512(key) })
        queued.push({ type: 'publickey', username: plan.user, key })
        return queued.shift()
      }
      // A default identity that does not exist is the normal case, not worth a word.
      if (load.problem.kind !== 'missing' || plan.identity) attempts.skipped.push(load)
    }
    if (!unpairedReported) {
      unpairedReported = true
      for (const path of plan.certificateFiles) {
        if (pairedCertificates.has(path)) continue
        attempts.skipped.push({
          path,
          problem: {
            kind: 'certificate',
            message:
              'certifies none of the identity files that could be loaded (a key held only by ssh-agent cannot be paired with it)',
          },
        })
      }
    }
    return undefined
  }

  /** The key's user certificates, ready to offer: CertificateFile entries that certify it, then `KEY-cert.pub`. */
  async function certificatesFor(loaded: LoadedKey): Promise<ParsedKey[]> {
    const publicKey = loaded.key.getPublicSSH()
    const candidates = [...plan.certificateFiles, `${loaded.path}-cert.pub`].filter(
      (path, index, all) => all.indexOf(path) === index,
    )
    const keys: ParsedKey[] = []
    for (const path of candidates) {
      const named = plan.certificateFiles.includes(path)
      // A CertificateFile certifies one key: once paired or found unusable, it is done with.
      if (named && pairedCertificates.has(path)) continue
      const text = await readOnce(path).catch((error: NodeJS.ErrnoException) => error)
      if (text instanceof Error) {
        if (named) {
          pairedCertificates.add(path)
          attempts.skipped.push({
            path,
            problem:
              text.code === 'ENOENT'
                ? { kind: 'missing' }
                : { kind: 'unreadable', message: text.code ?? text.message },
          })
        }
        continue
      }
      let parsed: ReturnType<typeof parseCertificateFile>
      try {
        parsed = parseCertificateFile(text.toString('utf8'))
      } catch (error) {
        pairedCertificates.add(path)
        attempts.skipped.push({
          path,
          problem: {
            kind: 'certificate',
            message: `is not an OpenSSH certificate (${(error as Error).message})`,
          },
        })
        continue
      }
      const { blob, certificate } = parsed
      // A CertificateFile pairs with whichever identity it certifies; `KEY-cert.pub` must certify KEY.
      if (named && !certificate.publicKey.equals(publicKey)) continue
      pairedCertificates.add(path)
      const problem = certificateProblem(certificate, {
        user: plan.user,
        now: (plan.now ?? (() => new Date()))(),
        publicKey,
      })
      if (problem) {
        attempts.skipped.push({ path, problem: { kind: 'certificate', message: problem } })
        continue
      }
      if (plan.certificatesEnabled && !plan.certificatesEnabled()) {
        attempts.skipped.push({
          path,
          problem: {
            kind: 'certificate',
            message: 'cannot be sent by this version of ssh2 (see ssh-certificate-auth.ts)',
          },
        })
        continue
      }
      attempts.certificates.push(
        `${path} (ID ${JSON.stringify(certificate.keyId)}, CA ${fingerprint(certificate.signatureKey)})`,
      )
      for (const algorithm of certificateAlgorithms(certificate)) {
        keys.push(certificateKey(loaded.key, blob, algorithm))
      }
    }
    return keys
  }
}

/**
 * An RSA key that signs with rsa-sha2-512. ssh2 picks one RSA signature algorithm from the server's
 * server-sig-algs, rsa-sha2-256 first, and OpenSSH's sshd lists both even when PubkeyAcceptedAlgorithms
 * allows only rsa-sha2-512: the key is then refused. OpenSSH itself tries rsa-sha2-512 first; so does
 * this: ssh2 uses a key's `type` as the algorithm name when it is not `ssh-rsa`, and calls `sign` with
 * no hash, which this fills in. Everything else (the public blob) comes from the real key.
 */
export function asRsaSha512(key: ParsedKey): ParsedKey {
  const wrapped = Object.create(key) as ParsedKey
  Object.defineProperty(wrapped, 'type', { value: 'rsa-sha2-512' })
  Object.defineProperty(wrapped, 'sign', {
    value: (data: Buffer) => key.sign(data, 'sha512'),
  })
  return wrapped
}
