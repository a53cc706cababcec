import { SSH_ENV } from '../config/ssh-env.js'
import { ExitCode } from '../errors.js'
import { parseKnownHosts } from '../transport/known-hosts.js'

/** The deployer commands the action runs. */
export const ACTION_COMMANDS = ['release', 'rollback', 'prune', 'releases', 'check'] as const
export type ActionCommand = (typeof ACTION_COMMANDS)[number]

/** The action's inputs, after validation. Empty strings mean "not given". */
export interface ActionInputs {
  config: string
  command: ActionCommand
  /** `args`, split into words. */
  args: string[]
  sshPrivateKey: string
  knownHosts: string
  workingDirectory: string
}

/**
 * The environment variable action.yml passes each input in. Underscores, not the runner's own
 * `INPUT_SSH-PRIVATE-KEY` spelling: a composite action passes inputs explicitly, and a name with `-`
 * cannot be read or unset from a shell.
 */
export const INPUT_ENV = {
  config: 'INPUT_CONFIG',
  command: 'INPUT_COMMAND',
  args: 'INPUT_ARGS',
  sshPrivateKey: 'INPUT_SSH_PRIVATE_KEY',
  knownHosts: 'INPUT_KNOWN_HOSTS',
  workingDirectory: 'INPUT_WORKING_DIRECTORY',
} as const

/** Flags the action sets itself; a second copy in `args` would fight with them. */
const RESERVED_FLAGS: { pattern: RegExp; use: string }[] = [
  { pattern: /^--json(=|$)/, use: 'the action always passes --json' },
  { pattern: /^(--config(=|$)|-c)/, use: 'use the config input instead' },
]

/** Reads and checks the inputs from `env`; every problem found is in the one error returned. */
export function parseInputs(env: NodeJS.ProcessEnv): { ok: true; inputs: ActionInputs } | ErrorResult {
  const problems: string[] = []
  const command = (env[INPUT_ENV.command] ?? '').trim() || 'release'
  if (!(ACTION_COMMANDS as readonly string[]).includes(command)) {
    problems.push(
      `The command input must be one of ${ACTION_COMMANDS.join(', ')}, not ${JSON.stringify(command)}.`,
    )
  }
  const split = splitArgs(env[INPUT_ENV.args] ?? '')
  if (!split.ok) problems.push(`The args input ${split.problem}.`)
  for (const arg of split.ok ? split.args : []) {
    const reserved = RESERVED_FLAGS.find((flag) => flag.pattern.test(arg))
    if (reserved) problems.push(`The args input must not contain ${arg}: ${reserved.use}.`)
  }
  if (problems.length > 0) {
    return failure(
      problems.join(' '),
      'Fix the inputs under `with:` in the workflow step that uses deployer.',
    )
  }
  return {
    ok: true,
    inputs: {
      config: (env[INPUT_ENV.config] ?? '').trim() || 'deployer.yml',
      command: command as ActionCommand,
      args: split.ok ? split.args : [],
      sshPrivateKey: env[INPUT_ENV.sshPrivateKey] ?? '',
      knownHosts: env[INPUT_ENV.knownHosts] ?? '',
      workingDirectory: (env[INPUT_ENV.workingDirectory] ?? '').trim() || '.',
    },
  }
}

/** A failure as `--json` prints it when a command stops before it has a result. */
export interface ErrorInfo {
  message: string
  hint?: string
  exitCode?: number
  host?: string
  /** What deployer printed on stderr, when it printed no JSON (a flag it does not know, a crash). */
  output?: string
}

export type ErrorResult = { ok: false; error: ErrorInfo }

/**
 * Splits `args` into words the way a shell would quote them, and does nothing else a shell does: no
 * variables, globs, command substitution or redirection. Words are separated by whitespace; `'…'`
 * keeps everything literally; `"…"` keeps everything but `\"` and `\\`; outside quotes `\` escapes the
 * next character.
 */
export function splitArgs(text: string): { ok: true; args: string[] } | { ok: false; problem: string } {
  const args: string[] = []
  // `inWord` tells an empty quoted word ('') from no word at all.
  let word = ''
  let inWord = false
  let quote: "'" | '"' | undefined
  for (let index = 0; index < text.length; index++) {
    const char = text[index] as string
    const next = text[index + 1]
    if (quote === "'") {
      if (char === "'") quote = undefined
      else word += char
    } else if (quote === '"') {
      if (char === '"') quote = undefined
      else if (char === '\\' && (next === '"' || next === '\\')) word += text[++index]
      else word += char
    } else if (/\s/.test(char)) {
      if (inWord) args.push(word)
      word = ''
      inWord = false
    } else {
      inWord = true
      if (char === "'" || char === '"') quote = char
      else if (char !== '\\') word += char
      else if (next === undefined) return { ok: false, problem: 'ends with a \\ that escapes nothing' }
      else word += text[++index]
    }
  }
  if (quote) return { ok: false, problem: `has a ${quote} that is never closed` }
  if (inWord) args.push(word)
  return { ok: true, args }
}

/** An SSH host from deployer.yml, as far as the action needs it: where ssh-keyscan should look. */
export interface SshTarget {
  hostname: string
  port: number
}

/**
 * Whether the inputs let deployer reach `targets` (the config's SSH hosts) with host keys checked: a
 * known-hosts input with at least one key line, and a private key or a running ssh-agent.
 */
export function checkSshInputs(
  inputs: ActionInputs,
  targets: readonly SshTarget[],
  hasAgent: boolean,
): ErrorResult | undefined {
  if (targets.length === 0) return undefined
  const names = targets.map((target) => target.hostname).join(', ')
  if (inputs.knownHosts.trim() === '') {
    return failure(
      `The known-hosts input is empty, and ${names} must be reached over SSH: deployer checks every host key and will not connect to a host it cannot verify.`,
      knownHostsHint(targets),
    )
  }
  if (parseKnownHosts(inputs.knownHosts).length === 0) {
    return failure(
      'The known-hosts input has no host key line: each line must read `host key-type base64-key`, as ssh-keyscan prints them.',
      knownHostsHint(targets),
    )
  }
  if (inputs.sshPrivateKey.trim() === '' && !hasAgent) {
    return failure(
      `The ssh-private-key input is empty and no SSH agent is running, so there is no key to log in to ${names} with.`,
      'Pass the deploy key as `ssh-private-key: ${{ secrets.DEPLOY_SSH_KEY }}` (its public half in the deploy user’s ~/.ssh/authorized_keys), or load it into ssh-agent in an earlier step.',
    )
  }
  const keyProblem = inputs.sshPrivateKey.trim() === '' ? undefined : privateKeyProblem(inputs.sshPrivateKey)
  if (keyProblem) {
    return failure(
      `The ssh-private-key input ${keyProblem}.`,
      'Store the whole private key file in the secret, from its -----BEGIN line to its -----END line.',
    )
  }
  return undefined
}

/** How to get known_hosts lines for `targets` and check them before trusting them. */
export function knownHostsHint(targets: readonly SshTarget[]): string {
  const scans = [...new Set(targets.map((target) => keyscanCommand(target)))]
  return [
    `From a machine you trust, run \`${scans.join('; ')}\`,`,
    'compare each fingerprint (`ssh-keygen -lf known_hosts`) with the server’s own (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`, run on the server),',
    'then store the lines as a secret or variable and pass it as `known-hosts: ${{ secrets.DEPLOY_KNOWN_HOSTS }}`.',
  ].join(' ')
}

function keyscanCommand(target: SshTarget): string {
  // Host names were validated by the config loader (letters, digits, `.`, `_`, `-`, or an IPv6 address).
  const port = target.port === 22 ? '' : `-p ${target.port} `
  return `ssh-keyscan ${port}${target.hostname} >> known_hosts`
}

/** Why `key` cannot be a private key file, without ever quoting it; undefined when it looks like one. */
export function privateKeyProblem(key: string): string | undefined {
  const text = key.trim()
  if (/^(ssh-|ecdsa-|sk-)\S+ [A-Za-z0-9+/=]+/.test(text)) return 'holds a public key, not the private key'
  if (/^PuTTY-User-Key-File-\d+:/.test(text)) return undefined
  if (!/^-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(text)) {
    return 'does not start with a -----BEGIN … PRIVATE KEY----- line'
  }
  if (!/-----END [A-Z0-9 ]*PRIVATE KEY-----$/.test(text)) {
    return 'does not end with its -----END … PRIVATE KEY----- line (was it cut short?)'
  }
  return undefined
}

/**
 * A private key or known_hosts text as a file should hold it: Unix line ends and one final newline.
 * Secrets pasted through a browser often lose the newline, which OpenSSH's key parser then refuses.
 */
export function normaliseFileText(text: string): string {
  return `${text.replace(/\r\n?/g, '\n').trim()}\n`
}

function failure(message: string, hint: string): ErrorResult {
  return { ok: false, error: { message, hint, exitCode: ExitCode.usage } }
}

/**
 * The arguments after `bin/run.js`. The action's own flags come before the user's, so a `--` in `args`
 * cannot turn them into positional arguments.
 */
export function deployerArgs(inputs: ActionInputs): string[] {
  return [inputs.command, '--json', '--config', inputs.config, ...inputs.args]
}

/**
 * The environment deployer runs with: the step's, without any action input (the private key among
 * them), pointed at the files the action wrote, with host keys always checked strictly: on a fresh
 * runner `accept-new` would trust whatever key a host offers.
 */
export function deployerEnv(
  env: NodeJS.ProcessEnv,
  files: { identity?: string; knownHosts?: string },
): NodeJS.ProcessEnv {
  // Every INPUT_* goes, also the runner's own INPUT_SSH-PRIVATE-KEY spelling should a runner set it.
  const kept = Object.fromEntries(Object.entries(env).filter(([name]) => !/^INPUT_/i.test(name)))
  return {
    ...kept,
    ...(files.identity ? { [SSH_ENV.identity]: files.identity } : {}),
    ...(files.knownHosts ? { [SSH_ENV.knownHosts]: files.knownHosts } : {}),
    [SSH_ENV.hostKey]: 'strict',
  }
}
