import { Flags } from '@oclif/core'
import { DeployerCommand } from '../src/cli/base-command.js'
import { runRollback } from '../src/fleet/rollback.js'
import { currentActor } from '../src/release/actor.js'
import { renderRollback } from '../src/ui/render.js'

export default class Rollback extends DeployerCommand {
  static override summary = 'point current at the previous good release (or the one named with --to)'
  static override description =
    'Skips releases marked failed or already rolled back. `--to N` can also roll forward to a newer good release. Prints the command that undoes it.'
  static override examples = [
    '<%= config.bin %> rollback',
    '<%= config.bin %> rollback --to 12',
    '<%= config.bin %> rollback --dry-run --json',
  ]

  static override flags = {
    to: Flags.integer({ description: 'the release number to make current', min: 1 }),
    'dry-run': Flags.boolean({ description: 'print the plan and change nothing' }),
  }

  async run(): Promise<void> {
    const { flags } = await this.parse(Rollback)
    const config = await this.loadDeployConfig(flags)
    this.trapSignals()
    const outcomes = await runRollback(config, {
      to: flags.to,
      dryRun: flags['dry-run'],
      reporter: this.reporterFor(config),
      actor: currentActor(),
    })
    await this.output({ ok: true, dryRun: flags['dry-run'], hosts: outcomes }, () =>
      renderRollback(outcomes, flags['dry-run'], flags.config),
    )
  }
}
