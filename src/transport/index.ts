import type { HostConfig } from '../config/types.js'
import { LocalTransport } from './local.js'
import { SshTransport } from './ssh.js'
import type { Transport } from './transport.js'

export { LocalTransport } from './local.js'
export { quote, quoteAll } from './quote.js'
export { SshTransport } from './ssh.js'
export type { ExecOptions, ExecResult, Transport } from './transport.js'

/** The transport for a host: this machine for `kind: local`, one SSH connection otherwise. */
export function openTransport(host: HostConfig): Transport {
  return host.kind === 'local' ? new LocalTransport(host.name) : new SshTransport(host)
}
