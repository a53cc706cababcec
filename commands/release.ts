import { Flags } from '@oclif/core'
import { DeployerCommand, errorJson } from '../src/cli/base-command.js'
import type { RestartKind, Strategy } from '../src/config/types.js'
import { runRelease } from '../src/fleet/release.js'
import { currentActor } from '../src/release/actor.js'
import { renderReleasePlan, renderReleaseResult } from '../src/ui/render.js'

export default class Release extends DeployerCommand {
  static override summary = 'build a new release on every host, publish it and flip current'
  static override description =
    'Uploads the built app into releases/N on each host (unchanged files hard-linked from the previous release), links shared files and runs the install. Only when every host built it does it go live, in waves set by --strategy: each host renames it into place, flips `current` atomically, restarts Puma the least disruptive correct way and verifies it. A failed or interrupted build changes nothing that serves; a host that fails to go live stops the rollout and, with --on-failure rollback, takes the hosts already live back.'
  static override examples = [
    '<%= config.bin %> release',
    '<%= config.bin %> release --config deploy/production.yml --host web1',
    '<%= config.bin %> release --source build/ --dry-run',
    '<%= config.bin %> release --strategy rolling --batch 2',
    '<%= config.bin %> release --strategy canary --on-failure stop',
    '<%= config.bin %> release --json',
  ]

  static override flags = {
    source: Flags.string({ description: 'the built app directory to upload (overrides `source:`)' }),
    'dry-run': Flags.boolean({ description: 'print the plan and change nothing' }),
    restart: Flags.string({
      description:
        'how to restart Puma after the flip (auto: the least disruptive correct one; overrides server.restart)',
      options: ['auto', 'phased', 'hot', 'full', 'none'],
    }),
    strategy: Flags.string({
      description: 'how the built release goes live across hosts (overrides `strategy:`)',
      options: ['parallel', 'rolling', 'canary'],
    }),
    batch: Flags.integer({ description: 'hosts per rolling batch (overrides `batch:`)', min: 1 }),
    concurrency: Flags.integer({ description: 'hosts worked on at once (overrides `concurrency:`)', min: 1 }),
    'on-failure': Flags.string({
      description:
        'when a host fails to go live: roll back the hosts already live, or stop (overrides `on_failure:`)',
      options: ['rollback', 'stop'],
    }),
  }

  async run(): Promise<void> {
    const { flags } = await this.parse(Release)
    const config = await this.loadDeployConfig(flags)
    if (flags.source) config.source = flags.source
    const result = await runRelease(config, {
      dryRun: flags['dry-run'],
      reporter: this.reporterFor(config),
      actor: currentActor(),
      signal: this.trapSignals(),
      restart: flags.restart as RestartKind | undefined,
      strategy: flags.strategy as Strategy | undefined,
      batch: flags.batch,
      concurrency: flags.concurrency,
      onFailure: flags['on-failure'] as 'rollback' | 'stop' | undefined,
    })
    await this.output({ ok: !result.error, ...result, error: result.error && errorJson(result.error) }, () =>
      result.dryRun ? renderReleasePlan(config, result) : renderReleaseResult(result),
    )
    if (result.error) this.fail(result.error)
  }
}
