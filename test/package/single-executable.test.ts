import { execFile } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import { expect } from 'chai'
import { cliEnv } from '../support/cli.js'
import { buildSea, ROOT } from '../support/package.js'

const run = promisify(execFile)

describe('the single executable (Node SEA)', function () {
  this.timeout(300_000)
  let exe: string
  let dir: string
  let version: string
  before(async () => {
    exe = await buildSea()
    dir = await mkdtemp(join(tmpdir(), 'deployer-sea-test-'))
    version = (JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version
  })
  after(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('is one file that prints its version, with no warning', async () => {
    // Nothing of the package beside it: no package.json, no templates/, no node_modules.
    expect((await readdir(dirname(exe))).sort()).to.deep.equal([
      'deployer',
      'deployer.blob',
      'sea-config.json',
    ])
    const { stdout, stderr } = await run(exe, ['--version'], { cwd: dir, env: cliEnv() })
    expect(stdout).to.match(new RegExp(`^deployer-cli/${version.replace(/\./g, '\\.')} linux-x64 `))
    expect(stderr).to.equal('')
  })

  it('writes the templates it carries: init --all', async () => {
    const { stderr } = await run(exe, ['init', '--all', '--host', 'deploy@web1.example.com'], {
      cwd: dir,
      env: cliEnv(),
    })
    expect(stderr).to.equal('')
    const template = await readFile(join(ROOT, 'templates', 'puma.rb'), 'utf8')
    const written = await readFile(join(dir, 'config', 'puma.rb'), 'utf8')
    // The asset is the template, rendered: the same lines, every placeholder filled in.
    expect(written.split('\n')).to.have.length(template.split('\n').length)
    expect(template).to.contain('{{app}}')
    expect(written).to.not.contain('{{')
    const workflow = await readFile(join(dir, '.github', 'workflows', 'deploy.yml'), 'utf8')
    expect(workflow).to.contain(`uses: deployer-cli/deployer@v${version}`)
  })
})
