import { DeployerError, ExitCode } from '../errors.js'
import type { ReleaseInfo } from '../release/states.js'

/**
 * Which release a rollback goes to: `--to N` when given (it must exist and not be failed), otherwise
 * the newest good release older than `current`, skipping failed and rolled-back ones.
 */
export function chooseRollbackTarget(
  host: string,
  releases: readonly ReleaseInfo[],
  current: number | null,
  to?: number,
): number {
  if (to !== undefined) {
    const wanted = releases.find((release) => release.number === to)
    const known = releases.map((release) => release.number).join(', ') || 'none'
    if (!wanted) {
      throw new DeployerError(`Host ${host}: release ${to} does not exist (releases: ${known}).`, {
        exitCode: ExitCode.usage,
        hint: 'Pick one from `deployer releases`.',
        host,
      })
    }
    if (wanted.state === 'failed') {
      throw new DeployerError(`Host ${host}: release ${to} is marked failed and will not be made current.`, {
        exitCode: ExitCode.usage,
        hint: 'Deploy a fixed build with `deployer release`, or pick a good release from `deployer releases`.',
        host,
      })
    }
    if (to === current) {
      throw new DeployerError(`Host ${host}: release ${to} is already current.`, {
        exitCode: ExitCode.usage,
        host,
      })
    }
    return to
  }
  if (current === null) {
    throw new DeployerError(`Host ${host}: nothing to roll back: \`current\` does not point at a release.`, {
      exitCode: ExitCode.usage,
      hint: 'Run `deployer release` first, or name a release with `--to N`.',
      host,
    })
  }
  const candidates = releases
    .filter((release) => release.number < current && release.state === 'previous')
    .sort((a, b) => b.number - a.number)
  const target = candidates[0]
  if (!target) {
    throw new DeployerError(`Host ${host}: there is no good release older than the current ${current}.`, {
      exitCode: ExitCode.usage,
      hint: 'See `deployer releases`; `--to N` can roll forward to a newer good release.',
      host,
    })
  }
  return target.number
}
