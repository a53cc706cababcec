import type { Readable } from 'node:stream'

/** What a finished command left behind. `code` is null when it died of a signal. */
export interface ExecResult {
  code: number | null
  signal?: string
  stdout: string
  stderr: string
}

export interface ExecOptions {
  /** Bytes piped to the command's standard input, then closed. */
  stdin?: Readable | Buffer | string
  /** Aborts the command: the channel is closed and the promise rejects. */
  signal?: AbortSignal
  /** Called with each chunk of output as it arrives (for long steps such as an install). */
  onOutput?: (chunk: string, stream: 'stdout' | 'stderr') => void
}

/**
 * One host's way to run shell commands. `exec` hands the command to a POSIX shell on the host, so every
 * value inside it must come through `quote()`. Implementations keep one connection for all of a host's
 * commands and never throw on a non-zero exit: callers decide what an exit code means.
 */
export interface Transport {
  /** How the user names this host in messages (`web1`, `deploy@10.0.0.3:2222`, `local`). */
  readonly name: string
  exec(command: string, options?: ExecOptions): Promise<ExecResult>
  /** Opens the connection ahead of the first command; absent where there is nothing to open. */
  connect?(): Promise<void>
  close(): Promise<void>
}
