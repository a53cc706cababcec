import { Readable } from 'node:stream'
// ssh2 is CommonJS and Node's ESM loader cannot see `Client` as a named export, so take the default export.
import type ssh2 from 'ssh2'
import type { ClientChannel } from 'ssh2'
import { ConnectionError } from '../errors.js'
import { type ChannelGate, isChannelRefusal, REFUSAL_RETRY_DELAYS_MS } from './channel-gate.js'
import { pipeInput } from './local.js'
import {
  LOGIN_SHELL_PROBE,
  LoginShellError,
  OutputFrame,
  parseLoginShell,
  wrapScript,
} from './remote-shell.js'
import { summarize } from './ssh-messages.js'
import type { ExecOptions, ExecResult } from './transport.js'

/**
 * Running one command over an established ssh2 connection: its channel (queued by the connection's
 * gate), its framed output, exit status, abort and the connection dropping under it. ssh.ts owns the
 * connection; this owns what happens on it.
 */

type SshClient = InstanceType<typeof ssh2.Client>

// After the command exited, how long its output may take to end. A process it left in the background
// (`cmd &`, a daemon) that holds stdout open would otherwise keep the channel, and the run, open forever.
const DRAIN_AFTER_EXIT_MS = 5_000

/** One SSH connection (through its jump hosts) and what happened to it, shared by every command run over it. */
export interface Connection {
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

/** What messages need to know about the host a command runs on. */
export interface CommandContext {
  /** deployer.yml's name of the host. */
  host: string
  /** `user@host:port` of the host, read when a message is made. */
  target(): string
  /** The login user, for the message when the login shell refuses to run the command. */
  user(): string
}

export function runCommand(
  context: CommandContext,
  connection: Connection,
  command: string,
  options: ExecOptions,
): Promise<ExecResult> {
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
      settle(() => reject(abortError(context.host, command, signal!)))
    }
    const onConnectionClose = () => {
      const cause = connection.lastError
      settle(() =>
        reject(
          new ConnectionError(
            context.host,
            `the connection to ${context.target()} dropped while running \`${summarize(command)}\`` +
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
              context.host,
              `${context.target()} refused to run \`${summarize(command)}\`: ${error.message}.`,
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
              context.host,
              `the channel running \`${summarize(command)}\` on ${context.target()} failed: ${channelError.message}.`,
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
          settle(() => loginShellError(context, connection, said).then(reject, reject))
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

    openChannel(connection, wrapped.command, () => settled, onChannel, onConnectionClose)
  })
}

/**
 * Opens an exec channel for `commandLine` through the connection's gate: queued while as many channels are
 * open as sshd allows (MaxSessions), retried when sshd refuses one it has not freed yet.
 */
function openChannel(
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
async function loginShellError(
  context: CommandContext,
  connection: Connection,
  said: string,
): Promise<LoginShellError> {
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
    openChannel(
      connection,
      LOGIN_SHELL_PROBE,
      () => false,
      onProbe,
      () => resolve(undefined),
    )
  })
  const user = context.user()
  return new LoginShellError(context.host, user, shell, said)
}

/** The AbortError a command rejects with when its signal fires. */
export function abortError(host: string, command: string, signal: AbortSignal): Error {
  const error = new Error(`Host ${host}: \`${summarize(command)}\` was aborted.`, {
    cause: signal.reason,
  })
  // The same name as the AbortError that child_process gives LocalTransport, so callers check one thing.
  error.name = 'AbortError'
  return error
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
