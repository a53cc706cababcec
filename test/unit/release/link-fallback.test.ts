import { spawn } from 'node:child_process'
import { chmod, chown, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect } from 'chai'
import { layoutFor } from '../../../src/release/layout.js'
import * as remote from '../../../src/release/remote-commands.js'

const NOBODY = 65534

/** Runs a builder's script as `nobody` (another user than the owner of the files it links). */
function runAsNobody(
  script: string,
  input = '',
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('setpriv', [
      `--reuid=${NOBODY}`,
      `--regid=${NOBODY}`,
      '--clear-groups',
      '/bin/sh',
      '-c',
      script,
    ])
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk
    })
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk
    })
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
    child.stdin.end(input)
  })
}

async function protectedHardlinks(): Promise<boolean> {
  const value = await readFile('/proc/sys/fs/protected_hardlinks', 'utf8').catch(() => '0')
  return value.trim() === '1' && process.getuid?.() === 0
}

/**
 * Team deploys: release 1 belongs to root here, the next release is built by `nobody`. With
 * fs.protected_hardlinks=1 the kernel refuses nobody's links to root's files; the reuse copies them.
 */
describe('reusing files of another user’s release (fs.protected_hardlinks=1)', () => {
  let sandbox: string
  let layout: ReturnType<typeof layoutFor>

  beforeEach(async function () {
    if (!(await protectedHardlinks())) this.skip()
    sandbox = await mkdtemp(join(tmpdir(), 'deployer-links-'))
    await chmod(sandbox, 0o755)
    const deployTo = join(sandbox, 'shop')
    layout = layoutFor(deployTo)
    await mkdir(join(deployTo, 'releases', '1', 'app'), { recursive: true })
    await mkdir(join(deployTo, 'releases', '1', 'vendor', 'bundle'), { recursive: true })
    await writeFile(join(deployTo, 'releases', '1', 'app', 'a.rb'), 'A\n')
    await writeFile(join(deployTo, 'releases', '1', 'config.ru'), 'run\n')
    await writeFile(join(deployTo, 'releases', '1', 'vendor', 'bundle', 'gem.rb'), 'gem\n')
    const partial = join(deployTo, 'releases', '.2.partial')
    await mkdir(partial)
    await chown(partial, NOBODY, NOBODY)
  })
  afterEach(async () => {
    if (sandbox) await rm(sandbox, { recursive: true, force: true })
  })

  it('copies the files whose links are refused and says how many', async () => {
    const result = await runAsNobody(remote.linkFromCommand(layout, 1, 2), 'app/a.rb\0config.ru\0')
    expect(result.code, result.stderr).to.equal(0)
    expect(result.stdout).to.equal(`${remote.LINKS_COPIED}\t2\n`)
    const copy = join(layout.releases, '.2.partial', 'app', 'a.rb')
    expect(await readFile(copy, 'utf8')).to.equal('A\n')
    expect((await stat(copy)).ino).to.not.equal((await stat(join(layout.releases, '1', 'app', 'a.rb'))).ino)
    expect((await stat(copy)).uid, 'nobody’s own copy').to.equal(NOBODY)
  })

  it('still fails, with cp’s words, for another reason (a file that is gone)', async () => {
    const result = await runAsNobody(remote.linkFromCommand(layout, 1, 2), 'app/missing.rb\0')
    expect(result.code).to.equal(1)
    expect(result.stderr).to.contain('missing.rb')
  })

  it('seeds vendor by copying when linking is refused', async () => {
    const result = await runAsNobody(remote.seedVendorCommand(layout, 1, 2, 'vendor/bundle'))
    expect(result.code, result.stderr).to.equal(0)
    expect(result.stdout).to.contain('seeded').and.contain(remote.LINKS_COPIED)
    expect(
      await readFile(join(layout.releases, '.2.partial', 'vendor', 'bundle', 'gem.rb'), 'utf8'),
    ).to.equal('gem\n')
  })
})
