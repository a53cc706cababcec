/**
 * Exit codes are part of the contract: CI scripts branch on them. Keep the README table in sync.
 */
export const ExitCode = {
  ok: 0,
  failure: 1,
  usage: 2,
  config: 3,
  connection: 4,
  hostKey: 5,
  locked: 6,
  install: 7,
  verify: 8,
  partial: 9,
  disagreement: 10,
  interrupted: 130,
} as const

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode]

/** A failure the user can act on: a full-sentence message, an exit code and a hint saying what to do next. */
export class DeployerError extends Error {
  readonly exitCode: ExitCodeValue
  readonly hint?: string
  /** The host the failure happened on, when there is one. */
  readonly host?: string

  constructor(
    message: string,
    options: { exitCode?: ExitCodeValue; hint?: string; host?: string; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = new.target.name
    this.exitCode = options.exitCode ?? ExitCode.failure
    this.hint = options.hint
    this.host = options.host
  }
}

export class ConfigError extends DeployerError {
  /** Every problem found, each already formatted as `file:line: key: message`. */
  readonly problems: string[]

  constructor(file: string, problems: string[]) {
    super(
      `${file} has ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n  ${problems.join('\n  ')}`,
      {
        exitCode: ExitCode.config,
        hint: 'Fix the lines above; `deployer init` writes a commented example of every key.',
      },
    )
    this.problems = problems
  }
}

export class ConnectionError extends DeployerError {
  constructor(host: string, message: string, hint: string, cause?: unknown) {
    super(`Host ${host}: ${message}`, { exitCode: ExitCode.connection, hint, host, cause })
  }
}

export class HostKeyError extends DeployerError {
  constructor(host: string, message: string, hint: string) {
    super(`Host ${host}: ${message}`, { exitCode: ExitCode.hostKey, hint, host })
  }
}

/** A remote command exited non-zero. Carries what it printed so the user sees the real cause. */
export class RemoteCommandError extends DeployerError {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string

  constructor(
    host: string,
    what: string,
    result: { code: number | null; stdout: string; stderr: string },
    options: { exitCode?: ExitCodeValue; hint?: string; because?: string } = {},
  ) {
    // Both ends: Rails and rake print the exception first and a long backtrace after it.
    const tail = headAndTail(result.stderr || result.stdout, 10, 20)
    const because = options.because ? ` because ${options.because}` : ''
    super(
      `Host ${host}: ${what} failed (exit ${result.code ?? 'signal'})${because}${tail ? `:\n${indent(tail)}` : '.'}`,
      {
        exitCode: options.exitCode ?? ExitCode.failure,
        hint: options.hint,
        host,
      },
    )
    this.code = result.code
    this.stdout = result.stdout
    this.stderr = result.stderr
  }
}

/**
 * The system error a failed remote command reports for a full disk or an exceeded quota, if any. A
 * full disk is not a bug to debug but space to free, and tar's own output buries it under one
 * "Cannot write" line per file.
 */
export function diskFullError(output: string): string | null {
  return /No space left on device|Disk quota exceeded/.exec(output)?.[0] ?? null
}

export class InterruptedError extends DeployerError {
  constructor(signal: string) {
    super(`Interrupted by ${signal}; nothing was published on hosts that had not flipped yet.`, {
      exitCode: ExitCode.interrupted,
      hint: 'Run the same command again: stale partial releases are cleaned up first.',
    })
  }
}

export function lastLines(text: string, count: number): string {
  const lines = text.trimEnd().split('\n')
  return lines.slice(-count).join('\n')
}

/** The first `head` and last `tail` lines, with a line saying how many were left out between them. */
export function headAndTail(text: string, head: number, tail: number): string {
  const lines = text.trimEnd().split('\n')
  if (lines.length <= head + tail + 1) return lines.join('\n')
  const omitted = lines.length - head - tail
  return [...lines.slice(0, head), `… (${omitted} lines left out) …`, ...lines.slice(-tail)].join('\n')
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((line) => `    ${line}`)
    .join('\n')
}
