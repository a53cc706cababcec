import path from 'node:path'
import { Flags } from '@oclif/core'
import { DeployerCommand } from '../src/cli/base-command.js'
import { templateReader } from '../src/cli/templates.js'
import { DeployerError, ExitCode } from '../src/errors.js'
import { runInit } from '../src/init/run.js'
import { defaultActionRef, INIT_PARTS, resolveInitSettings } from '../src/init/settings.js'
import { renderInit } from '../src/ui/init-report.js'

export default class Init extends DeployerCommand {
  static override summary =
    'write a commented deployer.yml and, on request, config/puma.rb, systemd units and a GitHub Actions workflow'
  static override description =
    'Never overwrites a file without --force: when any of the files exists, it writes none of them and exits with the usage code. The files are set up for zero-downtime restarts (Puma in cluster mode, `directory` on the current symlink, a fixed control URL) and agree with each other on the app, deploy_to, port and paths.'
  static override examples = [
    '<%= config.bin %> init --app shop --deploy-to /srv/shop --host deploy@web1.example.com --host deploy@web2.example.com',
    '<%= config.bin %> init --all --host deploy@web1.example.com',
    '<%= config.bin %> init --puma --systemd --dry-run',
    '<%= config.bin %> init --puma --force',
  ]

  static override flags = {
    // The common --config and --host mean something else here: what to write rather than what to read.
    config: Flags.string({
      char: 'c',
      description: 'where to write deployer.yml, relative to --dir',
      default: 'deployer.yml',
      helpGroup: 'GLOBAL',
    }),
    host: Flags.string({
      description:
        'a host to list in deployer.yml: user@host[:port] or local (repeatable; default: examples)',
      multiple: true,
    }),
    dir: Flags.string({ description: 'the app directory to write into (default: the current directory)' }),
    app: Flags.string({ description: "the app's name (default: the directory's name)" }),
    'deploy-to': Flags.string({ description: 'absolute path of the app on the hosts (default: /srv/APP)' }),
    user: Flags.string({
      description:
        "the user deployer logs in as and Puma runs as (default: the first --host's user, else deploy)",
    }),
    port: Flags.integer({ description: "Puma's port on 127.0.0.1", default: 9292, min: 1, max: 65535 }),
    puma: Flags.boolean({ description: 'also write config/puma.rb' }),
    systemd: Flags.boolean({ description: 'also write config/systemd/APP-puma.service and APP-puma.socket' }),
    'github-actions': Flags.boolean({ description: 'also write .github/workflows/deploy.yml' }),
    all: Flags.boolean({ description: 'write everything: --puma --systemd --github-actions' }),
    action: Flags.string({
      description:
        "the deployer GitHub Action the workflow uses (owner/repo@ref); default: this deployer's repository at its version tag",
    }),
    force: Flags.boolean({ description: 'overwrite files that exist' }),
    'dry-run': Flags.boolean({ description: 'list the files that would be written and change nothing' }),
  }

  async run(): Promise<void> {
    const { flags } = await this.parse(Init)
    this.json = flags.json
    const parts = INIT_PARTS.filter((part) => flags.all || flags[part])
    if (flags.action !== undefined && !parts.includes('github-actions')) {
      throw new DeployerError('--action only applies to the workflow that --github-actions writes.', {
        exitCode: ExitCode.usage,
        hint: 'Add --github-actions (or --all), or leave out --action.',
      })
    }
    const dir = path.resolve(flags.dir ?? '.')
    const settings = resolveInitSettings({
      dirName: path.basename(dir),
      app: flags.app,
      deployTo: flags['deploy-to'],
      hosts: flags.host ?? [],
      user: flags.user,
      port: flags.port,
      action: flags.action ?? defaultActionRef(this.config.pjson),
      config: flags.config,
      parts,
    })
    const result = await runInit(settings, {
      readTemplate: templateReader(this.config.root),
      dir,
      force: flags.force,
      dryRun: flags['dry-run'],
    })
    await this.output({ ok: !result.error, ...result, error: result.error?.message }, () =>
      renderInit(result),
    )
    if (result.error) this.fail(result.error)
  }
}
