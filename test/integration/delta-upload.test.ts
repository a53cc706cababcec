import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import {
  chmod,
  lstat,
  mkdir,
  readdir,
  readFile,
  readlink,
  rm,
  symlink,
  truncate,
  unlink,
  writeFile,
} from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { expect } from 'chai'
import { ExitCode } from '../../src/errors.js'
import type { ReleaseResult } from '../../src/fleet/release.js'
import { type CliResult, parseJson, runCli, startCli } from '../support/cli.js'
import { listDir, snapshotTree, type Workspace, writeApp, writeConfig } from '../support/fixture.js'
import type { TestSshd } from '../support/sshd.js'
import { useSshdWorkspace } from '../support/suite.js'
import { waitFor } from '../support/wait.js'

const run = promisify(execFile)
type JsonResult = Omit<ReleaseResult, 'error'> & { ok: boolean }

/** path → type, permission bits and content hash or link target: what "the same tree" means. */
async function describeTree(root: string, ignore: (path: string) => boolean): Promise<Map<string, string>> {
  const entries = new Map<string, string>()
  async function walk(relative: string): Promise<void> {
    for (const name of (await readdir(join(root, relative))).sort()) {
      const path = relative ? `${relative}/${name}` : name
      if (ignore(path)) continue
      const absolute = join(root, path)
      const stat = await lstat(absolute)
      const mode = (stat.mode & 0o7777).toString(8)
      if (stat.isSymbolicLink()) entries.set(path, `link ${await readlink(absolute)}`)
      else if (stat.isDirectory()) {
        entries.set(path, `dir ${mode}`)
        await walk(path)
      } else
        entries.set(
          path,
          `file ${mode} ${createHash('sha256')
            .update(await readFile(absolute))
            .digest('hex')}`,
        )
    }
  }
  await walk('')
  return entries
}

const generated = (path: string) =>
  ['RELEASE', 'REVISION', '.deployer', '.installed'].includes(path.split('/')[0] ?? '')

describe('delta uploads and vendored dependency reuse over a real sshd', function () {
  this.timeout(180_000)
  let sshd: TestSshd
  let ws: Workspace

  const release = async (): Promise<{ result: CliResult; json: JsonResult }> => {
    const result = await runCli(['release', '--json', '--config', ws.config])
    return { result, json: parseJson<JsonResult>(result) }
  }
  const releaseOk = async () => {
    const outcome = await release()
    expect(outcome.result.code, outcome.result.stderr).to.equal(0)
    return outcome.json
  }
  const inode = async (path: string) => (await lstat(path)).ino

  const setup = useSshdWorkspace({ install: 'echo installed > .installed' })
  beforeEach(async () => {
    ;({ sshd, ws } = setup)
  })
  it('sends only what changed; release N+1 matches the source exactly and release N is byte- and inode-identical', async () => {
    await mkdir(join(ws.source, 'public', 'empty'), { recursive: true })
    await writeFile(join(ws.source, 'remove-me.txt'), 'going away\n')
    await writeFile(join(ws.source, 'becomes-link.txt'), 'a file today\n')
    await writeFile(join(ws.source, 'unchanged.txt'), 'same in both\n')
    await writeFile(join(ws.source, 'name\nwith newline.txt'), 'odd name\n')
    await releaseOk()
    const releaseOne = join(ws.deployTo, 'releases', '1')
    const before = await snapshotTree(releaseOne)

    await writeFile(join(ws.source, 'app', 'version.rb'), 'VERSION = "v2"\n')
    await writeFile(join(ws.source, 'added.txt'), 'new in release 2\n')
    await unlink(join(ws.source, 'remove-me.txt'))
    await chmod(join(ws.source, 'unchanged.txt'), 0o600)
    await writeFile(join(ws.source, 'same-content.txt'), 'same in both\n')
    await unlink(join(ws.source, 'becomes-link.txt'))
    await symlink('app/version.rb', join(ws.source, 'becomes-link.txt'))
    await chmod(join(ws.source, 'bin', 'start'), 0o700)
    const json = await releaseOk()

    const releaseTwo = join(ws.deployTo, 'releases', '2')
    const excluded = (path: string) => path === 'log' || path.startsWith('log/')
    expect(await describeTree(releaseTwo, generated)).to.deep.equal(await describeTree(ws.source, excluded))
    expect(await snapshotTree(releaseOne)).to.deep.equal(before)
    // Unchanged files are the previous release's inodes; changed ones are new inodes.
    expect(await inode(join(releaseTwo, 'config.ru'))).to.equal(await inode(join(releaseOne, 'config.ru')))
    expect(await inode(join(releaseTwo, 'name\nwith newline.txt'))).to.equal(
      await inode(join(releaseOne, 'name\nwith newline.txt')),
    )
    expect(await inode(join(releaseTwo, 'app', 'version.rb'))).to.not.equal(
      await inode(join(releaseOne, 'app', 'version.rb')),
    )
    expect(await inode(join(releaseTwo, 'unchanged.txt'))).to.not.equal(
      await inode(join(releaseOne, 'unchanged.txt')),
    )
    const upload = json.hosts[0]?.upload
    expect(upload?.from).to.equal(1)
    expect(upload?.linkedFiles).to.be.greaterThan(0)
    expect(upload?.sentBytes).to.be.lessThan(200)
  })

  it('refuses an install that rewrites a shared file in place, publishing nothing', async () => {
    await releaseOk()
    await writeConfig(ws, sshd, { install: 'echo appended >> bin/start' })
    await writeApp(ws.source, 'v2')
    const { result } = await release()
    expect(result.code).to.equal(ExitCode.install)
    expect(result.stderr).to.contain('rewrote files in place').and.contain('bin/start')
    expect(await listDir(join(ws.deployTo, 'releases'))).to.deep.equal(['1'])
    expect(await readlink(join(ws.deployTo, 'current'))).to.equal('releases/1')
  })

  it('an interrupted delta upload leaves no published release, and the next release succeeds', async () => {
    await releaseOk()
    await truncate(join(ws.source, 'big.bin'), 0).catch(() => writeFile(join(ws.source, 'big.bin'), ''))
    await truncate(join(ws.source, 'big.bin'), 2 * 1024 * 1024 * 1024)
    const cli = startCli(['release', '--config', ws.config])
    await waitFor(
      async () =>
        (await lstat(join(ws.deployTo, 'releases', '.2.partial', 'big.bin')).then(
          (s) => s.size,
          () => 0,
        )) >
        1024 * 1024,
      { what: 'the big file to arrive', timeoutMs: 60_000 },
    )
    cli.child.kill('SIGINT')
    const interrupted = await cli.result
    expect(interrupted.code).to.equal(ExitCode.interrupted)
    expect(await listDir(join(ws.deployTo, 'releases'))).to.deep.equal(['1'])
    await rm(join(ws.source, 'big.bin'))
    await writeApp(ws.source, 'v3')
    await releaseOk()
    expect(await listDir(join(ws.deployTo, 'releases'))).to.deep.equal(['1', '3'])
    expect(await readFile(join(ws.deployTo, 'releases', '3', 'app', 'version.rb'), 'utf8')).to.contain('v3')
  })

  describe('with Bundler and a vendored gem', () => {
    let gems: string
    const gemVersion = async (version: string) => {
      const out = join(gems, `shop_greeting-${version}.gem`)
      await run('gem', ['build', '--silent', 'shop_greeting.gemspec', '-o', out], {
        cwd: new URL('../../examples/fixture-gem', import.meta.url).pathname,
        env: { ...process.env, SHOP_GREETING_VERSION: version },
      })
      return out
    }
    const useGem = async (version: string) => {
      await rm(join(ws.source, 'vendor'), { recursive: true, force: true })
      await mkdir(join(ws.source, 'vendor', 'cache'), { recursive: true })
      await writeFile(
        join(ws.source, 'vendor', 'cache', `shop_greeting-${version}.gem`),
        await readFile(await gemVersion(version)),
      )
      await writeFile(
        join(ws.source, 'Gemfile'),
        `source "https://rubygems.org"\ngem "shop_greeting", "${version}"\n`,
      )
      await writeFile(
        join(ws.source, 'Gemfile.lock'),
        `GEM\n  remote: https://rubygems.org/\n  specs:\n    shop_greeting (${version})\n\nPLATFORMS\n  x86_64-linux\n\nDEPENDENCIES\n  shop_greeting (= ${version})\n\nBUNDLED WITH\n   2.3.15\n`,
      )
    }

    beforeEach(async () => {
      gems = join(ws.dir, 'gems')
      await mkdir(gems)
      const lines = (await readFile(ws.config, 'utf8'))
        .split('\n')
        .filter((line) => !line.startsWith('install:') && !line.startsWith('  command:'))
      lines.push(
        'install:',
        '  command: "bundle config set --local deployment true >/dev/null && bundle config set --local path vendor/bundle >/dev/null && bundle install --local --quiet"',
        '  lockfiles: [Gemfile.lock]',
        '  vendor: vendor/bundle',
      )
      await writeFile(ws.config, `${lines.join('\n')}\n`)
      await writeFile(
        ws.config,
        (await readFile(ws.config, 'utf8')).replace(
          'exclude: [.git, log, tmp]',
          'exclude: [.git, log, tmp, .bundle, vendor/bundle]',
        ),
      )
    })

    it('reuses vendor/bundle when the lockfile is unchanged, and on a lockfile change installs the new gem without touching the old release', async () => {
      await useGem('1.0.0')
      await releaseOk()
      const oldVendor = join(ws.deployTo, 'releases', '1', 'vendor', 'bundle')
      const before = await snapshotTree(oldVendor)

      await writeApp(ws.source, 'v2')
      const same = await releaseOk()
      expect(same.hosts[0]?.upload?.vendorReused).to.equal(true)
      const gem = 'ruby/3.1.0/gems/shop_greeting-1.0.0/lib/shop_greeting.rb'
      expect(await inode(join(ws.deployTo, 'releases', '2', 'vendor', 'bundle', gem))).to.equal(
        await inode(join(oldVendor, gem)),
      )

      await useGem('1.1.0')
      const changed = await releaseOk()
      expect(changed.hosts[0]?.upload?.vendorReused).to.equal(true)
      const installed = await readdir(
        join(ws.deployTo, 'releases', '3', 'vendor', 'bundle', 'ruby', '3.1.0', 'gems'),
      )
      expect(installed).to.include('shop_greeting-1.1.0')
      expect(await snapshotTree(oldVendor)).to.deep.equal(before)
    })

    it('runs install.check instead of the install while the lockfile is unchanged, and installs when it changes or the check fails', async () => {
      // Bundler's settings come from the environment here, so the check sees the same vendor/bundle.
      const bundler = 'BUNDLE_DEPLOYMENT=true BUNDLE_PATH=vendor/bundle'
      const log = '"$DEPLOYER_DEPLOY_TO/steps.log"'
      const withCommands = async (check: string) => {
        const lines = (await readFile(ws.config, 'utf8'))
          .split('\n')
          .filter((line) => !line.startsWith('  command:') && !line.startsWith('  check:'))
        const at = lines.indexOf('install:') + 1
        lines.splice(
          at,
          0,
          `  command: ${JSON.stringify(`${bundler} bundle install --local --quiet && echo install >> ${log}`)}`,
          `  check: ${JSON.stringify(check)}`,
        )
        await writeFile(ws.config, lines.join('\n'))
      }
      const steps = async () => (await readFile(join(ws.deployTo, 'steps.log'), 'utf8')).trim().split('\n')
      await withCommands(`${bundler} bundle check >/dev/null && echo check >> ${log}`)
      await useGem('1.0.0')
      const first = await releaseOk()
      expect(first.hosts[0]?.install).to.deep.equal({ ran: 'install', reason: 'no vendor dir to reuse' })

      await writeApp(ws.source, 'v2')
      const same = await releaseOk()
      expect(same.hosts[0]?.install).to.deep.equal({ ran: 'check', reason: 'lockfiles unchanged' })
      expect(await steps()).to.deep.equal(['install', 'check'])
      const gem = 'ruby/3.1.0/gems/shop_greeting-1.0.0/lib/shop_greeting.rb'
      expect(await inode(join(ws.deployTo, 'releases', '2', 'vendor', 'bundle', gem))).to.equal(
        await inode(join(ws.deployTo, 'releases', '1', 'vendor', 'bundle', gem)),
      )

      await useGem('1.1.0')
      const changed = await releaseOk()
      expect(changed.hosts[0]?.install).to.deep.equal({ ran: 'install', reason: 'Gemfile.lock changed' })

      await withCommands('exit 1')
      await writeApp(ws.source, 'v4')
      const failedCheck = await releaseOk()
      expect(failedCheck.hosts[0]?.install).to.deep.equal({ ran: 'install', reason: 'install.check failed' })
      expect(await steps()).to.deep.equal(['install', 'check', 'install', 'install'])
    })
  })
})
