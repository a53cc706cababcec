import { execFile } from 'node:child_process'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { expect } from 'chai'
import { cliEnv } from '../support/cli.js'
import { type InstalledPackage, installPackage, ROOT } from '../support/package.js'

const run = promisify(execFile)

describe('the npm package deployer-cli, packed and installed into an empty prefix', function () {
  this.timeout(180_000)
  let pkg: InstalledPackage
  let manifest: { name: string; version: string; dependencies?: object; bin: Record<string, string> }
  before(async () => {
    pkg = await installPackage()
    manifest = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8'))
  })

  it('holds the bundle, its launcher, the templates and the documents, and nothing else', async () => {
    const paths = pkg.files.map((file) => file.path).sort()
    const templates = (await readdir(join(ROOT, 'templates'), { recursive: true, withFileTypes: true }))
      .filter((entry) => entry.isFile())
      .map((entry) => join(entry.parentPath, entry.name).slice(ROOT.length))
    expect(paths).to.deep.equal(
      [
        'CHANGELOG.md',
        'LICENSE',
        'README.md',
        'bin/run.js',
        'dist/deployer.js',
        'package.json',
        ...templates,
      ].sort(),
    )
    expect(pkg.files.find((file) => file.path === 'bin/run.js')?.mode).to.equal(0o755)
  })

  it('has no dependencies to install: the bundle holds them', async () => {
    expect(manifest.dependencies ?? {}).to.deep.equal({})
    expect(await readdir(pkg.packageDir)).to.not.include('node_modules')
  })

  it("leaves out ssh2's native modules (and typescript): each is required only inside a try", async () => {
    // Every SSH integration test runs this bundle, and the action's tests a copy with no node_modules at
    // all: ssh2 falling back to Node's crypto is exercised there; this checks the fallback is reachable.
    const bundle = await readFile(join(pkg.packageDir, 'dist', 'deployer.js'), 'utf8')
    const stubs = [...bundle.matchAll(/var (require_\w+) = __commonJS\(\{\s*"left-out:([^"]+)"/g)]
    expect(stubs.map((match) => match[2]).sort()).to.deep.equal([
      './crypto/build/Release/sshcrypto.node',
      'cpu-features',
      'typescript',
    ])
    const lines = bundle.split('\n')
    for (const [, name] of stubs) {
      const calls = lines.flatMap((line, index) => (line.includes(`${name}()`) ? [index] : []))
      expect(calls, `${name} is called`).to.not.be.empty
      for (const index of calls) expect(lines[index - 1]?.trim(), `before ${lines[index]}`).to.equal('try {')
    }
  })

  it('installs the `deployer` command, which prints its version and its help', async () => {
    expect(manifest.name).to.equal('deployer-cli')
    expect(Object.keys(manifest.bin)).to.deep.equal(['deployer'])
    const version = await run(pkg.bin, ['--version'], { env: cliEnv() })
    expect(version.stdout).to.match(new RegExp(`^deployer-cli/${manifest.version.replace(/\./g, '\\.')} `))
    const help = await run(pkg.bin, ['--help'], { env: cliEnv() })
    for (const command of ['check', 'init', 'prune', 'release', 'releases', 'rollback', 'unlock'])
      expect(help.stdout).to.match(new RegExp(`^ {2}${command} `, 'm'))
  })

  it('reads its templates from the package: init writes every file', async () => {
    const dir = join(pkg.prefix, 'init-target')
    await run(pkg.bin, ['init', '--all', '--dir', dir, '--host', 'deploy@web1.example.com'], {
      env: cliEnv(),
    })
    const workflow = await readFile(join(dir, '.github', 'workflows', 'deploy.yml'), 'utf8')
    expect(workflow).to.contain(`uses: deployer-cli/deployer@v${manifest.version}`)
    expect(await readdir(join(dir, 'config', 'systemd'))).to.have.length(2)
  })
})
