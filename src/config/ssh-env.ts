import path from 'node:path'
import { DeployerError, ExitCode } from '../errors.js'
import type { DeployConfig, ExplicitSshSetting, HostKeyPolicy, SshSettings } from './types.js'

/**
 * Environment variables that override `ssh:` for every host. CI writes the key and known_hosts it was
 * given to files of its own (the GitHub Action does) and points deployer at them without editing
 * deployer.yml, whose paths name the developer's machine.
 */
export const SSH_ENV = {
  /** Replaces `ssh.identity`. */
  identity: 'DEPLOYER_SSH_IDENTITY',
  /** Replaces `ssh.known_hosts`. */
  knownHosts: 'DEPLOYER_KNOWN_HOSTS',
  /** Replaces `ssh.host_key`: `strict` or `accept-new`. */
  hostKey: 'DEPLOYER_HOST_KEY',
} as const

const HOST_KEY_POLICIES: readonly HostKeyPolicy[] = ['strict', 'accept-new']

/**
 * `config` with the SSH_ENV overrides that are set (an empty value counts as unset) applied to the
 * top-level `ssh` settings and to every host's. Paths may start with `~/`; relative ones start at `cwd`.
 */
export function applySshEnv(
  config: DeployConfig,
  env: NodeJS.ProcessEnv,
  options: { cwd: string; homeDir: string },
): DeployConfig {
  const identity = env[SSH_ENV.identity]
  const knownHosts = env[SSH_ENV.knownHosts]
  const hostKey = env[SSH_ENV.hostKey]
  if (!identity && !knownHosts && !hostKey) return config
  if (hostKey && !(HOST_KEY_POLICIES as readonly string[]).includes(hostKey)) {
    throw new DeployerError(
      `${SSH_ENV.hostKey} must be ${HOST_KEY_POLICIES.join(' or ')}, not ${JSON.stringify(hostKey)}.`,
      { exitCode: ExitCode.config, hint: `Unset ${SSH_ENV.hostKey} to use ssh.host_key from the config.` },
    )
  }
  const local = (value: string) =>
    value === '~' || value.startsWith('~/')
      ? path.join(options.homeDir, value.slice(2))
      : path.resolve(options.cwd, value)
  const given: ExplicitSshSetting[] = [
    ...(identity ? (['identity'] as const) : []),
    ...(knownHosts ? (['knownHosts'] as const) : []),
    ...(hostKey ? (['hostKey'] as const) : []),
  ]
  const override = (ssh: SshSettings): SshSettings => ({
    ...ssh,
    // Given by the environment, so they win over ssh_config like deployer.yml's own.
    ...(ssh.explicit ? { explicit: [...new Set([...ssh.explicit, ...given])] } : {}),
    ...(identity ? { identity: local(identity) } : {}),
    ...(knownHosts ? { knownHosts: local(knownHosts) } : {}),
    ...(hostKey ? { hostKey: hostKey as HostKeyPolicy } : {}),
  })
  return {
    ...config,
    ssh: override(config.ssh),
    hosts: config.hosts.map((host) => ({ ...host, ssh: override(host.ssh) })),
  }
}
