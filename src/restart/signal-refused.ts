import { DeployerError, ExitCode, RemoteCommandError } from '../errors.js'
import type { HostSession } from '../hosts/host-session.js'
import { quote } from '../transport/quote.js'

/**
 * The kernel refused to deliver a signal to Puma's master (EPERM): it runs as another user than the SSH
 * user (www-data, a systemd service user). The signal never arrived, so Puma was not restarted and
 * still serves what it served before; only `current` moved.
 */
export class SignalRefusedError extends DeployerError {
  readonly signal: string
  /** The master's user, when the host would tell. */
  readonly owner: string | null

  constructor(host: string, signal: string, sshUser: string | null, owner: string | null, pidfile: string) {
    const who = owner ? `runs as ${owner}` : 'runs as another user'
    super(
      `Host ${host}: Puma's master (the pid in ${pidfile}) ${who}, so ${sshUser ?? 'the SSH user'} may not send it ${signal} (Operation not permitted): Puma was not restarted.`,
      {
        exitCode: ExitCode.failure,
        hint: `Deploy as the user Puma runs as${owner ? ` (${owner})` : ''}, or set server.full_restart to a command allowed to restart it (such as \`sudo systemctl restart APP\`), then release again.`,
        host,
      },
    )
    this.signal = signal
    this.owner = owner
  }
}

/** Whether a failed signalling command was refused by the kernel (kill: Operation not permitted). Pure. */
export function isRefusedSignal(error: unknown): boolean {
  return error instanceof RemoteCommandError && /Operation not permitted/.test(error.stderr)
}

/**
 * For a `.catch` on the command that signals the master: a refused signal becomes a
 * SignalRefusedError naming who the master runs as; anything else is rethrown as it is.
 */
export async function explainRefusedSignal(
  session: HostSession,
  pidfile: string,
  signal: string,
  error: unknown,
): Promise<never> {
  if (!isRefusedSignal(error)) throw error
  const who = await session
    .ask(`id -un; stat -c %U "/proc/$(cat ${quote(pidfile)})" 2>/dev/null`)
    .catch(() => ({ stdout: '' }))
  const [sshUser, owner] = who.stdout.trim().split('\n')
  throw new SignalRefusedError(session.name, signal, sshUser || null, owner || null, pidfile)
}
