import { randomBytes } from 'node:crypto'
import { ConnectionError } from '../errors.js'

/*
 * How a script reaches a POSIX shell through whatever login shell the SSH user has.
 *
 * sshd runs every command as `$SHELL -c COMMAND`, so the command line must parse in sh, bash, zsh, fish
 * and tcsh/csh alike: zsh aborts on an unmatched glob, fish and csh have their own syntax, and csh rejects
 * a newline inside quotes. So the command line is one fixed line that only starts `/bin/sh`; the script
 * itself travels over the channel's standard input, where no login shell parses it and where `ps` on the
 * host does not show it (values from `${VAR}` in deployer.yml are inside). `/bin/sh` reads the script to a
 * variable first and `eval`s it, so commands in the script that read stdin cannot swallow its rest.
 *
 * Login output (`~/.ssh/rc`, a `.bashrc` that prints banners, rvm or nvm notices) comes before `/bin/sh`
 * starts: the wrapper prints a per-command marker line on stdout and stderr first, and everything up to
 * the marker is discarded. A stdout without the marker means `/bin/sh` never ran (a restricted or
 * non-login shell such as rbash or nologin).
 */

/** What to send for one script: the command line for sshd, and the bytes that go first on stdin. */
export interface WrappedScript {
  /** The exec request's command line: fixed text, no script, no secrets. */
  command: string
  /** The script, to be written on the channel before the caller's own input (if any). */
  preamble: Buffer
  /** The line the wrapper prints on stdout and stderr before the script runs. */
  marker: string
}

/** A fresh marker: random, so login output can never contain it by chance. */
export function newMarker(): string {
  return `deployer-start-${randomBytes(9).toString('hex')}`
}

/**
 * Wraps `script` to run under `/bin/sh` whatever the login shell. With `hasInput`, the caller's own
 * stdin follows the script on the channel, so the wrapper reads exactly the script's bytes (`dd bs=1`:
 * a shell or `head` may read ahead and swallow the start of the caller's input); without it the script
 * is all of stdin and `cat` reads it at once.
 */
export function wrapScript(script: string, options: { hasInput: boolean; marker?: string }): WrappedScript {
  const marker = options.marker ?? newMarker()
  if (!/^[A-Za-z0-9-]+$/.test(marker)) throw new Error(`marker ${marker} must be letters, digits and -`)
  const preamble = Buffer.from(script, 'utf8')
  const read = options.hasInput ? `dd bs=1 count=${preamble.length} 2>/dev/null` : 'cat'
  // Inside the single quotes: no newline, backslash, `!` or single quote, so that sh, bash, zsh, fish
  // and csh all pass it to /bin/sh unchanged (test/faults/login-shells.test.ts runs each of them).
  const inner = `__deployer_script=$(${read}) || exit 125; echo ${marker}; echo ${marker} >&2; eval "$__deployer_script"`
  return { command: `exec /bin/sh -c '${inner}'`, preamble, marker }
}

/**
 * Drops what a stream carries before the marker line (login output), passing on everything after it.
 * Feed it chunks as they arrive; `started` tells whether the marker was seen.
 */
export class OutputFrame {
  private readonly needle: Buffer
  private pending: Buffer[] = []
  private pendingLength = 0
  started = false

  constructor(marker: string) {
    this.needle = Buffer.from(`${marker}\n`)
  }

  /** The part of `chunk` that belongs to the script's output (empty until the marker has passed). */
  push(chunk: Buffer): Buffer {
    if (this.started) return chunk
    this.pending.push(chunk)
    this.pendingLength += chunk.length
    const seen = Buffer.concat(this.pending, this.pendingLength)
    const at = seen.indexOf(this.needle)
    if (at === -1) {
      this.pending = [seen]
      return Buffer.alloc(0)
    }
    this.started = true
    this.pending = []
    this.pendingLength = 0
    return seen.subarray(at + this.needle.length)
  }

  /** Everything received while the marker never came: what the login shell said instead of running. */
  unframed(): string {
    return Buffer.concat(this.pending, this.pendingLength).toString('utf8')
  }
}

/**
 * A command line that prints the login shell's path in any shell that runs commands at all, even a
 * restricted one (no slash in a command name, no redirection): for the error when the wrapper did not run.
 */
export const LOGIN_SHELL_PROBE = 'echo "$SHELL"'

/** The login shell's path from LOGIN_SHELL_PROBE's output, or undefined when it printed something else. */
export function parseLoginShell(output: string): string | undefined {
  const lines = output.trim().split('\n')
  const last = lines.at(-1)?.trim() ?? ''
  return /^\/[\w./+-]+$/.test(last) ? last : undefined
}

/** The login shell of `user` did not run the wrapper: every command would fail the same way. */
export class LoginShellError extends ConnectionError {
  /** The login shell's path when it could be read. */
  readonly shell?: string

  constructor(host: string, user: string, shell: string | undefined, said: string) {
    const which = shell ? `(${shell}) ` : ''
    const output = said.trim() ? `; it said: ${said.trim().split('\n').slice(-3).join(' / ')}` : ''
    super(
      host,
      `the login shell ${which}of ${user} did not run /bin/sh, which deployer runs every command with${output}.`,
      `Give ${user} a standard login shell on the host (as root: \`chsh -s /bin/bash ${user}\`); ` +
        'restricted shells such as rbash, and nologin, cannot deploy.',
    )
    this.shell = shell
  }
}
