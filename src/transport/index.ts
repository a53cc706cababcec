import type { HostConfig } from '../config/types.js'
import { LocalTransport } from './local.js'
import { OpenSshTransport } from './openssh.js'
import { SshTransport } from './ssh.js'
import type { Transport } from './transport.js'

export { LocalTransport } from './local.js'
export { OpenSshTransport } from './openssh.js'
export { quote, quoteAll } from './quote.js'
export { SshTransport } from './ssh.js'
export type { ExecOptions, ExecResult, Transport } from './transport.js'

/**
 * The transport for a host: this machine for `kind: local`, otherwise one SSH connection, made by the
 * built-in client or, with `ssh.client: openssh`, by the system's `ssh`.
 */
export function openTransport(host: HostConfig): Transport {
  if (host.kind === 'local') return new LocalTransport(host.name)
  return host.ssh.client === 'openssh' ? new OpenSshTransport(host) : new SshTransport(host)
}
