import { ConnectionError, type DeployerError, HostKeyError } from '../errors.js'
import { knownHostName } from './known-hosts.js'
import type { OpenSshTarget } from './openssh-args.js'
import { quote } from './quote.js'

/** The host as deployer.yml names it, and where the OpenSSH client tried to go. */
export interface OpenSshFailureContext extends OpenSshTarget {
  name: string
}

/**
 * The typed error for an `ssh` run that exited 255 before the command started, read from what ssh
 * printed: the same classes, exit codes and hints as the built-in client's errors for the same causes
 * (src/transport/ssh.ts). Pure; the table in test/unit/transport/openssh-errors.test.ts holds ssh
 * 9.2's messages.
 */
export function classifySshFailure(stderr: string, context: OpenSshFailureContext): DeployerError {
  const text = stderr.replaceAll('\r', '')
  const { name, user, hostname, port, ssh } = context
  // Without ssh.known_hosts in deployer.yml, ssh checked the files its ssh_config names, not ours.
  const ownFile = ssh.explicit === undefined || ssh.explicit.includes('knownHosts')
  const file = ownFile ? ssh.knownHosts : '~/.ssh/known_hosts'
  const files = ownFile
    ? file
    : `the known_hosts files of your ssh_config (\`ssh -G ${hostname}\` names them)`
  const hostKeyName = knownHostName(hostname, port)
  // User and port that deployer.yml left to ssh_config are not known here: name only what ssh was given.
  const given = (setting: 'user' | 'port') => ssh.explicit === undefined || ssh.explicit.includes(setting)
  const shownUser = user !== undefined && given('user') ? user : undefined
  const address = given('port') ? `${hostname}:${port}` : hostname
  const target = shownUser ? `${shownUser}@${address}` : address
  const sshV = `ssh -v ${given('port') ? `-p ${port} ` : ''}${shownUser ? `${shownUser}@` : ''}${hostname} true`
  const keyscan = `\`ssh-keyscan ${port === 22 ? '' : `-p ${port} `}${quote(hostname)} >> ${quote(file)}\``
  const connection = (message: string, hint: string) => new ConnectionError(name, message, hint)

  const offered =
    /fingerprint for the (\S+) key sent by the remote host is\s*\n?\s*(SHA256:\S+?)\.?\s*$/m.exec(text)
  if (/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key for .* has changed/.test(text)) {
    const offending = /Offending (\S+) key in (.+):(\d+)\s*$/m.exec(text)
    const recorded = offending
      ? ` records the ${offending[1]} key at ${offending[2]}:${offending[3]}`
      : ' records another key'
    const what = offered ? `the ${offered[1]} key ${offered[2]}` : 'another key'
    return new HostKeyError(
      name,
      `the host key of ${hostKeyName} has changed: it offered ${what}, but ${files}${recorded}.`,
      'This can be a man-in-the-middle attack, and deployer never replaces a recorded key. If the host was reinstalled, ' +
        `confirm the new fingerprint out of band, remove the old key with \`ssh-keygen -R ${quote(hostKeyName)} -f ${quote(file)}\`, and connect again.`,
    )
  }
  if (/REVOKED HOST KEY|was revoked/.test(text)) {
    return new HostKeyError(
      name,
      `${hostKeyName} offered a host key that ${files} marks @revoked.`,
      'A revoked key is never accepted: the host needs a new host key, recorded in known_hosts once checked.',
    )
  }
  const unknown = /No (\S+) host key is known for/.exec(text)
  if (unknown || /Host key verification failed/.test(text)) {
    const offer = unknown ? `; it offered an ${unknown[1]} key` : ''
    return new HostKeyError(
      name,
      `${hostKeyName} is not in ${files}${offer}.`,
      `Check its fingerprint with whoever runs the host (\`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub\` there), ` +
        `then record it with ${keyscan}; or set \`host_key: accept-new\` to record it on first connection.`,
    )
  }
  if (/Failed to add the host to the list of known hosts/.test(text)) {
    return new HostKeyError(
      name,
      `cannot record the host key of ${hostKeyName} in ${file}.`,
      `Make ${file} and its directory writable by this user, or record the key yourself with ${keyscan}.`,
    )
  }
  const missingKey = /no such identity: (.+): No such file or directory/.exec(text)
  if (missingKey && ssh.identity) {
    return connection(
      `cannot read the private key ${ssh.identity} (ENOENT).`,
      'Point ssh.identity at a private key file this user can read, or remove it to use ssh-agent.',
    )
  }
  if (/Permission denied \(/.test(text)) {
    const home = `~${user}/.ssh/authorized_keys`
    if (ssh.identity) {
      return connection(
        `${target} refused the key ${ssh.identity}.`,
        `Add ${ssh.identity}.pub to ${home} on ${hostname} ` +
          `(\`ssh-copy-id -i ${quote(ssh.identity)} -p ${port} ${user}@${hostname}\`), or check user and ssh.identity. ` +
          'An encrypted key must be in ssh-agent: the OpenSSH client never prompts for its passphrase.',
      )
    }
    return connection(
      `${target} refused every key ssh offered (ssh-agent and the identities of your ssh_config).`,
      `Check that \`ssh-add -l\` lists the right key and that its public half is in ${home} on ${hostname}.`,
    )
  }
  if (/Connection refused/.test(text)) {
    return connection(
      `nothing is listening on ${address} (connection refused).`,
      `Check hostname and port of ${name} in deployer.yml, and that sshd is running on the host.`,
    )
  }
  const unresolved = /Could not resolve hostname (\S+?):\s*(.*)$/m.exec(text)
  if (unresolved) {
    const temporary = /Temporary failure/i.test(unresolved[2] ?? '')
    return connection(
      `the name ${unresolved[1]} does not resolve (${(unresolved[2] ?? '').trim() || 'unknown name'}).`,
      temporary
        ? 'The DNS server did not answer: check the network, or use an IP address.'
        : 'Check the spelling of hostname in deployer.yml (or HostName in your ssh_config), or use an IP address.',
    )
  }
  if (/timed out|Connection timed out/i.test(text)) {
    return connection(
      `no SSH handshake with ${address} within ${ssh.connectTimeout} s.`,
      'Check that the port is an SSH server reachable from here (a firewall that drops packets looks like this), ' +
        'or raise ssh.connect_timeout.',
    )
  }
  if (/No route to host|Network is unreachable/.test(text)) {
    return connection(
      `${address} is unreachable (${/No route to host/.test(text) ? 'no route to host' : 'network unreachable'}).`,
      'Check the address, the network route and firewalls between here and the host.',
    )
  }
  const said = lastLine(text)
  return connection(
    `ssh could not connect to ${target}${said ? `: ${said}` : ' (exit 255, nothing printed)'}.`,
    `Run \`${sshV}\` to see where it fails.`,
  )
}

function lastLine(text: string): string {
  const lines = text
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
  return (lines.at(-1) ?? '').replace(/\.$/, '')
}
