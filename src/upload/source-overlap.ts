import { realpath } from 'node:fs/promises'
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path'
import type { HostConfig } from '../config/types.js'
import { DeployerError, ExitCode } from '../errors.js'

/** How two directories lie: one inside (or equal to) the other, or apart. Pure, on resolved paths. */
export function overlap(
  source: string,
  deployTo: string,
): 'same' | 'source-in-deploy-to' | 'deploy-to-in-source' | null {
  const inside = (parent: string, child: string) => {
    const path = relative(parent, child)
    return path !== '' && path !== '..' && !path.startsWith(`..${sep}`) && !isAbsolute(path)
  }
  if (source === deployTo) return 'same'
  if (inside(deployTo, source)) return 'source-in-deploy-to'
  if (inside(source, deployTo)) return 'deploy-to-in-source'
  return null
}

/** The path with symlinks resolved as far as it exists (deploy_to may not exist yet). */
async function resolvedPath(path: string): Promise<string> {
  const absolute = resolve(path)
  try {
    return await realpath(absolute)
  } catch {
    const parent = dirname(absolute)
    if (parent === absolute) return absolute
    return resolve(await resolvedPath(parent), absolute.slice(parent.length + 1))
  }
}

/**
 * On host `local`, a `source` inside `deploy_to` would be released into itself (each release holding
 * the releases before it, prune deleting the source), and a `deploy_to` inside `source` would upload
 * the releases again with every release. Refused before anything runs, as a config error.
 */
export async function refuseOverlappingSource(source: string, hosts: readonly HostConfig[]): Promise<void> {
  const local = hosts.filter((host) => host.kind === 'local')
  if (local.length === 0) return
  const resolvedSource = await resolvedPath(source)
  for (const host of local) {
    const how = overlap(resolvedSource, await resolvedPath(host.deployTo))
    if (how === null) continue
    const what = {
      same: `is deploy_to itself (${host.deployTo})`,
      'source-in-deploy-to': `lies inside deploy_to ${host.deployTo}: it would be released into itself, and prune could delete it`,
      'deploy-to-in-source': `holds deploy_to ${host.deployTo}: every release would upload the releases before it`,
    }[how]
    throw new DeployerError(`Host ${host.name}: the source ${source} ${what}.`, {
      exitCode: ExitCode.config,
      hint: 'Build the app in a directory of its own, apart from deploy_to (for example ./build next to deployer.yml, deploy_to under /srv), and set `source:` or --source to it.',
      host: host.name,
    })
  }
}
