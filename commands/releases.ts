import { DeployerCommand } from '../src/cli/base-command.js'
import { DeployerError, ExitCode } from '../src/errors.js'
import { listReleases } from '../src/fleet/list.js'
import { renderReleases } from '../src/ui/render.js'

export default class Releases extends DeployerCommand {
  static override summary = 'list the releases on each host: number, state, time, revision; * marks current'
  static override examples = ['<%= config.bin %> releases', '<%= config.bin %> releases --host web1 --json']

  async run(): Promise<void> {
    const { flags } = await this.parse(Releases)
    const config = await this.loadDeployConfig(flags)
    const hosts = await listReleases(config)
    const failed = hosts.filter((host) => host.error)
    await this.output({ ok: failed.length === 0, hosts }, () => renderReleases(hosts))
    if (failed.length > 0) {
      this.fail(
        new DeployerError(
          `Could not read ${failed.length} of ${hosts.length} hosts: ${failed.map((host) => host.host).join(', ')}.`,
          {
            exitCode: ExitCode.connection,
          },
        ),
      )
    }
  }
}
