import { Flags } from '@oclif/core'
import { DeployerCommand } from '../src/cli/base-command.js'
import { runPrune } from '../src/fleet/prune.js'
import { currentActor } from '../src/release/actor.js'
import { renderPrune } from '../src/ui/render.js'

export default class Prune extends DeployerCommand {
  static override summary = 'delete the oldest releases beyond --keep'
  static override description =
    'Never deletes `current`, a release being built, or a release that a process on the host uses as its cwd or through a mapped file; each release kept for that reason is reported with the pid and command holding it.'
  static override examples = [
    '<%= config.bin %> prune --keep 3',
    '<%= config.bin %> prune --keep 3 --dry-run',
  ]

  static override flags = {
    keep: Flags.integer({ description: 'good releases to keep, current included (default: keep_releases)' }),
    'dry-run': Flags.boolean({ description: 'print what would be deleted and change nothing' }),
  }

  async run(): Promise<void> {
    const { flags } = await this.parse(Prune)
    const config = await this.loadDeployConfig(flags)
    this.trapSignals()
    const outcomes = await runPrune(config, {
      keep: flags.keep ?? config.keepReleases,
      dryRun: flags['dry-run'],
      reporter: this.reporterFor(config),
      actor: currentActor(),
    })
    await this.output({ ok: true, dryRun: flags['dry-run'], hosts: outcomes }, () =>
      renderPrune(outcomes, flags['dry-run']),
    )
  }
}
