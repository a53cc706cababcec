import type { ClientChannel, ConnectConfig } from 'ssh2'
// ssh2 is CommonJS and Node's ESM loader cannot see `Client` as a named export, so take the default export.
import ssh2 from 'ssh2'
import type { HostConfig } from '../config/types.js'
import { ConnectionError, DeployerError, type HostKeyError } from '../errors.js'
import { ChannelGate } from './channel-gate.js'
import { checkHostKey, keyTypeOf } from './known-hosts.js'
import { createAuthHandler, loadKey, noAttempts } from './ssh-auth.js'
import { enableCertificateAuth } from './ssh-certificate-auth.js'
import { abortError, type CommandContext, type Connection, runCommand } from './ssh-exec.js'
import { hostKeyError, preferredAlgorithms, readKnownHosts, recordHostKey } from './ssh-host-keys.js'
import {
  connectError,
  droppedBeforeBanner,
  endpointAddress,
  type HopContext,
  identityError,
  sshCommand,
  withSources,
} from './ssh-messages.js'
import { type Endpoint, planRoute } from './ssh-route.js'
import type { ExecOptions, ExecResult, Transport } from './transport.js'

export { PASSPHRASE_ENV } from './ssh-auth.js'
export { summarize } from './ssh-messages.js'

/**
 * The built-in transport: connections, jump hosts and handshakes. What runs over a connection is in
 * ssh-exec.ts, host key checks in ssh-host-keys.ts, authentication in ssh-auth.ts (certificates in
 * ssh-certificate-auth.ts), and the failure messages in ssh-messages.ts.
 */

const { Client } = ssh2
type SshClient = InstanceType<typeof Client>

// A dead peer is noticed after 3 unanswered keepalives (ServerAliveCountMax's default) instead of a TCP timeout.
const KEEPALIVE_COUNT_MAX = 3
// How long close() waits for the server to acknowledge the disconnect before dropping the socket.
const CLOSE_GRACE_MS = 2_000
// Pauses before the handshake attempts after sshd dropped a connection before its banner (MaxStartups),
// each scaled by a random 0.5–1.5 so that hosts that collided do not collide again: about 25 s in all.
const HANDSHAKE_RETRY_DELAYS_MS: readonly number[] = [100, 250, 500, 1000, 2000, 4000, 8000, 8000]

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
  /** What a command's messages name: this host, its address and login user. */
  private readonly commandContext: CommandContext
  /** Host keys recorded in known_hosts by `accept-new` (as `name type`), on any hop. */
  readonly recordedHostKeys: string[] = []

  constructor(host: HostConfig) {
    this.host = host
    this.name = host.name
    this.commandContext = {
      host: host.name,
      target: () => this.target,
      user: () => this.route?.at(-1)?.user ?? this.host.user ?? 'the SSH user',
    }
  }

  /** Opens the connection now instead of on the first command (to fail fast on every host at once). */
  async connect(): Promise<void> {
    await this.openConnection().ready
  }

  exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    const { signal } = options
    if (signal?.aborted) return Promise.reject(abortError(this.name, command, signal))
    const connection = this.openConnection()
    return connection.ready.then(() => {
      if (signal?.aborted) throw abortError(this.name, command, signal)
      return runCommand(this.commandContext, connection, command, options)
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
    if (target.identity) {
      const refusal = identityError(this.name, await loadKey(target.identity))
      if (refusal) throw refusal
    }
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
    const hop = this.hop(endpoint)
    const knownHosts = await readKnownHosts(endpoint, hop)
    const attempts = noAttempts()
    let certificatesEnabled = false

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
          hostKeyRefusal = hostKeyError(endpoint, hop, knownHosts, check, key)
          return false
        }
        verifiedKey = key
        return true
      }

      client.on('handshake', () => {
        if (!keyToRecord) return
        const recorded = `${knownHosts.name} ${keyTypeOf(keyToRecord)}`
        recording = recordHostKey(endpoint, hop, knownHosts.name, keyToRecord).then((written) => {
          if (written) this.recordedHostKeys.push(recorded)
        })
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
      client.on('error', (error) => fail(hostKeyRefusal ?? connectError(endpoint, hop, error, attempts)))
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
            certificateFiles: endpoint.certificateFiles,
            certificatesEnabled: () => certificatesEnabled,
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
        // Before any authentication starts: connect() only sets up the protocol and the socket.
        certificatesEnabled = enableCertificateAuth(client)
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

  /** The host, and `jump host bastion (hop 1 of 2 to web1), ops@10.0.0.2:22: ` for a jump host. */
  private hop(endpoint: Endpoint): HopContext {
    const where =
      endpoint === this.route?.at(-1) || !this.route
        ? ''
        : `${endpoint.label}, ${endpointAddress(endpoint)}: `
    return { host: this.name, where }
  }

  private make(endpoint: Endpoint, message: string, hint: string, cause?: unknown): ConnectionError {
    return new ConnectionError(this.name, `${this.hop(endpoint).where}${message}`, hint, cause)
  }
}
