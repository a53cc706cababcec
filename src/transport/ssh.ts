import { appendFile, mkdir } from 'node:fs/promises'
import { dirname } from 'node:path'
import { Readable } from 'node:stream'
import type { ClientChannel, ConnectConfig, ServerHostKeyAlgorithm } from 'ssh2'
// ssh2 is CommonJS and Node's ESM loader cannot see `Client` as a named export, so take the default export.
import ssh2 from 'ssh2'
import type { HostConfig } from '../config/types.js'
import { ConnectionError, DeployerError, HostKeyError } from '../errors.js'
import { ChannelGate, isChannelRefusal, REFUSAL_RETRY_DELAYS_MS } from './channel-gate.js'
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
import { pipeInput } from './local.js'
import { quote } from './quote.js'
import {
  LOGIN_SHELL_PROBE,
  LoginShellError,
  OutputFrame,
  parseLoginShell,
  wrapScript,
} from './remote-shell.js'
import {
  type AuthAttempts,
  createAuthHandler,
  type KeyProblem,
  loadKey,
  PASSPHRASE_ENV,
  readOnce,
} from './ssh-auth.js'
import { describeSources, type Endpoint, planRoute } from './ssh-route.js'
import type { ExecOptions, ExecResult, Transport } from './transport.js'

export { PASSPHRASE_ENV } from './ssh-auth.js'

const { Client } = ssh2
type SshClient = InstanceType<typeof Client>

// A dead peer is noticed after 3 unanswered keepalives (ServerAliveCountMax's default) instead of a TCP timeout.
const KEEPALIVE_COUNT_MAX = 3
// How long close() waits for the server to acknowledge the disconnect before dropping the socket.
const CLOSE_GRACE_MS = 2_000
// Pauses before the handshake attempts after sshd dropped a connection before its banner (MaxStartups),
// each scaled by a random 0.5–1.5 so that hosts that collided do not collide again: about 25 s in all.
const HANDSHAKE_RETRY_DELAYS_MS: readonly number[] = [100, 250, 500, 1000, 2000, 4000, 8000, 8000]
// After the command exited, how long its output may take to end. A process it left in the background
// (`cmd &`, a daemon) that holds stdout open would otherwise keep the channel, and the run, open forever.
const DRAIN_AFTER_EXIT_MS = 5_000

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

/** One SSH connection (through its jump hosts) and what happened to it, shared by every command run over it. */
interface Connection {
  /** The client connected to the host itself. */
  client: SshClient
  /** Clients connected to the jump hosts, first hop first; the host's connection runs through the last. */
  hops: SshClient[]
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
  /** Queues channels when sshd allows fewer at once than we would open (MaxSessions). */
  gate: ChannelGate
}

/** Host key entries from every known_hosts file an endpoint checks, and the CA lines that name it. */
interface KnownHosts {
  /** The name looked up: HostKeyAlias, or `host` / `[host]:port`. */
  name: string
  entries: KnownHostEntry[]
  /** `file:line` of @cert-authority lines for this host. */
  certAuthorities: string[]
}

/**
 * Runs commands on a host over one SSH connection (ssh2), opened on first use and reused for every
 * command. Host and jump hosts come from deployer.yml merged with the user's ssh_config; every hop's
 * host key is checked against known_hosts like OpenSSH does, and a changed key is always refused.
 */
export class SshTransport implements Transport {
  readonly name: string
  private readonly host: HostConfig
  private connection?: Connection
  /** The route of the last connection attempt, for messages. */
  private route?: Endpoint[]
  /** Host keys recorded in known_hosts by `accept-new` (as `name type`), on any hop. */
  readonly recordedHostKeys: string[] = []

  constructor(host: HostConfig) {
    this.host = host
    this.name = host.name
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

  /** Ends the connection and its jump hosts' connections. Idempotent; a later `exec` opens a new one. */
  async close(): Promise<void> {
    const connection = this.connection
    this.connection = undefined
    if (!connection || connection.closed) return
    connection.closing = true
    if (!connection.established) {
      // Still connecting: cut it short. The handshake then rejects and leaves nothing open.
      connection.client.destroy()
      for (const hop of connection.hops) hop.destroy()
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
    // The host's connection ran through the hops: end them last, nearest to the host first.
    for (const hop of [...connection.hops].reverse()) hop.end()
  }

  /**
   * `user@host:port` of the host itself once ssh_config is applied, and ` via jump hosts` when there are
   * any; before the first connection, as deployer.yml names it.
   */
  get address(): string {
    const hops = this.route?.slice(0, -1) ?? []
    return hops.length === 0 ? this.target : `${this.target} via ${hops.map(endpointAddress).join(', ')}`
  }

  /** `user@host:port` of the host itself, for messages. */
  private get target(): string {
    const endpoint = this.route?.at(-1)
    if (endpoint) return endpointAddress(endpoint)
    return `${this.host.user ?? ''}@${this.host.hostname ?? this.host.name}:${this.host.port}`
  }

  private openConnection(): Connection {
    if (this.connection && !this.connection.closed) return this.connection
    const connection: Connection = {
      client: new Client(),
      hops: [],
      ready: Promise.resolve(),
      established: false,
      closing: false,
      closed: false,
      inFlight: new Set(),
      gate: new ChannelGate(),
    }
    this.watchClient(connection)
    connection.ready = this.handshakeWithRetry(connection).then(
      () => {
        connection.established = true
      },
      (error: unknown) => {
        // Forget a failed connection so that the next command tries again.
        connection.closed = true
        for (const hop of connection.hops) hop.destroy()
        if (this.connection === connection) this.connection = undefined
        throw error
      },
    )
    // Without a listener, a rejected connect that nobody awaited yet would be reported as unhandled.
    connection.ready.catch(() => {})
    this.connection = connection
    return connection
  }

  /** Follows the connection's current client: its last error, and its close once it was established. */
  private watchClient(connection: Connection): void {
    const { client } = connection
    client.on('error', (error) => {
      connection.lastError = error
    })
    client.on('close', () => {
      // A handshake attempt that failed is handled by handshakeWithRetry (another attempt, or the end).
      if (!connection.established || connection.client !== client) return
      connection.closed = true
      if (this.connection === connection) this.connection = undefined
      for (const onDrop of connection.inFlight) onDrop()
      for (const hop of connection.hops) hop.end()
    })
  }

  /**
   * sshd drops connections beyond MaxStartups (several hosts behind one sshd or bastion handshaking at
   * once, or a busy server) before it even sends its banner. Such a drop is retried on a new client with
   * growing, jittered pauses, so that hosts that collided spread out; anything else fails at once.
   */
  private async handshakeWithRetry(connection: Connection): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.handshake(connection)
      } catch (error) {
        const pause = HANDSHAKE_RETRY_DELAYS_MS[attempt]
        if (pause === undefined || connection.closing || !droppedBeforeBanner(error)) throw error
        for (const hop of connection.hops) hop.destroy()
        connection.hops = []
        await new Promise((resolve) => setTimeout(resolve, pause * (0.5 + Math.random())))
        if (connection.closing) throw error
        connection.client = new Client()
        this.watchClient(connection)
      }
    }
  }

  /** Connects hop by hop: each jump host's connection forwards a channel that carries the next one. */
  private async handshake(connection: Connection): Promise<void> {
    let route: Endpoint[]
    try {
      route = await planRoute(this.host)
    } catch (error) {
      if (error instanceof DeployerError) throw error
      throw new ConnectionError(
        this.name,
        `cannot work out how to reach it from ssh_config: ${(error as Error).message}.`,
        'Run `ssh -G HOST` to see what ssh makes of the config, or set ssh.config: false in deployer.yml.',
        error,
      )
    }
    this.route = route
    const target = route.at(-1)!
    // An unusable ssh.identity is the user's to fix before any connection is tried.
    if (target.identity) await this.checkIdentity(target.identity)
    let previous: { client: SshClient; endpoint: Endpoint } | undefined
    for (const endpoint of route) {
      const isTarget = endpoint === target
      const client = isTarget ? connection.client : new Client()
      if (!isTarget) {
        connection.hops.push(client)
        // A jump host's later errors surface as the host's connection closing; keep them from being unhandled.
        client.on('error', (error) => {
          connection.lastError = error
        })
      }
      const sock = previous ? await this.forward(previous.client, previous.endpoint, endpoint) : undefined
      await this.connectEndpoint(connection, client, endpoint, sock)
      previous = { client, endpoint }
    }
  }

  /** A channel from a jump host to the next endpoint's SSH port, to run the next connection over. */
  private forward(client: SshClient, via: Endpoint, to: Endpoint): Promise<ClientChannel> {
    return new Promise((resolve, reject) => {
      try {
        client.forwardOut('127.0.0.1', 0, to.hostname, to.port, (error, channel) => {
          if (!error) return resolve(channel)
          reject(
            new ConnectionError(
              this.name,
              `${via.label}, ${endpointAddress(via)}, could not open a connection to ${to.hostname}:${to.port} ` +
                `for ${to.label} (${error.message}).`,
              `Check that ${via.alias} can reach ${to.hostname}:${to.port} and allows forwarding (AllowTcpForwarding in its sshd_config)` +
                withSources(to, ['hostname', 'port', 'proxyJump']),
              error,
            ),
          )
        })
      } catch (error) {
        reject(error)
      }
    })
  }

  private async connectEndpoint(
    connection: Connection,
    client: SshClient,
    endpoint: Endpoint,
    sock: ClientChannel | undefined,
  ): Promise<void> {
    const knownHosts = await this.readKnownHosts(endpoint)
    const attempts: AuthAttempts = { keys: [], skipped: [] }

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
        const check = checkHostKey(knownHosts.entries, key)
        if (check.status === 'unknown' && endpoint.hostKeyPolicy === 'accept-new') keyToRecord = key
        else if (check.status !== 'known') {
          hostKeyRefusal = this.hostKeyError(endpoint, knownHosts, check, key)
          return false
        }
        verifiedKey = key
        return true
      }

      client.on('handshake', () => {
        if (!keyToRecord) return
        recording = this.recordHostKey(endpoint, knownHosts.name, keyToRecord)
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
      client.on('error', (error) => fail(hostKeyRefusal ?? this.connectError(endpoint, error, attempts)))
      client.on('close', () =>
        fail(
          hostKeyRefusal ??
            this.make(
              endpoint,
              `${endpointAddress(endpoint)} closed the connection before it was ready.`,
              `Run \`${sshCommand(endpoint)} -v true\` to see why.`,
            ),
        ),
      )

      const config: ConnectConfig = {
        host: endpoint.hostname,
        port: endpoint.port,
        username: endpoint.user,
        readyTimeout: endpoint.connectTimeout * 1000,
        keepaliveInterval: endpoint.keepaliveIntervalMs,
        keepaliveCountMax: KEEPALIVE_COUNT_MAX,
        hostVerifier,
        algorithms: preferredAlgorithms(knownHosts.entries),
        authHandler: createAuthHandler(
          {
            user: endpoint.user,
            ...(endpoint.identity ? { identity: endpoint.identity } : {}),
            identityFiles: endpoint.identityFiles,
            identitiesOnly: endpoint.identitiesOnly,
            ...(process.env.SSH_AUTH_SOCK ? { agentSocket: process.env.SSH_AUTH_SOCK } : {}),
          },
          attempts,
        ),
        ...(sock ? { sock } : {}),
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
        if (!sock) client.setNoDelay(true)
      } catch (error) {
        fail(
          this.make(
            endpoint,
            `cannot connect to ${endpointAddress(endpoint)}: ${(error as Error).message}`,
            `Check hostname, port and ssh settings of ${this.name} in deployer.yml${withSources(endpoint)}.`,
            error,
          ),
        )
      }
    })
  }

  private runCommand(connection: Connection, command: string, options: ExecOptions): Promise<ExecResult> {
    const { signal, onOutput, stdin } = options
    // Every script runs under /bin/sh whatever the login shell, and travels over stdin (remote-shell.ts).
    const wrapped = wrapScript(command, { hasInput: stdin !== undefined })
    const frames = { stdout: new OutputFrame(wrapped.marker), stderr: new OutputFrame(wrapped.marker) }
    return new Promise<ExecResult>((resolve, reject) => {
      const stdout: Buffer[] = []
      const stderr: Buffer[] = []
      let channel: ClientChannel | undefined
      let exit: { code: number | null; signal?: string } = { code: null }
      let settled = false
      let drainTimer: NodeJS.Timeout | undefined

      const settle = (finish: () => void) => {
        if (settled) return
        settled = true
        clearTimeout(drainTimer)
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
        const collect = (name: 'stdout' | 'stderr', into: Buffer[]) => (chunk: Buffer) => {
          const own = frames[name].push(chunk)
          if (own.length === 0) return
          into.push(own)
          onOutput?.(own.toString('utf8'), name)
        }
        opened.on('data', collect('stdout', stdout))
        opened.stderr.on('data', collect('stderr', stderr))
        opened.on('exit', (code: number | null, signalName?: string) => {
          exit = { code: code ?? null, signal: signalName ? normalizeSignal(signalName) : undefined }
          // sshd keeps the channel open until every holder of the command's stdout closes it: a process
          // the command left behind must not hold the run. Its output so far is kept.
          drainTimer = setTimeout(() => {
            opened.close()
            finish()
          }, DRAIN_AFTER_EXIT_MS)
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
        const finish = () => {
          if (!frames.stdout.started) {
            // The wrapper never ran: the login shell refused it (rbash, nologin).
            const said = frames.stderr.unframed().trim() || frames.stdout.unframed()
            settle(() => this.loginShellError(connection, said).then(reject, reject))
            return
          }
          settle(() =>
            resolve({
              code: exit.code,
              signal: exit.signal,
              stdout: Buffer.concat(stdout).toString('utf8'),
              stderr: Buffer.concat(stderr).toString('utf8'),
            }),
          )
        }
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
        opened.write(wrapped.preamble)
        pipeInput(stdin, opened)
      }

      this.openChannel(connection, wrapped.command, () => settled, onChannel, onConnectionClose)
    })
  }

  /**
   * Opens an exec channel for `commandLine` through the connection's gate: queued while as many channels are
   * open as sshd allows (MaxSessions), retried when sshd refuses one it has not freed yet.
   */
  private openChannel(
    connection: Connection,
    commandLine: string,
    cancelled: () => boolean,
    onChannel: (error: Error | undefined, channel: ClientChannel) => void,
    onNotConnected: () => void,
  ): void {
    const { client, gate } = connection
    const attempt = (retry: number): void => {
      gate.acquire().then(() => {
        if (cancelled()) return gate.release()
        try {
          client.exec(commandLine, (error, channel) => {
            if (!error) {
              channel.once('close', () => gate.release())
              return onChannel(undefined, channel)
            }
            if (!isChannelRefusal(error)) {
              gate.release()
              return onChannel(error, channel)
            }
            // Queued behind the channels still open, or a pause when sshd has not freed a closed one.
            if (gate.refused() > 0) return attempt(retry)
            const delay = REFUSAL_RETRY_DELAYS_MS[retry]
            if (delay === undefined || cancelled()) return onChannel(error, channel)
            setTimeout(() => attempt(retry + 1), delay)
          })
        } catch {
          // ssh2 throws "Not connected" when the socket closed after the connection was handed out.
          gate.release()
          onNotConnected()
        }
      })
    }
    attempt(0)
  }

  /** Why the wrapper did not run, naming the login shell when the host tells it. */
  private async loginShellError(connection: Connection, said: string): Promise<LoginShellError> {
    const shell = await new Promise<string | undefined>((resolve) => {
      const onProbe = (error: Error | undefined, channel: ClientChannel) => {
        if (error) return resolve(undefined)
        let output = ''
        channel.on('data', (chunk: Buffer) => {
          output += chunk.toString('utf8')
        })
        channel.stderr.resume()
        channel.on('close', () => resolve(parseLoginShell(output)))
        channel.end()
      }
      this.openChannel(
        connection,
        LOGIN_SHELL_PROBE,
        () => false,
        onProbe,
        () => resolve(undefined),
      )
    })
    const user = this.route?.at(-1)?.user ?? this.host.user ?? 'the SSH user'
    return new LoginShellError(this.name, user, shell, said)
  }

  /** Refuses an ssh.identity that cannot be used, with what to do about it, before connecting. */
  private async checkIdentity(identity: string): Promise<void> {
    const load = await loadKey(identity)
    if (load.ok) return
    const problem = load.problem
    switch (problem.kind) {
      case 'missing':
      case 'unreadable':
        if (problem.kind === 'missing' || !/parse|unsupported|format/i.test(problem.message)) {
          throw new ConnectionError(
            this.name,
            `cannot read the private key ${identity} (${problem.kind === 'missing' ? 'ENOENT' : problem.message}).`,
            'Point ssh.identity at a private key file this user can read, or remove it to use ssh-agent.',
          )
        }
        throw new ConnectionError(
          this.name,
          `cannot use the private key ${identity}: ${problem.message}.`,
          'ssh.identity must be an OpenSSH, PEM or PuTTY private key file (ed25519, ecdsa or rsa).',
        )
      case 'encrypted':
        throw new ConnectionError(
          this.name,
          `the private key ${identity} is encrypted and ${PASSPHRASE_ENV} is not set.`,
          `Export ${PASSPHRASE_ENV}, or load the key into ssh-agent (\`ssh-add ${identity}\`) and remove ssh.identity.`,
        )
      case 'wrong-passphrase':
        throw new ConnectionError(
          this.name,
          `${PASSPHRASE_ENV} does not decrypt the private key ${identity}.`,
          `Check the passphrase with \`ssh-keygen -y -f ${identity}\`.`,
        )
      case 'public':
        throw new ConnectionError(
          this.name,
          `${identity} is a public key, not a private key.`,
          'Point ssh.identity at the private half of the key (the file without .pub).',
        )
    }
  }

  /** Every known_hosts entry for the endpoint, from each file it checks (a pipe is read once). */
  private async readKnownHosts(endpoint: Endpoint): Promise<KnownHosts> {
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
          this.name,
          `${this.where(endpoint)}cannot read the known_hosts file ${file} (${(error as NodeJS.ErrnoException).code ?? error}).`,
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

  private async recordHostKey(endpoint: Endpoint, name: string, key: Buffer): Promise<void> {
    const file = endpoint.knownHostsFiles[0]!
    try {
      await mkdir(dirname(file), { recursive: true, mode: 0o700 })
      // Another transport (a parallel deploy to the same host) may have recorded it in the meantime.
      const again = await this.readKnownHosts({ ...endpoint, knownHostsFiles: [file] })
      if (checkHostKey(again.entries, key).status === 'known') return
      const existing = (await readOnce(file).catch(() => Buffer.alloc(0))).toString('utf8')
      const separator = existing === '' || existing.endsWith('\n') ? '' : '\n'
      await appendFile(file, `${separator}${name} ${keyTypeOf(key)} ${key.toString('base64')}\n`, {
        mode: 0o600,
      })
    } catch (error) {
      if (error instanceof HostKeyError) throw error
      // Going on without recording would trust whatever key the host offers next time too.
      throw new HostKeyError(
        this.name,
        `${this.where(endpoint)}cannot record the host key of ${name} in ${file}: ${(error as Error).message}.`,
        `Make ${file} and its directory writable by this user, or record the key yourself with ${keyscanCommand(endpoint)}.`,
      )
    }
  }

  private hostKeyError(
    endpoint: Endpoint,
    known: KnownHosts,
    check: Exclude<HostKeyCheck, { status: 'known' }>,
    key: Buffer,
  ): HostKeyError {
    const files = endpoint.knownHostsFiles.join(', ')
    const name = known.name
    const offered = `${keyTypeOf(key)} key ${fingerprint(key)}`
    const where = this.where(endpoint)
    const alias = endpoint.hostKeyAlias
      ? ` (HostKeyAlias${withSources(endpoint, ['hostKeyAlias'], ' from ')})`
      : ''
    switch (check.status) {
      case 'unknown':
        if (known.certAuthorities.length > 0) {
          return new HostKeyError(
            this.name,
            `${where}${name}${alias} is vouched for only by the host CA at ${known.certAuthorities.join(', ')} (@cert-authority), ` +
              `and deployer's built-in SSH client (ssh2) cannot check host certificates; the host offered its plain ${offered}.`,
            'Set `ssh.client: openssh` in deployer.yml to let the system ssh check the certificate, ' +
              `or record the host's own key once checked with ${keyscanCommand(endpoint)}.`,
          )
        }
        return new HostKeyError(
          this.name,
          `${where}${name}${alias} is not in ${files}; it offered the ${offered}.`,
          `Check that fingerprint with whoever runs the host (\`ssh-keygen -lf /etc/ssh/ssh_host_${keyTypeOf(key).replace(/^ssh-|-.*$/g, '')}_key.pub\` there), ` +
            `then record it with ${keyscanCommand(endpoint)}; or set \`host_key: accept-new\` to record it on first connection.`,
        )
      case 'revoked':
        return new HostKeyError(
          this.name,
          `${where}${name}${alias} offered the ${offered}, which ${check.entry.file}:${check.entry.line} marks @revoked.`,
          'A revoked key is never accepted: the host needs a new host key, recorded in known_hosts once checked.',
        )
      case 'changed':
        return new HostKeyError(
          this.name,
          `${where}the host key of ${name}${alias} has changed: it offered the ${offered}, but ${files} records ${describeEntries(check.entries)}.`,
          'This can be a man-in-the-middle attack, and deployer never replaces a recorded key. If the host was reinstalled, ' +
            `confirm the new fingerprint out of band, remove the old key with \`ssh-keygen -R ${quote(name)} -f ${quote(check.entries[0]?.file ?? files)}\`, and connect again.`,
        )
    }
  }

  /** `jump host bastion (hop 1 of 2 to web1), ops@10.0.0.2:22: ` for a jump host; nothing for the host itself. */
  private where(endpoint: Endpoint): string {
    return endpoint === this.route?.at(-1) || !this.route
      ? ''
      : `${endpoint.label}, ${endpointAddress(endpoint)}: `
  }

  private make(endpoint: Endpoint, message: string, hint: string, cause?: unknown): ConnectionError {
    return new ConnectionError(this.name, `${this.where(endpoint)}${message}`, hint, cause)
  }

  private connectError(endpoint: Endpoint, error: Error, attempts: AuthAttempts): ConnectionError {
    const code = (error as NodeJS.ErrnoException).code
    const level = (error as Error & { level?: string }).level
    const address = `${endpoint.hostname}:${endpoint.port}`
    const settings = withSources(endpoint, ['hostname', 'port', 'user', 'proxyJump'])
    const make = (message: string, hint: string) => this.make(endpoint, message, hint, error)
    if (code === 'ECONNREFUSED') {
      return make(
        `nothing is listening on ${address} (connection refused).`,
        `Check hostname and port of ${this.name} in deployer.yml${settings}, and that sshd is running on the host.`,
      )
    }
    if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
      return make(
        `the name ${endpoint.hostname} does not resolve (${code}).`,
        code === 'EAI_AGAIN'
          ? 'The DNS server did not answer: check the network, or use an IP address.'
          : `Check the spelling of hostname in deployer.yml${settings}, or use an IP address.`,
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
        `no SSH handshake with ${address} within ${endpoint.connectTimeout} s.`,
        'Check that the port is an SSH server reachable from here (a firewall that drops packets looks like this), ' +
          'or raise ssh.connect_timeout.',
      )
    }
    if (level === 'client-authentication') return this.authError(endpoint, attempts, make)
    return make(
      `cannot connect to ${address}: ${error.message}.`,
      `Run \`${sshCommand(endpoint)} -v true\` to see where it fails.`,
    )
  }

  /** Says what was offered and refused, and which keys could not even be offered. */
  private authError(
    endpoint: Endpoint,
    attempts: AuthAttempts,
    make: (message: string, hint: string) => ConnectionError,
  ): ConnectionError {
    const target = endpointAddress(endpoint)
    const home = `~${endpoint.user}/.ssh/authorized_keys`
    const certificates = certificateNote(endpoint)
    const offered = [
      ...(attempts.agent
        ? [`the SSH agent's ${attempts.agent.keys} key(s) (SSH_AUTH_SOCK=${attempts.agent.socket})`]
        : []),
      ...attempts.keys.map((key) => `${key.path} (${key.fingerprint})`),
    ]
    const skipped = attempts.skipped.map((entry) => `${entry.path} ${describeProblem(entry.problem)}`)
    const skippedText = skipped.length > 0 ? ` Not offered: ${skipped.join('; ')}.` : ''
    if (endpoint.identity && attempts.keys.length === 1) {
      const key = attempts.keys[0]!
      return make(
        `${target} refused the key ${key.path} (${key.fingerprint}).${certificates.message}`,
        certificates.hint ||
          `Add ${key.path}.pub to ${home} on ${endpoint.hostname} ` +
            `(\`ssh-copy-id -i ${quote(key.path)} -p ${endpoint.port} ${endpoint.user}@${endpoint.hostname}\`), or check user and ssh.identity.`,
      )
    }
    if (offered.length === 0) {
      return make(
        `no SSH credentials for ${target}: ssh.identity is not set, no SSH agent is running (SSH_AUTH_SOCK is empty), ` +
          `and none of ${endpoint.identityFiles.join(', ')} could be used.${skippedText}${certificates.message}`,
        certificates.hint ||
          'Set ssh.identity to a private key file, or start ssh-agent and add your key with `ssh-add`.',
      )
    }
    return make(
      `${target} refused every credential offered: ${offered.join(', ')}.${skippedText}${certificates.message}`,
      certificates.hint ||
        `Check that the right key is offered (\`ssh-add -l\`, IdentityFile${withSources(endpoint, ['identityFiles'], ' at ')}) ` +
          `and that its public half is in ${home} on ${endpoint.hostname}.`,
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

function describeEntries(entries: readonly KnownHostEntry[]): string {
  return entries
    .map((entry) => `${entry.keyType} key ${fingerprint(entry.key)} at ${entry.file}:${entry.line}`)
    .join(', ')
}

/** Whether a failed handshake is sshd dropping the connection before its banner, as MaxStartups does. */
function droppedBeforeBanner(error: unknown): boolean {
  if (!(error instanceof ConnectionError) || error instanceof HostKeyError) return false
  const cause = error.cause as (Error & { code?: string; level?: string }) | undefined
  if (!cause) return /closed the connection before it was ready/.test(error.message)
  return /Connection lost before handshake/i.test(cause.message) || cause.code === 'ECONNRESET'
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

function endpointAddress(endpoint: Endpoint): string {
  return `${endpoint.user}@${endpoint.hostname}:${endpoint.port}`
}

/** The ssh command that reaches the endpoint directly, for hints. */
function sshCommand(endpoint: Endpoint): string {
  return `ssh -p ${endpoint.port} ${quote(`${endpoint.user}@${endpoint.hostname}`)}`
}

function keyscanCommand(endpoint: Endpoint): string {
  const port = endpoint.port === 22 ? '' : `-p ${endpoint.port} `
  return `\`ssh-keyscan ${port}${quote(endpoint.hostname)} >> ${quote(endpoint.knownHostsFiles[0]!)}\``
}

/** ` (HostName from ~/.ssh/config:3, ...)` for hints, naming the ssh_config lines behind the values. */
function withSources(
  endpoint: Endpoint,
  keys?: Parameters<typeof describeSources>[1],
  lead = ' (ssh_config: ',
): string {
  const text = describeSources(endpoint, keys)
  if (text === '') return ''
  return lead === ' (ssh_config: ' ? `${lead}${text})` : `${lead}${text}`
}

function describeProblem(problem: KeyProblem): string {
  switch (problem.kind) {
    case 'missing':
      return 'does not exist'
    case 'encrypted':
      return `is encrypted (set ${PASSPHRASE_ENV}, run on a terminal to be asked, or add it to ssh-agent)`
    case 'wrong-passphrase':
      return `is not decrypted by ${PASSPHRASE_ENV}`
    case 'public':
      return 'is a public key'
    case 'unreadable':
      return `cannot be used (${problem.message})`
  }
}

/**
 * ssh2 cannot authenticate with OpenSSH user certificates (it has no `-cert-v01@openssh.com` publickey
 * support): when ssh_config names one, the refusal says so and points at the OpenSSH client.
 */
function certificateNote(endpoint: Endpoint): { message: string; hint: string } {
  if (endpoint.certificateFiles.length === 0) return { message: '', hint: '' }
  return {
    message:
      ` ssh_config names the user certificate ${endpoint.certificateFiles.join(', ')}` +
      `${withSources(endpoint, ['certificateFiles'], ' at ')}, which deployer's built-in SSH client (ssh2) cannot use.`,
    hint: 'Set `ssh.client: openssh` in deployer.yml so the system ssh authenticates with the certificate, or authorize the plain key on the host.',
  }
}
