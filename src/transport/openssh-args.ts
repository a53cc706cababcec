import type { ExplicitSshSetting, SshSettings } from '../config/types.js'

/** What the OpenSSH argv depends on: where to connect and the host's `ssh:` settings. */
export interface OpenSshTarget {
  /** Absent: ssh_config's `User`, else the local user, as ssh decides. */
  user?: string
  hostname: string
  port: number
  ssh: SshSettings
}

/**
 * What one `ssh` run does: start the ControlMaster, run a command through it, or ask it (`-O check`,
 * `-O exit`).
 */
export type OpenSshRole =
  | { kind: 'master'; persistSeconds: number }
  | { kind: 'exec'; command: string }
  | { kind: 'control'; operation: 'check' | 'exit' }

// A dead peer is noticed after about 30 s, as with the built-in client's keepalives.
const SERVER_ALIVE_INTERVAL = 10
const SERVER_ALIVE_COUNT_MAX = 3

/**
 * The argv (without `ssh` itself) for one run of the OpenSSH client. Pure: the table in
 * test/unit/transport/openssh-args.test.ts pins every option.
 *
 * Options given with `-o` win over any ssh_config file (ssh keeps the first value it reads), so the
 * settings deployer promises (strict host keys, its known_hosts, never a prompt) hold whatever
 * ~/.ssh/config says; everything else (ProxyCommand, certificates, FIDO keys, GSSAPI) comes from that file.
 */
export function buildSshArgs(target: OpenSshTarget, controlPath: string, role: OpenSshRole): string[] {
  const { ssh } = target
  const args: string[] = []
  if (ssh.config === false) args.push('-F', 'none')
  else if (typeof ssh.config === 'string') args.push('-F', ssh.config)
  const option = (name: string, value: string | number) => args.push('-o', `${name}=${value}`)
  // Never a password, passphrase or host key prompt: in CI there is nobody to answer it.
  option('BatchMode', 'yes')
  option('StrictHostKeyChecking', ssh.hostKey === 'accept-new' ? 'accept-new' : 'yes')
  // What deployer.yml left unset comes from the user's ssh_config, as with the built-in client.
  const given = (setting: ExplicitSshSetting) => ssh.explicit === undefined || ssh.explicit.includes(setting)
  if (given('knownHosts')) option('UserKnownHostsFile', sshPath(ssh.knownHosts))
  if (ssh.identity) {
    option('IdentityFile', sshPath(ssh.identity))
    option('IdentitiesOnly', 'yes')
  }
  if (given('connectTimeout')) option('ConnectTimeout', ssh.connectTimeout)
  option('ServerAliveInterval', SERVER_ALIVE_INTERVAL)
  option('ServerAliveCountMax', SERVER_ALIVE_COUNT_MAX)
  option('ControlPath', sshPath(controlPath))
  switch (role.kind) {
    case 'master':
      option('ControlMaster', 'yes')
      // The idle limit ends a master whose deployer died without closing it; a live transport
      // starts a new one if it ever finds the socket gone.
      option('ControlPersist', role.persistSeconds)
      // The user's forwardings would make the master fail on a port in use, and belong to their own sessions.
      option('ClearAllForwardings', 'yes')
      // -N: no command; -f: go to the background once authenticated, with the socket listening.
      args.push('-N', '-f')
      break
    case 'exec':
      // Only a client of the master, never a master itself (if the master is gone, ssh connects on its own).
      option('ControlMaster', 'no')
      // An ssh_config RemoteCommand or RequestTTY would replace the command or mangle its bytes.
      option('RemoteCommand', 'none')
      args.push('-T')
      break
    case 'control':
      args.push('-O', role.operation)
      break
  }
  if (ssh.proxyJump) args.push('-J', ssh.proxyJump)
  if (given('port')) args.push('-p', String(target.port))
  // The loader fills in $USER when deployer.yml names no user; ssh_config's User must win over that.
  if (target.user !== undefined && given('user')) args.push('-l', target.user)
  args.push('--', target.hostname)
  // One argument: ssh sends it as the exec request unchanged, as the built-in client sends its string.
  if (role.kind === 'exec') args.push(role.command)
  return args
}

/**
 * A path as an ssh option value: ssh expands `%` tokens (and `~`) in these options, so a literal `%` is
 * doubled, and splits on whitespace unless the value is in double quotes.
 */
export function sshPath(path: string): string {
  const escaped = path.replaceAll('%', '%%')
  return /\s/.test(escaped) ? `"${escaped}"` : escaped
}
