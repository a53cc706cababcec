import type { HostConfig } from '../../src/config/types.js'

/** Host `local` deploying to `deployTo`: what unit tests run HostSession against with a LocalTransport. */
export function localHost(deployTo: string, name = 'local'): HostConfig {
  return {
    name,
    kind: 'local',
    port: 22,
    deployTo,
    ssh: { knownHosts: '', hostKey: 'strict', connectTimeout: 10 },
  }
}
