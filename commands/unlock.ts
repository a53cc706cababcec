import { DeployerCommand } from '../src/cli/base-command.js'
import { breakLocks } from '../src/fleet/list.js'

export default class Unlock extends DeployerCommand {
  static override summary = 'break the deploy lock on the selected hosts, whoever holds it'
  static override description =
    'For a lock left by a run that was killed. Make sure no deployer run is still working on those hosts first: the lock is what keeps two runs apart.'
  static override examples = ['<%= config.bin %> unlock --host web1']

  async run(): Promise<void> {
    const { flags } = await this.parse(Unlock)
    const config = await this.loadDeployConfig(flags)
    const hosts = await breakLocks(config)
    await this.output({ ok: true, hosts }, () => hosts.map((host) => `${host}: lock removed`).join('\n'))
  }
}
