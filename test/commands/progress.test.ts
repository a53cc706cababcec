import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { expect } from 'chai'
import { BIN, runCli } from '../support/cli.js'

const run = promisify(execFile)

/** How a release's progress looks on a terminal (a pty from `script`) and in a pipe. */
describe('release progress', function () {
  this.timeout(60_000)
  let dir: string
  let config: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'deployer-progress-'))
    await mkdir(join(dir, 'source'))
    await mkdir(join(dir, 'srv'))
    await writeFile(join(dir, 'source', 'config.ru'), 'run ->(env) { [200, {}, ["ok"]] }\n')
    config = join(dir, 'deployer.yml')
    await writeFile(
      config,
      [`app: progress`, `source: ${dir}/source`, `deploy_to: ${dir}/srv`, 'hosts: [local]', ''].join('\n'),
    )
  })
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('draws a listr2 task per host on a terminal, with the steps and their timings', async () => {
    const command = `stty cols 120 rows 40; ${process.execPath} ${BIN} release --config ${config}`
    // stdin closed: `script` would otherwise wait for it after the command ends.
    const { stdout } = await run('bash', ['-c', `script -qec "$0" /dev/null < /dev/null`, command], {
      env: { ...process.env, CI: '', TERM: 'xterm' },
      timeout: 30_000,
    })
    const text = stdout.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')
    expect(text).to.match(/✔ local {2}done in \d+(ms|\.\ds)/)
    expect(text).to.match(/› inspect \d+ms · prepare \d+ms · upload \d+ms · link \d+ms · publish \d+ms/)
    expect(text).to.contain('local: release 1 is live (was none)')
  })

  it('prints one plain line per finished step when stderr is not a terminal', async () => {
    const result = await runCli(['release', '--config', config])
    expect(result.code).to.equal(0)
    expect(result.stderr).to.match(/^local {2}upload {3}ok \d+ms {2}/m)
    expect(result.stderr).to.not.contain('✔')
    expect(result.stdout).to.contain('local: release 1 is live')
  })
})
