import { ConnectionError, HostKeyError } from '../errors.js'
import { quote } from './quote.js'
import { type AuthAttempts, type KeyLoad, type KeyProblem, PASSPHRASE_ENV } from './ssh-auth.js'
import { describeSources, type Endpoint } from './ssh-route.js'

/**
 * What the built-in client says when a connection fails: the errors for a refused connection, a name
 * that does not resolve, a timeout, refused credentials and an unusable ssh.identity, each naming the
 * hop, the values and the ssh_config lines behind them. Pure: the transport passes what happened.
 */

/** Which host a message is about, and which hop of its route (empty for the host itself). */
export interface HopContext {
  /** deployer.yml's name of the host being deployed to. */
  host: string
  /** `jump host bastion (hop 1 of 2 to web1), ops@10.0.0.2:22: ` for a jump host; '' for the host itself. */
  where: string
}

export function endpointAddress(endpoint: Pick<Endpoint, 'user' | 'hostname' | 'port'>): string {
  return `${endpoint.user}@${endpoint.hostname}:${endpoint.port}`
}

/** The ssh command that reaches the endpoint directly, for hints. */
export function sshCommand(endpoint: Endpoint): string {
  return `ssh -p ${endpoint.port} ${quote(`${endpoint.user}@${endpoint.hostname}`)}`
}

export function keyscanCommand(endpoint: Endpoint): string {
  const port = endpoint.port === 22 ? '' : `-p ${endpoint.port} `
  return `\`ssh-keyscan ${port}${quote(endpoint.hostname)} >> ${quote(endpoint.knownHostsFiles[0]!)}\``
}

/** ` (HostName from ~/.ssh/config:3, ...)` for hints, naming the ssh_config lines behind the values. */
export function withSources(
  endpoint: Endpoint,
  keys?: Parameters<typeof describeSources>[1],
  lead = ' (ssh_config: ',
): string {
  const text = describeSources(endpoint, keys)
  if (text === '') return ''
  return lead === ' (ssh_config: ' ? `${lead}${text})` : `${lead}${text}`
}

/** The first line of a command, shortened, for messages. */
export function summarize(command: string): string {
  const firstLine = command.split('\n', 1)[0]!
  return firstLine.length > 60 || firstLine !== command ? `${firstLine.slice(0, 60)}...` : firstLine
}

/** Why ssh2 could not connect to the endpoint or log in, with what to check. */
export function connectError(
  endpoint: Endpoint,
  hop: HopContext,
  error: Error,
  attempts: AuthAttempts,
): ConnectionError {
  const code = (error as NodeJS.ErrnoException).code
  const level = (error as Error & { level?: string }).level
  const address = `${endpoint.hostname}:${endpoint.port}`
  const settings = withSources(endpoint, ['hostname', 'port', 'user', 'proxyJump'])
  const make = (message: string, hint: string) =>
    new ConnectionError(hop.host, `${hop.where}${message}`, hint, error)
  if (code === 'ECONNREFUSED') {
    return make(
      `nothing is listening on ${address} (connection refused).`,
      `Check hostname and port of ${hop.host} in deployer.yml${settings}, and that sshd is running on the host.`,
    )
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return make(
      `the name ${endpoint.hostname} does not resolve (${code}).`,
      code === 'EAI_AGAIN'
        ? 'The DNS server did not answer: check the network, or use an IP address.'
        : `Check the spelling of hostname in deployer.yml${settings}, or use an IP address.`,
    )
  }
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || code === 'ETIMEDOUT') {
    return make(
      `${address} is unreachable (${code}).`,
      'Check the address, the network route and firewalls between here and the host.',
    )
  }
  if (level === 'client-timeout') {
    return make(
      `no SSH handshake with ${address} within ${endpoint.connectTimeout} s.`,
      'Check that the port is an SSH server reachable from here (a firewall that drops packets looks like this), ' +
        'or raise ssh.connect_timeout.',
    )
  }
  if (level === 'client-authentication') return authError(endpoint, attempts, make)
  return make(
    `cannot connect to ${address}: ${error.message}.`,
    `Run \`${sshCommand(endpoint)} -v true\` to see where it fails.`,
  )
}

/** Says what was offered and refused, and which keys and certificates could not even be offered. */
function authError(
  endpoint: Endpoint,
  attempts: AuthAttempts,
  make: (message: string, hint: string) => ConnectionError,
): ConnectionError {
  const target = endpointAddress(endpoint)
  const home = `~${endpoint.user}/.ssh/authorized_keys`
  const offered = [
    ...(attempts.agent
      ? [`the SSH agent's ${attempts.agent.keys} key(s) (SSH_AUTH_SOCK=${attempts.agent.socket})`]
      : []),
    ...attempts.certificates.map((certificate) => `the user certificate ${certificate}`),
    ...attempts.keys.map((key) => `${key.path} (${key.fingerprint})`),
  ]
  const skipped = attempts.skipped.map((entry) => `${entry.path} ${describeProblem(entry.problem)}`)
  const skippedText = skipped.length > 0 ? ` Not offered: ${skipped.join('; ')}.` : ''
  const certificateHint = certificateAdvice(endpoint, attempts)
  if (endpoint.identity && attempts.keys.length === 1 && attempts.certificates.length === 0) {
    const key = attempts.keys[0]!
    return make(
      `${target} refused the key ${key.path} (${key.fingerprint}).${skippedText}`,
      certificateHint ||
        `Add ${key.path}.pub to ${home} on ${endpoint.hostname} ` +
          `(\`ssh-copy-id -i ${quote(key.path)} -p ${endpoint.port} ${endpoint.user}@${endpoint.hostname}\`), or check user and ssh.identity.`,
    )
  }
  if (offered.length === 0) {
    return make(
      `no SSH credentials for ${target}: ssh.identity is not set, no SSH agent is running (SSH_AUTH_SOCK is empty), ` +
        `and none of ${endpoint.identityFiles.join(', ')} could be used.${skippedText}`,
      certificateHint ||
        'Set ssh.identity to a private key file, or start ssh-agent and add your key with `ssh-add`.',
    )
  }
  return make(
    `${target} refused every credential offered: ${offered.join(', ')}.${skippedText}`,
    certificateHint ||
      `Check that the right key is offered (\`ssh-add -l\`, IdentityFile${withSources(endpoint, ['identityFiles'], ' at ')}) ` +
        `and that its public half is in ${home} on ${endpoint.hostname}.`,
  )
}

/**
 * What to do about user certificates when a login failed with some in play: a refused certificate
 * points at the host's CA setting and the certificate's own fields; one that pairs only with a key in
 * ssh-agent (which the built-in client cannot sign for as a certificate) points at the OpenSSH client.
 */
function certificateAdvice(endpoint: Endpoint, attempts: AuthAttempts): string {
  const agentOnly = attempts.skipped.some(
    (entry) => entry.problem.kind === 'certificate' && entry.problem.message.includes('ssh-agent'),
  )
  if (agentOnly) {
    const where = describeSources(endpoint, ['certificateFiles'])
    return (
      `Put the private key beside the certificate${where ? ` (${where})` : ''}, ` +
      'add the certificate to ssh-agent with its key (`ssh-add KEY` loads KEY-cert.pub too), or set `ssh.client: openssh` in deployer.yml.'
    )
  }
  if (attempts.certificates.length === 0) return ''
  return (
    `Check that sshd on ${endpoint.hostname} trusts the certificate's CA (TrustedUserCAKeys in its sshd_config) ` +
    `and that the certificate names ${endpoint.user} among its principals and is valid now (\`ssh-keygen -L -f CERT\`).`
  )
}

export function describeProblem(problem: KeyProblem): string {
  switch (problem.kind) {
    case 'missing':
      return 'does not exist'
    case 'encrypted':
      return `is encrypted (set ${PASSPHRASE_ENV}, run on a terminal to be asked, or add it to ssh-agent)`
    case 'wrong-passphrase':
      return `is not decrypted by ${PASSPHRASE_ENV}`
    case 'public':
      return 'is a public key'
    case 'unreadable':
      return `cannot be used (${problem.message})`
    case 'certificate':
      return problem.message
  }
}

/** Why deployer.yml's ssh.identity cannot be used, with what to do about it; undefined when it can. */
export function identityError(host: string, load: KeyLoad): ConnectionError | undefined {
  if (load.ok) return undefined
  const { path: identity, problem } = load
  switch (problem.kind) {
    case 'missing':
    case 'unreadable':
      if (problem.kind === 'missing' || !/parse|unsupported|format/i.test(problem.message)) {
        return new ConnectionError(
          host,
          `cannot read the private key ${identity} (${problem.kind === 'missing' ? 'ENOENT' : problem.message}).`,
          'Point ssh.identity at a private key file this user can read, or remove it to use ssh-agent.',
        )
      }
      return new ConnectionError(
        host,
        `cannot use the private key ${identity}: ${problem.message}.`,
        'ssh.identity must be an OpenSSH, PEM or PuTTY private key file (ed25519, ecdsa or rsa).',
      )
    case 'encrypted':
      return new ConnectionError(
        host,
        `the private key ${identity} is encrypted and ${PASSPHRASE_ENV} is not set.`,
        `Export ${PASSPHRASE_ENV}, or load the key into ssh-agent (\`ssh-add ${identity}\`) and remove ssh.identity.`,
      )
    case 'wrong-passphrase':
      return new ConnectionError(
        host,
        `${PASSPHRASE_ENV} does not decrypt the private key ${identity}.`,
        `Check the passphrase with \`ssh-keygen -y -f ${identity}\`.`,
      )
    case 'public':
      return new ConnectionError(
        host,
        `${identity} is a public key, not a private key.`,
        'Point ssh.identity at the private half of the key (the file without .pub).',
      )
    case 'certificate':
      return new ConnectionError(
        host,
        `cannot use ${identity}: it ${problem.message}.`,
        'Check ssh.identity.',
      )
  }
}

/** Whether a failed handshake is sshd dropping the connection before its banner, as MaxStartups does. */
export function droppedBeforeBanner(error: unknown): boolean {
  if (!(error instanceof ConnectionError) || error instanceof HostKeyError) return false
  const cause = error.cause as (Error & { code?: string; level?: string }) | undefined
  if (!cause) return /closed the connection before it was ready/.test(error.message)
  return /Connection lost before handshake/i.test(cause.message) || cause.code === 'ECONNRESET'
}
