import { appendFile, mkdir, readFile } from 'node:fs/promises'
import { userInfo } from 'node:os'
import { dirname } from 'node:path'
import { Readable } from 'node:stream'
import type { ClientChannel, ConnectConfig, ServerHostKeyAlgorithm } from 'ssh2'
// ssh2 is CommonJS and Node's ESM loader cannot see `utils` as a named export, so take the default export.
import ssh2 from 'ssh2'
import type { HostConfig } from '../config/types.js'
import { ConnectionError, HostKeyError } from '../errors.js'
import {
  checkHostKey,
  fingerprint,
  formatKnownHostsLine,
  type HostKeyCheck,
  hostKeyAlgorithmsFor,
  type KnownHostEntry,
  keyTypeOf,
  knownHostName,
  lookupHostKeys,
} from './known-hosts.js'
import { pipeInput } from './local.js'
import { quote } from './quote.js'
import type { ExecOptions, ExecResult, Transport } from './transport.js'

const { Client, utils } = ssh2
type SshClient = InstanceType<typeof Client>

/** Environment variable holding the passphrase of an encrypted `ssh.identity` key. */
export const PASSPHRASE_ENV = 'DEPLOYER_SSH_PASSPHRASE'

// A dead peer is noticed after about 30 s (3 unanswered keepalives 10 s apart) instead of a TCP timeout.
const KEEPALIVE_INTERVAL_MS = 10_000
const KEEPALIVE_COUNT_MAX = 3
// How long close() waits for the server to acknowledge the disconnect before dropping the socket.
const CLOSE_GRACE_MS = 2_000

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

type Credentials =
  | { kind: 'key'; path: string; privateKey: Buffer; passphrase?: string; publicFingerprint: string }
  | { kind: 'agent'; socket: string }

/** One SSH connection and what happened to it, shared by every command run over it. */
interface Connection {
  client: SshClient
  /** Settles when the connection is authenticated and ready for commands, or failed. */
  ready: Promise<void>
  established: boolean
  /** close() was called; a handshake that has not started yet must not start. */
  closing: boolean
  closed: boolean
  /** Rejecters of the commands in flight, called if the connection closes under them. */
  inFlight: Set<() => void>
  /** The last error ssh2 reported on this connection (a reset, a keepalive timeout), to explain a drop. */
  lastError?: Error
}

/**
 * Runs commands on a host over one SSH connection (ssh2), opened on first use and reused for every
 * command. Host keys are checked against known_hosts like OpenSSH does; a changed key is always refused.
 */
export class SshTransport implements Transport {
  readonly name: string
  private readonly host: HostConfig
  private readonly user: string
  private readonly hostname: string
  private connection?: Connection

  /** `host.hostname` defaults to the host's name and `host.user` to the local user, as with `ssh`. */
  constructor(host: HostConfig) {
    this.host = host
    this.name = host.name
    this.hostname = host.hostname ?? host.name
    this.user = host.user ?? userInfo().username
  }

  /** Opens the connection now instead of on the first command (to fail fast on every host at once). */
  async connect(): Promise<void> {
    await this.openConnection().ready
  }

  exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    const { signal } = options
    if (signal?.aborted) return Promise.reject(this.abortError(command, signal))
    const connection = this.openConnection()
    return connection.ready.then(() => {
      if (signal?.aborted) throw this.abortError(command, signal)
      return this.runCommand(connection, command, options)
    })
  }

  /** Ends the connection. Idempotent; a later `exec` opens a new connection. */
  async close(): Promise<void> {
    const connection = this.connection
    this.connection = undefined
    if (!connection || connection.closed) return
    connection.closing = true
    if (!connection.established) {
      // Still connecting: cut it short. The handshake then rejects and leaves nothing open.
      connection.client.destroy()
      await connection.ready.catch(() => {})
      if (!connection.established) return
    }
    await new Promise<void>((resolve) => {
      if (connection.closed) return resolve()
      // A server that never acknowledges the disconnect must not keep the caller waiting.
      const grace = setTimeout(resolve, CLOSE_GRACE_MS)
      grace.unref()
      connection.client.once('close', () => {
        clearTimeout(grace)
        resolve()
      })
      connection.client.end()
    })
  }

  private get target(): string {
    return `${this.user}@${this.hostname}:${this.host.port}`
  }

  private openConnection(): Connection {
    if (this.connection && !this.connection.closed) return this.connection
    const client = new Client()
    const connection: Connection = {
      client,
      ready: Promise.resolve(),
      established: false,
      closing: false,
      closed: false,
      inFlight: new Set(),
    }
    connection.ready = this.handshake(connection).then(
      () => {
        connection.established = true
      },
      (error: unknown) => {
        // Forget a failed connection so that the next command tries again.
        connection.closed = true
        if (this.connection === connection) this.connection = undefined
        throw error
      },
    )
    // Without a listener, a rejected connect that nobody awaited yet would be reported as unhandled.
    connection.ready.catch(() => {})
    client.on('error', (error) => {
      connection.lastError = error
    })
    client.on('close', () => {
      connection.closed = true
      if (this.connection === connection) this.connection = undefined
      for (const onDrop of connection.inFlight) onDrop()
    })
    this.connection = connection
    return connection
  }

  private async handshake(connection: Connection): Promise<void> {
    const credentials = await this.loadCredentials()
    const entries = lookupHostKeys(await this.readKnownHosts(), this.hostname, this.host.port)
    const { client } = connection

    await new Promise<void>((resolve, reject) => {
      let settled = false
      let hostKeyRefusal: HostKeyError | undefined
      let verifiedKey: Buffer | undefined
      let recording: Promise<void> = Promise.resolve()
      let keyToRecord: Buffer | undefined

      const fail = (error: Error) => {
        if (settled) return
        settled = true
        client.destroy()
        reject(error)
      }

      // ssh2 calls this on every key exchange, before the server has proven it holds the key; the key is
      // only written to known_hosts on 'handshake', after that proof.
      const hostVerifier = (key: Buffer): boolean => {
        if (verifiedKey) return key.equals(verifiedKey)
        const check = checkHostKey(entries, key)
        if (check.status === 'unknown' && this.host.ssh.hostKey === 'accept-new') keyToRecord = key
        else if (check.status !== 'known') {
          hostKeyRefusal = this.hostKeyError(check, key)
          return false
        }
        verifiedKey = key
        return true
      }

      client.on('handshake', () => {
        if (!keyToRecord) return
        recording = this.recordHostKey(keyToRecord)
        keyToRecord = undefined
      })
      client.on('ready', () => {
        recording.then(() => {
          if (settled) return
          settled = true
          resolve()
        }, fail)
      })
      // The verifier's refusal surfaces as a generic "Host denied" handshake error: report the reason.
      client.on('error', (error) => fail(hostKeyRefusal ?? this.connectError(error, credentials)))
      client.on('close', () =>
        fail(
          hostKeyRefusal ??
            new ConnectionError(
              this.name,
              `${this.target} closed the connection before it was ready.`,
              `Run \`ssh -v -p ${this.host.port} ${this.user}@${this.hostname} true\` to see why.`,
            ),
        ),
      )

      const config: ConnectConfig = {
        host: this.hostname,
        port: this.host.port,
        username: this.user,
        readyTimeout: this.host.ssh.connectTimeout * 1000,
        keepaliveInterval: KEEPALIVE_INTERVAL_MS,
        keepaliveCountMax: KEEPALIVE_COUNT_MAX,
        hostVerifier,
        algorithms: preferredAlgorithms(entries),
      }
      if (credentials.kind === 'key') {
        config.privateKey = credentials.privateKey
        config.passphrase = credentials.passphrase
      } else {
        config.agent = credentials.socket
      }
      if (connection.closing) {
        fail(
          new ConnectionError(
            this.name,
            `the connection to ${this.target} was closed before it opened.`,
            'Nothing to fix: deployer closes connections that are still opening when a run is interrupted.',
          ),
        )
        return
      }
      try {
        client.connect(config)
        // ssh2 leaves Nagle on: every small request (a channel open, an exec) then waits ~40 ms for the
        // peer's delayed ACK, which made each round trip cost 45 ms even over loopback.
        client.setNoDelay(true)
      } catch (error) {
        fail(
          new ConnectionError(
            this.name,
            `cannot connect to ${this.target}: ${(error as Error).message}`,
            `Check hostname, port and ssh settings of ${this.name} in deployer.yml.`,
            error,
          ),
        )
      }
    })
  }

  private runCommand(connection: Connection, command: string, options: ExecOptions): Promise<ExecResult> {
    const { client } = connection
    const { signal, onOutput, stdin } = options
    return new Promise<ExecResult>((resolve, reject) => {
      const stdout: Buffer[] = []
      const stderr: Buffer[] = []
      let channel: ClientChannel | undefined
      let exit: { code: number | null; signal?: string } = { code: null }
      let settled = false

      const settle = (finish: () => void) => {
        if (settled) return
        settled = true
        signal?.removeEventListener('abort', onAbort)
        connection.inFlight.delete(onConnectionClose)
        // A command that exits without reading all its input leaves the pipe waiting on a closed channel.
        if (stdin instanceof Readable && channel) stdin.unpipe(channel)
        finish()
      }
      const onAbort = () => {
        // Closing the channel only closes the command's pipes; TERM also stops a command that reads and
        // writes nothing. sshd sends it to the session's process group, except for root logins, which
        // OpenSSH does not privilege-separate and for which it ignores signal requests.
        if (channel) {
          sendSignal(channel, 'TERM')
          channel.close()
        }
        settle(() => reject(this.abortError(command, signal!)))
      }
      const onConnectionClose = () => {
        const cause = connection.lastError
        settle(() =>
          reject(
            new ConnectionError(
              this.name,
              `the connection to ${this.target} dropped while running \`${summarize(command)}\`` +
                (cause ? ` (${cause.message}).` : '.'),
              'The command may or may not have finished on the host: check its effect before running it again.',
              cause,
            ),
          ),
        )
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      connection.inFlight.add(onConnectionClose)

      const onChannel = (error: Error | undefined, opened: ClientChannel) => {
        if (error) {
          settle(() =>
            reject(
              new ConnectionError(
                this.name,
                `${this.target} refused to run \`${summarize(command)}\`: ${error.message}.`,
                'sshd limits the commands running at once on one connection (MaxSessions, default 10): run fewer in parallel.',
                error,
              ),
            ),
          )
          return
        }
        if (settled) {
          // Aborted (or dropped) while the channel was opening.
          opened.close()
          return
        }
        channel = opened
        opened.on('data', (chunk: Buffer) => {
          stdout.push(chunk)
          onOutput?.(chunk.toString('utf8'), 'stdout')
        })
        opened.stderr.on('data', (chunk: Buffer) => {
          stderr.push(chunk)
          onOutput?.(chunk.toString('utf8'), 'stderr')
        })
        opened.on('exit', (code: number | null, signalName?: string) => {
          exit = { code: code ?? null, signal: signalName ? normalizeSignal(signalName) : undefined }
        })
        opened.on('error', (channelError: Error) => {
          settle(() =>
            reject(
              new ConnectionError(
                this.name,
                `the channel running \`${summarize(command)}\` on ${this.target} failed: ${channelError.message}.`,
                'Run the command again; if it keeps failing, check the sshd log on the host.',
                channelError,
              ),
            ),
          )
        })
        const finish = () =>
          settle(() =>
            resolve({
              code: exit.code,
              signal: exit.signal,
              stdout: Buffer.concat(stdout).toString('utf8'),
              stderr: Buffer.concat(stderr).toString('utf8'),
            }),
          )
        // 'close' follows the end of stdout; wait for stderr's end too so no late chunk is lost.
        opened.on('close', () => {
          if (opened.stderr.readableEnded) finish()
          else opened.stderr.once('end', finish)
        })
        if (stdin instanceof Readable) {
          stdin.once('error', (inputError: Error) => {
            opened.close()
            settle(() => reject(inputError))
          })
        }
        pipeInput(stdin, opened)
      }

      try {
        client.exec(command, onChannel)
      } catch {
        // ssh2 throws "Not connected" when the socket closed after the connection was handed out.
        onConnectionClose()
      }
    })
  }

  private async loadCredentials(): Promise<Credentials> {
    const identity = this.host.ssh.identity
    if (identity) {
      let privateKey: Buffer
      try {
        privateKey = await readFile(identity)
      } catch (error) {
        throw new ConnectionError(
          this.name,
          `cannot read the private key ${identity} (${(error as NodeJS.ErrnoException).code ?? error}).`,
          'Point ssh.identity at a private key file this user can read, or remove it to use ssh-agent.',
          error,
        )
      }
      const passphrase = process.env[PASSPHRASE_ENV] || undefined
      const parsed = utils.parseKey(privateKey, passphrase)
      if (parsed instanceof Error) throw this.keyError(identity, parsed, passphrase !== undefined)
      // OpenSSH's key format could hold several keys; ssh2 uses the first, as ssh does.
      const key = Array.isArray(parsed) ? parsed[0] : parsed
      if (!key.isPrivateKey()) {
        throw new ConnectionError(
          this.name,
          `${identity} is a public key, not a private key.`,
          'Point ssh.identity at the private half of the key (the file without .pub).',
        )
      }
      return {
        kind: 'key',
        path: identity,
        privateKey,
        passphrase,
        publicFingerprint: fingerprint(key.getPublicSSH()),
      }
    }
    const socket = process.env.SSH_AUTH_SOCK
    if (socket) return { kind: 'agent', socket }
    throw new ConnectionError(
      this.name,
      `no SSH credentials for ${this.target}: ssh.identity is not set and no SSH agent is running (SSH_AUTH_SOCK is empty).`,
      'Set ssh.identity to a private key file, or start ssh-agent and add your key with `ssh-add`.',
    )
  }

  private keyError(identity: string, error: Error, hadPassphrase: boolean): ConnectionError {
    if (/no passphrase given/i.test(error.message)) {
      return new ConnectionError(
        this.name,
        `the private key ${identity} is encrypted and ${PASSPHRASE_ENV} is not set.`,
        `Export ${PASSPHRASE_ENV}, or load the key into ssh-agent (\`ssh-add ${identity}\`) and remove ssh.identity.`,
      )
    }
    if (hadPassphrase && /passphrase|integrity|decrypt/i.test(error.message)) {
      return new ConnectionError(
        this.name,
        `${PASSPHRASE_ENV} does not decrypt the private key ${identity}.`,
        `Check the passphrase with \`ssh-keygen -y -f ${identity}\`.`,
      )
    }
    return new ConnectionError(
      this.name,
      `cannot use the private key ${identity}: ${error.message}.`,
      'ssh.identity must be an OpenSSH, PEM or PuTTY private key file (ed25519, ecdsa or rsa).',
    )
  }

  private async readKnownHosts(): Promise<string> {
    const file = this.host.ssh.knownHosts
    try {
      return await readFile(file, 'utf8')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return ''
      throw new HostKeyError(
        this.name,
        `cannot read the known_hosts file ${file} (${(error as NodeJS.ErrnoException).code ?? error}).`,
        'Make it readable by this user, or point ssh.known_hosts at another file.',
      )
    }
  }

  private async recordHostKey(key: Buffer): Promise<void> {
    const file = this.host.ssh.knownHosts
    try {
      await mkdir(dirname(file), { recursive: true, mode: 0o700 })
      const existing = await this.readKnownHosts()
      // Another transport (a parallel deploy to the same host) may have recorded it in the meantime.
      if (checkHostKey(lookupHostKeys(existing, this.hostname, this.host.port), key).status === 'known')
        return
      const separator = existing === '' || existing.endsWith('\n') ? '' : '\n'
      await appendFile(file, `${separator}${formatKnownHostsLine(this.hostname, this.host.port, key)}\n`, {
        mode: 0o600,
      })
    } catch (error) {
      if (error instanceof HostKeyError) throw error
      // Going on without recording would trust whatever key the host offers next time too.
      throw new HostKeyError(
        this.name,
        `cannot record the host key of ${knownHostName(this.hostname, this.host.port)} in ${file}: ${(error as Error).message}.`,
        `Make ${file} and its directory writable by this user, or record the key yourself with ${this.keyscanCommand()}.`,
      )
    }
  }

  private hostKeyError(check: Exclude<HostKeyCheck, { status: 'known' }>, key: Buffer): HostKeyError {
    const file = this.host.ssh.knownHosts
    const name = knownHostName(this.hostname, this.host.port)
    const offered = `${keyTypeOf(key)} key ${fingerprint(key)}`
    switch (check.status) {
      case 'unknown':
        return new HostKeyError(
          this.name,
          `${name} is not in ${file}; it offered the ${offered}.`,
          `Check that fingerprint with whoever runs the host (\`ssh-keygen -lf /etc/ssh/ssh_host_${keyTypeOf(key).replace(/^ssh-|-.*$/g, '')}_key.pub\` there), ` +
            `then record it with ${this.keyscanCommand()}; or set \`host_key: accept-new\` to record it on first connection.`,
        )
      case 'revoked':
        return new HostKeyError(
          this.name,
          `${name} offered the ${offered}, which ${file}:${check.entry.line} marks @revoked.`,
          'A revoked key is never accepted: the host needs a new host key, recorded in known_hosts once checked.',
        )
      case 'changed':
        return new HostKeyError(
          this.name,
          `the host key of ${name} has changed: it offered the ${offered}, but ${file} records ${describeEntries(file, check.entries)}.`,
          'This can be a man-in-the-middle attack, and deployer never replaces a recorded key. If the host was reinstalled, ' +
            `confirm the new fingerprint out of band, remove the old key with \`ssh-keygen -R ${quote(name)} -f ${quote(file)}\`, and connect again.`,
        )
    }
  }

  private keyscanCommand(): string {
    const port = this.host.port === 22 ? '' : `-p ${this.host.port} `
    return `\`ssh-keyscan ${port}${quote(this.hostname)} >> ${quote(this.host.ssh.knownHosts)}\``
  }

  private connectError(error: Error, credentials: Credentials): ConnectionError {
    const code = (error as NodeJS.ErrnoException).code
    const level = (error as Error & { level?: string }).level
    const address = `${this.hostname}:${this.host.port}`
    const make = (message: string, hint: string) => new ConnectionError(this.name, message, hint, error)
    if (code === 'ECONNREFUSED') {
      return make(
        `nothing is listening on ${address} (connection refused).`,
        `Check hostname and port of ${this.name} in deployer.yml, and that sshd is running on the host.`,
      )
    }
    if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
      return make(
        `the name ${this.hostname} does not resolve (${code}).`,
        code === 'EAI_AGAIN'
          ? 'The DNS server did not answer: check the network, or use an IP address.'
          : 'Check the spelling of hostname in deployer.yml, or use an IP address.',
      )
    }
    if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || code === 'ETIMEDOUT') {
      return make(
        `${address} is unreachable (${code}).`,
        'Check the address, the network route and firewalls between here and the host.',
      )
    }
    if (level === 'client-timeout') {
      return make(
        `no SSH handshake with ${address} within ${this.host.ssh.connectTimeout} s.`,
        'Check that the port is an SSH server reachable from here (a firewall that drops packets looks like this), ' +
          'or raise ssh.connect_timeout.',
      )
    }
    if (level === 'client-authentication') {
      const home = `~${this.user}/.ssh/authorized_keys`
      if (credentials.kind === 'key') {
        return make(
          `${this.target} refused the key ${credentials.path} (${credentials.publicFingerprint}).`,
          `Add ${credentials.path}.pub to ${home} on ${this.hostname} ` +
            `(\`ssh-copy-id -i ${quote(credentials.path)} -p ${this.host.port} ${this.user}@${this.hostname}\`), or check user and ssh.identity.`,
        )
      }
      return make(
        `${this.target} refused every key the SSH agent offered (SSH_AUTH_SOCK=${credentials.socket}).`,
        `Check that \`ssh-add -l\` lists the right key and that its public half is in ${home} on ${this.hostname}.`,
      )
    }
    return make(
      `cannot connect to ${this.target}: ${error.message}.`,
      `Run \`ssh -v -p ${this.host.port} ${this.user}@${this.hostname} true\` to see where it fails.`,
    )
  }

  private abortError(command: string, signal: AbortSignal): Error {
    const error = new Error(`Host ${this.name}: \`${summarize(command)}\` was aborted.`, {
      cause: signal.reason,
    })
    // The same name as the AbortError that child_process gives LocalTransport, so callers check one thing.
    error.name = 'AbortError'
    return error
  }
}

/**
 * ssh2 picks the first host key algorithm both sides support, so a host whose known_hosts entry is an
 * ECDSA key would offer its ed25519 key and look "changed". Like OpenSSH, put the recorded types first.
 * ssh2's `prepend` skips algorithms already in its default list, hence remove-then-prepend (applied in
 * this key order).
 */
function preferredAlgorithms(entries: readonly KnownHostEntry[]): ConnectConfig['algorithms'] {
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

function describeEntries(file: string, entries: readonly KnownHostEntry[]): string {
  return entries
    .map((entry) => `${entry.keyType} key ${fingerprint(entry.key)} at ${file}:${entry.line}`)
    .join(', ')
}

/** The first line of a command, shortened, for messages. */
export function summarize(command: string): string {
  const firstLine = command.split('\n', 1)[0]!
  return firstLine.length > 60 || firstLine !== command ? `${firstLine.slice(0, 60)}...` : firstLine
}

/**
 * Asks sshd to signal the command's process group. ssh2's own `channel.signal()` silently does nothing
 * once stdin has been ended (it checks `writable`), which here is right after the command starts, so
 * this sends the same request through the connection's protocol object. The abort test covers it.
 */
function sendSignal(channel: ClientChannel, name: string): void {
  const internals = channel as unknown as {
    outgoing?: { id: number; state: string }
    _client?: { _protocol?: { signal(id: number, signal: string): void } }
  }
  const outgoing = internals.outgoing
  if (!outgoing || (outgoing.state !== 'open' && outgoing.state !== 'eof')) return
  try {
    internals._client?._protocol?.signal(outgoing.id, name)
  } catch {
    // A signal is best effort: the channel is closed right after either way.
  }
}

function normalizeSignal(name: string): string {
  return name.startsWith('SIG') ? name : `SIG${name}`
}
