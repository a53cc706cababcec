import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, open, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { Readable } from 'node:stream'
import { setTimeout as delay } from 'node:timers/promises'
import type { HostConfig } from '../config/types.js'
import { ConnectionError, HostKeyError } from '../errors.js'
import { pipeInput } from './local.js'
import { buildSshArgs, type OpenSshRole, type OpenSshTarget } from './openssh-args.js'
import { classifySshFailure } from './openssh-errors.js'
import { PidLineFilter } from './pid-line.js'
import { LoginShellError, OutputFrame, wrapScript } from './remote-shell.js'
import { summarize } from './ssh.js'
import type { ExecOptions, ExecResult, Transport } from './transport.js'

/** The OpenSSH client; found on PATH like the user's own `ssh`. */
const SSH = 'ssh'
// A master left behind by a deployer that died without close() ends after this long without clients.
const MASTER_IDLE_SECONDS = 300

/** A running ControlMaster: its private directory and the socket in it. */
interface Master {
  dir: string
  socket: string
  /** close() ended it: a command must not start on it (ssh would quietly connect on its own instead). */
  closed?: boolean
}

interface SshRun {
  code: number | null
  stdout: string
  stderr: string
}

/**
 * Runs commands on a host through the system's OpenSSH client (`ssh.client: openssh`), for what the
 * built-in client cannot do: FIDO keys, Kerberos, ProxyCommand, host certificates, the user's own
 * ssh_config. One ControlMaster connection per host, started by connect() or the first command, its
 * socket in a private 0700 directory, ended with `ssh -O exit` by close(). Each command is one `ssh`
 * client of that master; the command string reaches the host's shell exactly as with the built-in
 * client, after one line that announces the shell's pid (for abort).
 *
 * What the OpenSSH client cannot report: a command killed by a signal looks like `exit 255` (ssh
 * ignores the exit-signal message), so `code` is 255 and `signal` is unset.
 */
export class OpenSshTransport implements Transport {
  readonly name: string
  private readonly target: OpenSshTarget
  private master?: Promise<Master>
  /** Masters close() has taken, even while still starting: no command may begin on them. */
  private readonly ended = new WeakSet<Promise<Master>>()
  /** Aborted commands whose remote process group is still being signalled; close() waits for them. */
  private readonly stopping = new Set<Promise<void>>()
  /** Names this transport's pid lines, so no other output can pass for one. */
  private readonly marker = `deployer-pid-${randomBytes(6).toString('hex')}`

  /** `host.hostname` defaults to the host's name and `host.user` to the local user, as with `ssh`. */
  constructor(host: HostConfig) {
    this.name = host.name
    this.target = {
      ...(host.user === undefined ? {} : { user: host.user }),
      hostname: host.hostname ?? host.name,
      port: host.port,
      ssh: host.ssh,
    }
  }

  /** Starts the ControlMaster now instead of on the first command (to fail fast on every host at once). */
  async connect(): Promise<void> {
    await this.openMaster()
  }

  exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    const { signal } = options
    if (signal?.aborted) return Promise.reject(this.abortError(command, signal))
    return this.openMaster().then((master) => {
      if (signal?.aborted) throw this.abortError(command, signal)
      if (master.closed) {
        throw new ConnectionError(
          this.name,
          `the connection to ${this.address} was closed before \`${summarize(command)}\` could run.`,
          'Nothing to fix: deployer closes connections that are still opening when a run is interrupted.',
        )
      }
      return this.runCommand(master, command, options)
    })
  }

  /** Ends the ControlMaster (`ssh -O exit`) and removes its directory. Idempotent. */
  async close(): Promise<void> {
    const opening = this.master
    this.master = undefined
    if (opening) this.ended.add(opening)
    await Promise.allSettled([...this.stopping])
    const master = await opening?.catch(() => undefined)
    if (master) await this.stopMaster(master)
  }

  /** The ControlMaster's pid, as `ssh -O check` reports it; undefined when none runs. */
  async masterPid(): Promise<number | undefined> {
    const master = await this.master?.catch(() => undefined)
    if (!master) return undefined
    const check = await this.ssh(master, { kind: 'control', operation: 'check' })
    const pid = /\(pid=(\d+)\)/.exec(check.stderr)?.[1]
    return check.code === 0 && pid ? Number(pid) : undefined
  }

  private async openMaster(): Promise<Master> {
    let fresh = false
    for (;;) {
      if (!this.master) {
        this.master = this.startMaster()
        fresh = true
      }
      const pending = this.master
      const master = await pending
      // A master close() ended goes back marked so: exec refuses it rather than start another.
      if (master.closed || this.ended.has(pending)) return { ...master, closed: true }
      if (existsSync(master.socket)) return master
      // The master went away (its idle limit, a dropped connection) and took its socket: start another.
      if (this.master === pending) this.master = undefined
      await rm(master.dir, { recursive: true, force: true })
      if (fresh) {
        throw new ConnectionError(
          this.name,
          `ssh connected to ${this.address} but left no ControlMaster socket in ${master.dir}.`,
          'Check that no ControlMaster/ControlPath setting in your ssh_config conflicts, or use `ssh.client: builtin`.',
        )
      }
    }
  }

  private startMaster(): Promise<Master> {
    const pending = (async () => {
      // mkdtemp creates the directory 0700: only this user can reach the socket, which is the connection.
      const dir = await mkdtemp(join(tmpdir(), 'deployer-ssh-'))
      const master = { dir, socket: join(dir, 'master') }
      try {
        if (this.target.ssh.hostKey === 'accept-new') await this.prepareKnownHosts()
        const started = await this.ssh(master, { kind: 'master', persistSeconds: MASTER_IDLE_SECONDS })
        if (started.code !== 0) throw classifySshFailure(started.stderr, { ...this.target, name: this.name })
        // ssh warns and goes on when accept-new cannot write the key; deployer refuses, like the built-in client.
        if (/Failed to add the host/.test(started.stderr)) {
          await this.stopMaster(master)
          throw classifySshFailure(started.stderr, { ...this.target, name: this.name })
        }
        return master
      } catch (error) {
        await rm(dir, { recursive: true, force: true })
        throw error
      }
    })()
    // Forget a failed master so that the next command tries again.
    pending.catch(() => {
      if (this.master === pending) this.master = undefined
    })
    return pending
  }

  private async stopMaster(master: Master): Promise<void> {
    master.closed = true
    if (existsSync(master.socket)) await this.ssh(master, { kind: 'control', operation: 'exit' })
    await rm(master.dir, { recursive: true, force: true })
  }

  /** accept-new records into known_hosts: create its directory (0700) and the file (0600) as the built-in client does. */
  private async prepareKnownHosts(): Promise<void> {
    const file = this.target.ssh.knownHosts
    try {
      await mkdir(dirname(file), { recursive: true, mode: 0o700 })
      await (await open(file, 'a', 0o600)).close()
    } catch (error) {
      throw new HostKeyError(
        this.name,
        `cannot create the known_hosts file ${file} to record the host key in: ${(error as Error).message}.`,
        `Make ${dirname(file)} writable by this user, or point ssh.known_hosts at another file.`,
      )
    }
  }

  private runCommand(master: Master, command: string, options: ExecOptions): Promise<ExecResult> {
    const { signal, onOutput, stdin } = options
    // As with the built-in client: /bin/sh whatever the login shell, the script over stdin, framed
    // against login output (remote-shell.ts); the pid line first, for aborts.
    const wrapped = wrapScript(`${PidLineFilter.announce(this.marker)}\n${command}`, {
      hasInput: stdin !== undefined,
    })
    const frames = { stdout: new OutputFrame(wrapped.marker), stderr: new OutputFrame(wrapped.marker) }
    const args = buildSshArgs(this.target, master.socket, { kind: 'exec', command: wrapped.command })
    return new Promise<ExecResult>((resolve, reject) => {
      const child = spawn(SSH, args, { stdio: ['pipe', 'pipe', 'pipe'] })
      const pidLine = new PidLineFilter(this.marker)
      const stdout: Buffer[] = []
      const stderr: Buffer[] = []
      let settled = false
      const settle = (finish: () => void) => {
        if (settled) return
        settled = true
        signal?.removeEventListener('abort', onAbort)
        if (stdin instanceof Readable) stdin.unpipe(child.stdin)
        finish()
      }
      const onStderr = (bytes: Buffer) => {
        if (bytes.length === 0) return
        stderr.push(bytes)
        onOutput?.(bytes.toString('utf8'), 'stderr')
      }
      const onAbort = () => {
        settle(() => reject(this.abortError(command, signal!)))
        // Best effort, like the built-in client's signal request: the command's promise is already settled.
        const stopped = this.stopRemote(master, pidLine, () => child.kill('SIGTERM')).catch(() => {})
        this.stopping.add(stopped)
        stopped.finally(() => this.stopping.delete(stopped))
      }
      signal?.addEventListener('abort', onAbort, { once: true })

      child.stdout.on('data', (chunk: Buffer) => {
        const own = frames.stdout.push(chunk)
        if (own.length === 0) return
        stdout.push(own)
        onOutput?.(own.toString('utf8'), 'stdout')
      })
      child.stderr.on('data', (chunk: Buffer) => onStderr(pidLine.push(frames.stderr.push(chunk))))
      // A command that exits without reading all its input closes the pipe early; not a failure of ours.
      child.stdin.on('error', () => {})
      child.on('error', (error) => settle(() => reject(this.spawnError(error))))
      child.on('close', (code, signalName) => {
        onStderr(pidLine.end())
        if (settled) return
        if (!frames.stdout.started && code !== 255) {
          // The wrapper never ran: the login shell refused it (rbash, nologin).
          const said = frames.stderr.unframed().trim() || frames.stdout.unframed()
          const user = this.target.user ?? 'the SSH user'
          return settle(() => reject(new LoginShellError(this.name, user, undefined, said)))
        }
        const result = {
          code,
          ...(signalName ? { signal: signalName } : {}),
          stdout: Buffer.concat(stdout).toString('utf8'),
          stderr: Buffer.concat(stderr).toString('utf8'),
        }
        if (code !== 255) return settle(() => resolve(result))
        // 255 is ssh's own failure, but also a command's `exit 255` or its death by a signal.
        this.explainExit255(master, command, pidLine, result).then(
          (value) => settle(() => resolve(value)),
          (error: unknown) => settle(() => reject(error)),
        )
      })
      if (stdin instanceof Readable) {
        stdin.once('error', (inputError: Error) => {
          child.kill('SIGTERM')
          settle(() => reject(inputError))
        })
      }
      child.stdin.write(wrapped.preamble)
      pipeInput(stdin, child.stdin)
    })
  }

  /**
   * 255 is ssh's own failure code, but also a command's `exit 255` or its death by a signal. With the
   * master alive, a command that announced its pid ran and exited so; one that did not never started
   * (sshd refused the session). With the master gone, the connection dropped under the command, unless
   * the command never started and ssh said why its own connection failed (the master had gone away
   * before it, and the fallback connection failed too).
   */
  private async explainExit255(
    master: Master,
    command: string,
    pidLine: PidLineFilter,
    result: ExecResult,
  ): Promise<ExecResult> {
    const started = (await pidLine.pid) !== undefined
    const masterAlive = (await this.ssh(master, { kind: 'control', operation: 'check' })).code === 0
    if (masterAlive && started) return result
    if (!started && (masterAlive || result.stderr.trim() !== '')) {
      throw classifySshFailure(result.stderr, { ...this.target, name: this.name })
    }
    throw new ConnectionError(
      this.name,
      `the connection to ${this.address} dropped while running \`${summarize(command)}\`.`,
      'The command may or may not have finished on the host: check its effect before running it again.',
    )
  }

  /**
   * Stops an aborted command: TERM to its process group on the host (what the built-in client's signal
   * request does), then ends the local `ssh`, which closes the command's channel.
   */
  private async stopRemote(master: Master, pidLine: PidLineFilter, endLocal: () => void): Promise<void> {
    try {
      // The pid line is the command's first output; a connection that hangs before it gets a bound.
      const pid = await Promise.race([
        pidLine.pid,
        delay(this.target.ssh.connectTimeout * 1000, undefined, { ref: false }),
      ])
      if (pid !== undefined) {
        await this.ssh(master, { kind: 'exec', command: `kill -TERM -${pid} 2>/dev/null; true` })
      }
    } finally {
      endLocal()
    }
  }

  /** Runs `ssh` for a role and collects what it prints; never rejects on an exit code. */
  private ssh(master: Master, role: OpenSshRole): Promise<SshRun> {
    return new Promise((resolve, reject) => {
      const child = spawn(SSH, buildSshArgs(this.target, master.socket, role), {
        // The master (-f) goes to the background with its stdio on /dev/null, so 'close' comes at once.
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      const stdout: Buffer[] = []
      const stderr: Buffer[] = []
      child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk))
      child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk))
      child.on('error', (error) => reject(this.spawnError(error)))
      child.on('close', (code) =>
        resolve({
          code,
          stdout: Buffer.concat(stdout).toString('utf8'),
          stderr: Buffer.concat(stderr).toString('utf8'),
        }),
      )
    })
  }

  private get address(): string {
    return `${this.target.user}@${this.target.hostname}:${this.target.port}`
  }

  private spawnError(error: Error): ConnectionError {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT'
    return new ConnectionError(
      this.name,
      missing
        ? 'ssh.client is openssh, but there is no `ssh` on PATH.'
        : `cannot run ssh for ${this.address}: ${error.message}.`,
      missing
        ? 'Install the OpenSSH client (Debian: `apt-get install openssh-client`), or set `ssh.client: builtin`.'
        : 'Check that `ssh -V` runs for this user.',
      error,
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
