import { checkExitCode } from '../src/check/findings.js'
import { runCheck } from '../src/check/run-check.js'
import { DeployerCommand } from '../src/cli/base-command.js'
import { DeployerError, ExitCode } from '../src/errors.js'
import { renderCheck } from '../src/ui/check-report.js'

export default class Check extends DeployerCommand {
  static override summary = 'check that every host can take a release, changing nothing on them'
  static override description =
    'Connects to every host and reports SSH and the host key, whether deploy_to is writable, free disk and inodes against the release size, the tools a release runs, and Puma: whether it runs, and which of its settings defeat a zero-downtime restart. Each finding is ok, info, warning or blocking; exits non-zero when a host is unreachable or has a blocking finding.'
  static override examples = [
    '<%= config.bin %> check',
    '<%= config.bin %> check --host web1 --host web2',
    '<%= config.bin %> check --config deploy/production.yml --json',
  ]

  async run(): Promise<void> {
    const { flags } = await this.parse(Check)
    const config = await this.loadDeployConfig(flags)
    const result = await runCheck(config, { reporter: this.reporterFor(config) })
    await this.output(result, () => renderCheck(result))
    const exitCode = checkExitCode(result.hosts)
    if (exitCode === ExitCode.ok) return
    const failing = result.hosts.filter((host) => !host.reachable || host.status === 'blocking')
    this.fail(
      new DeployerError(
        `${failing.length} of ${result.hosts.length} hosts cannot take a release: ${failing.map((host) => host.host).join(', ')}.`,
        { exitCode, hint: 'Fix the findings marked BLOCKING above (each has a hint), then run check again.' },
      ),
    )
  }
}
