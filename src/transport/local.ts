import { spawn } from 'node:child_process'
import { Readable } from 'node:stream'
import type { ExecOptions, ExecResult, Transport } from './transport.js'

/** Runs commands on this machine through `/bin/sh -c`, the same way sshd would on a host. */
export class LocalTransport implements Transport {
  readonly name: string

  constructor(name = 'local') {
    this.name = name
  }

  exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    return new Promise((resolve, reject) => {
      const { line, script } = scriptOnStdin(command, options.stdin !== undefined)
      const child = spawn('/bin/sh', ['-c', line], {
        stdio: ['pipe', 'pipe', 'pipe'],
        signal: options.signal,
      })
      const stdout: Buffer[] = []
      const stderr: Buffer[] = []
      child.stdout.on('data', (chunk: Buffer) => {
        stdout.push(chunk)
        options.onOutput?.(chunk.toString('utf8'), 'stdout')
      })
      child.stderr.on('data', (chunk: Buffer) => {
        stderr.push(chunk)
        options.onOutput?.(chunk.toString('utf8'), 'stderr')
      })
      child.on('error', reject)
      // A command that does not read its input closes the pipe early; that is not a failure of ours.
      child.stdin.on('error', () => {})
      child.on('close', (code, signal) => {
        resolve({
          code,
          signal: signal ?? undefined,
          stdout: Buffer.concat(stdout).toString('utf8'),
          stderr: Buffer.concat(stderr).toString('utf8'),
        })
      })
      child.stdin.write(script)
      pipeInput(options.stdin, child.stdin)
    })
  }

  async close(): Promise<void> {}
}

/**
 * The script goes over stdin, not argv, as over SSH (remote-shell.ts): `${VAR}` values inside it must not
 * show in `ps` to other users of this machine. The fixed command line reads exactly the script's bytes
 * (`dd bs=1`, so the caller's input that follows stays unread) and `eval`s it. Pure.
 */
export function scriptOnStdin(command: string, hasInput: boolean): { line: string; script: Buffer } {
  const script = Buffer.from(command, 'utf8')
  const read = hasInput ? `dd bs=1 count=${script.length} 2>/dev/null` : 'cat'
  return { line: `__deployer_script=$(${read}) || exit 125; eval "$__deployer_script"`, script }
}

/** Feeds `input` into a command's stdin and closes it, so commands that read to EOF finish. */
export function pipeInput(input: ExecOptions['stdin'], sink: NodeJS.WritableStream): void {
  if (input === undefined) {
    sink.end()
  } else if (input instanceof Readable) {
    input.on('error', (error) => (sink as unknown as { destroy(e: Error): void }).destroy(error))
    input.pipe(sink)
  } else {
    sink.end(input)
  }
}
