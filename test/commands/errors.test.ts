import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect } from 'chai'
import { ExitCode } from '../../src/errors.js'
import { parseJson, runCli } from '../support/cli.js'

describe('command errors through the built binary', function () {
  this.timeout(30_000)
  let dir: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'deployer-cmd-'))
  })
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('reports every config problem with file:line and exits with the config code', async () => {
    const config = join(dir, 'deployer.yml')
    await writeFile(
      config,
      ['app: shop', 'deploy_to: /', 'keep_release: 3', 'hosts: [local]', 'strategy: fast', ''].join('\n'),
    )
    const result = await runCli(['release', '--config', config])
    expect(result.code).to.equal(ExitCode.config)
    expect(result.stderr).to.contain(`${config}:2:`)
    expect(result.stderr).to.contain('did you mean keep_releases')
    expect(result.stderr).to.contain(`${config}:5:`)
    expect(result.stderr).to.match(/Hint: /)
  })

  it('keeps secrets from the environment out of error messages, also under --json', async () => {
    const config = join(dir, 'deployer.yml')
    await writeFile(config, ['app: shop', 'deploy_to: ${DEPLOY_SECRET}', 'hosts: [local]', ''].join('\n'))
    const result = await runCli(['releases', '--config', config, '--json'], {
      env: { DEPLOY_SECRET: 'hunter2-relative' },
    })
    expect(result.code).to.equal(ExitCode.config)
    expect(result.stdout + result.stderr).to.not.contain('hunter2')
    expect(parseJson<{ ok: boolean; error: { exitCode: number } }>(result).error.exitCode).to.equal(
      ExitCode.config,
    )
  })

  it('names the missing config file and how to make one', async () => {
    const result = await runCli(['releases', '--config', join(dir, 'nope.yml')])
    expect(result.code).to.equal(ExitCode.config)
    expect(result.stderr).to.contain('nope.yml').and.contain('deployer init')
  })

  it('refuses an unknown --host, listing the known ones', async () => {
    const config = join(dir, 'deployer.yml')
    await writeFile(config, ['app: shop', `deploy_to: ${join(dir, 'srv')}`, 'hosts: [local]', ''].join('\n'))
    const result = await runCli(['releases', '--config', config, '--host', 'web9'])
    expect(result.code).to.equal(ExitCode.usage)
    expect(result.stderr).to.contain('web9').and.contain('local')
  })

  it('lists the commands in --help', async () => {
    const result = await runCli(['--help'])
    expect(result.code).to.equal(0)
    for (const command of ['release', 'rollback', 'prune', 'releases', 'unlock', 'init'])
      expect(result.stdout).to.contain(command)
  })
})
