import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect } from 'chai'
import { loadConfig } from '../../src/config/load.js'
import { ExitCode } from '../../src/errors.js'
import { parseJson, runCli } from '../support/cli.js'

const ALL_FILES = [
  '.github/workflows/deploy.yml',
  'config/puma.rb',
  'config/systemd/shop-puma.service',
  'config/systemd/shop-puma.socket',
  'deployer.yml',
]

/** Every file below `dir`, relative and sorted. */
async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true })
  return entries
    .filter((entry) => !entry.isDirectory())
    .map((entry) => join(entry.parentPath, entry.name).slice(dir.length + 1))
    .sort()
}

describe('deployer init', function () {
  this.timeout(30_000)
  let dir: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'deployer-init-'))
  })
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('writes a deployer.yml the loader accepts, and prints the next steps', async () => {
    const result = await runCli(
      ['init', '--app', 'shop', '--deploy-to', '/srv/shop', '--host', 'deploy@web1', '--host', 'web2:2222'],
      { cwd: dir },
    )
    expect(result.code, result.stderr).to.equal(0)
    expect(await listFiles(dir)).to.deep.equal(['deployer.yml'])
    const config = await loadConfig('deployer.yml', {
      cwd: dir,
      env: { PUMA_CONTROL_TOKEN: 't', USER: 'me' },
    })
    expect(config.app).to.equal('shop')
    expect(config.deployTo).to.equal('/srv/shop')
    expect(config.hosts.map((host) => [host.user, host.hostname, host.port])).to.deep.equal([
      ['deploy', 'web1', 22],
      ['deploy', 'web2', 2222],
    ])
    expect(result.stdout).to.contain('created  deployer.yml')
    expect(result.stdout).to.match(/Next steps:\n/)
    expect(result.stdout).to.contain('Run deployer check').and.contain('Run deployer release')
  })

  it('writes every file with --all, into --dir, named after the app', async () => {
    const result = await runCli(['init', '--all', '--app', 'shop', '--dir', dir])
    expect(result.code, result.stderr).to.equal(0)
    expect(await listFiles(dir)).to.deep.equal(ALL_FILES)
    const unit = await readFile(join(dir, 'config/systemd/shop-puma.service'), 'utf8')
    expect(unit).to.contain('WorkingDirectory=/srv/shop/current').and.contain('User=deploy')
  })

  it('writes a config that `release --dry-run` plans a release from', async () => {
    // Beside the app, not inside it: a source that holds deploy_to is refused (every release would upload the ones before it).
    const deployTo = `${dir}-srv`
    await writeFile(join(dir, 'config.ru'), 'run ->(env) { [200, {}, ["ok"]] }\n')
    const init = await runCli(
      ['init', '--puma', '--app', 'shop', '--host', 'local', '--deploy-to', deployTo],
      {
        cwd: dir,
      },
    )
    expect(init.code, init.stderr).to.equal(0)
    const plan = await runCli(['release', '--dry-run'], { cwd: dir, env: { PUMA_CONTROL_TOKEN: 't' } })
    expect(plan.code, plan.stderr).to.equal(0)
    expect(plan.stdout)
      .to.contain(`Plan: release 1 of shop`)
      .and.contain(`local (${deployTo}): current none -> 1`)
    expect(plan.stdout).to.contain('link shared: log, tmp/pids, tmp/sockets')
    const created = await stat(deployTo).then(
      () => true,
      () => false,
    )
    expect(created, 'a dry run creates nothing on the host').to.equal(false)
  })

  it('refuses to overwrite without --force, names the files and writes nothing', async () => {
    await writeFile(join(dir, 'deployer.yml'), 'mine\n')
    await mkdir(join(dir, 'config'))
    await symlink('elsewhere.rb', join(dir, 'config/puma.rb'))
    const result = await runCli(['init', '--all', '--app', 'shop'], { cwd: dir })
    expect(result.code).to.equal(ExitCode.usage)
    expect(result.stderr).to.contain(
      `Error: deployer init would overwrite 2 files that exist in ${dir}: deployer.yml, config/puma.rb. Nothing was written.`,
    )
    expect(result.stderr).to.match(/Hint: Pass --force/)
    expect(await readFile(join(dir, 'deployer.yml'), 'utf8')).to.equal('mine\n')
    expect(await listFiles(dir)).to.deep.equal(['config/puma.rb', 'deployer.yml'])
    expect(result.stdout).to.contain('exists, refused without --force  deployer.yml')
    expect(result.stdout).to.not.contain('Next steps')
  })

  it('overwrites with --force, replacing a symlink rather than writing through it', async () => {
    await writeFile(join(dir, 'deployer.yml'), 'mine\n')
    await mkdir(join(dir, 'config'))
    await writeFile(join(dir, 'target.rb'), 'untouched\n')
    await symlink('../target.rb', join(dir, 'config/puma.rb'))
    const result = await runCli(['init', '--puma', '--force', '--app', 'shop'], { cwd: dir })
    expect(result.code, result.stderr).to.equal(0)
    expect(result.stdout)
      .to.match(/overwrote +deployer\.yml/)
      .and.match(/overwrote +config\/puma\.rb/)
    expect(await readFile(join(dir, 'deployer.yml'), 'utf8')).to.contain('app: "shop"')
    expect(await readFile(join(dir, 'config/puma.rb'), 'utf8')).to.contain('directory "#{deploy_to}/current"')
    expect(await readFile(join(dir, 'target.rb'), 'utf8')).to.equal('untouched\n')
    expect(await listFiles(dir)).to.deep.equal(['config/puma.rb', 'deployer.yml', 'target.rb'])
  })

  it('lists what it would write under --dry-run and writes nothing', async () => {
    await writeFile(join(dir, 'deployer.yml'), 'mine\n')
    const force = await runCli(['init', '--puma', '--dry-run', '--force'], { cwd: dir })
    expect(force.code, force.stderr).to.equal(0)
    expect(force.stdout).to.contain('dry run: nothing was changed')
    expect(force.stdout)
      .to.match(/overwrite +deployer\.yml/)
      .and.match(/create +config\/puma\.rb/)
    const refused = await runCli(['init', '--puma', '--dry-run'], { cwd: dir })
    expect(refused.code).to.equal(ExitCode.usage)
    expect(refused.stderr).to.contain('deployer.yml')
    expect(await listFiles(dir)).to.deep.equal(['deployer.yml'])
    expect(await readFile(join(dir, 'deployer.yml'), 'utf8')).to.equal('mine\n')
  })

  it('reports files, settings and next steps under --json, and refusals with their exit code', async () => {
    const result = await runCli(['init', '--systemd', '--app', 'shop', '--json', '--port', '3000'], {
      cwd: dir,
    })
    expect(result.code, result.stderr).to.equal(0)
    const report = parseJson<{
      ok: boolean
      written: boolean
      files: { path: string; status: string }[]
      settings: { port: number }
      nextSteps: string[]
    }>(result)
    expect(report.ok).to.equal(true)
    expect(report.written).to.equal(true)
    expect(report.files.map((file) => [file.path, file.status])).to.deep.equal([
      ['deployer.yml', 'create'],
      ['config/systemd/shop-puma.service', 'create'],
      ['config/systemd/shop-puma.socket', 'create'],
    ])
    expect(report.settings.port).to.equal(3000)
    expect(report.nextSteps.at(-1)).to.equal('Run deployer release for the first release.')

    const again = await runCli(['init', '--json'], { cwd: dir })
    expect(again.code).to.equal(ExitCode.usage)
    const refused = parseJson<{ ok: boolean; written: boolean; files: { status: string }[] }>(again)
    expect(refused.ok).to.equal(false)
    expect(refused.written).to.equal(false)
    expect(refused.files.map((file) => file.status)).to.deep.equal(['refuse'])
  })

  it('rejects bad values all at once, with the usage code, writing nothing', async () => {
    const result = await runCli(
      ['init', '--app', 'my shop', '--deploy-to', 'srv/shop', '--host', 'web1:http', '--puma'],
      { cwd: dir },
    )
    expect(result.code).to.equal(ExitCode.usage)
    expect(result.stderr).to.contain('--app "my shop"')
    expect(result.stderr).to.contain('--deploy-to "srv/shop" must be an absolute path.')
    expect(result.stderr).to.contain('--host "web1:http" has a port that is not a number.')
    expect(await listFiles(dir)).to.deep.equal([])
  })

  it('refuses --action without the workflow', async () => {
    const result = await runCli(['init', '--action', 'acme/deployer@v1'], { cwd: dir })
    expect(result.code).to.equal(ExitCode.usage)
    expect(result.stderr).to.contain('--action only applies')
    expect(await listFiles(dir)).to.deep.equal([])
  })

  it('writes deployer.yml where --config says, and names it in the workflow and next steps', async () => {
    const result = await runCli(
      ['init', '--github-actions', '--config', 'deploy/production.yml', '--action', 'acme/deployer@v1'],
      { cwd: dir },
    )
    expect(result.code, result.stderr).to.equal(0)
    expect(await listFiles(dir)).to.deep.equal(['.github/workflows/deploy.yml', 'deploy/production.yml'])
    const workflow = await readFile(join(dir, '.github/workflows/deploy.yml'), 'utf8')
    expect(workflow).to.contain('uses: acme/deployer@v1').and.contain('config: deploy/production.yml')
    expect(result.stdout).to.contain('deployer check --config deploy/production.yml')
  })
})
