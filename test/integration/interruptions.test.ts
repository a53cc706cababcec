import { chown, mkdir, readdir, readFile, readlink, rm, stat, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { expect } from 'chai'
import { ExitCode } from '../../src/errors.js'
import { type RunningCli, runCli, startCli } from '../support/cli.js'
import { DEPLOY_USER, listDir, userIds, type Workspace, writeApp, writeConfig } from '../support/fixture.js'
import { sessionProcesses, type TestSshd } from '../support/sshd.js'
import { useSshdWorkspace } from '../support/suite.js'
import { waitFor } from '../support/wait.js'

/** Large enough that its upload takes seconds, so the test can act while it is under way (sparse: no disk). */
const BIG_FILE_BYTES = 2 * 1024 * 1024 * 1024

describe('interrupted and concurrent releases over a real sshd', function () {
  this.timeout(180_000)
  let sshd: TestSshd
  let ws: Workspace
  const running: RunningCli[] = []

  const deployer = (...args: string[]) => runCli([...args, '--config', ws.config])
  const releasesDir = () => join(ws.deployTo, 'releases')

  /** Starts a release of a source with a big file and resolves once that file is arriving on the host. */
  async function startBigUpload(): Promise<RunningCli> {
    await truncate(join(ws.source, 'big.bin'), BIG_FILE_BYTES).catch(async () => {
      await writeFile(join(ws.source, 'big.bin'), '')
      await truncate(join(ws.source, 'big.bin'), BIG_FILE_BYTES)
    })
    const cli = startCli(['release', '--config', ws.config])
    running.push(cli)
    await waitFor(
      async () => {
        const partials = (await readdir(releasesDir()).catch(() => [])).filter((name) =>
          name.endsWith('.partial'),
        )
        const sizes = await Promise.all(
          partials.map((name) =>
            stat(join(releasesDir(), name, 'big.bin')).then(
              (s) => s.size,
              () => 0,
            ),
          ),
        )
        return sizes.some((size) => size > 1024 * 1024)
      },
      { what: 'the big file to start arriving on the host', timeoutMs: 60_000 },
    )
    expect(cli.stderrSoFar()).to.not.match(/upload\s+ok/)
    return cli
  }

  const setup = useSshdWorkspace({ install: 'true' })
  beforeEach(async () => {
    ;({ sshd, ws } = setup)
    const first = await deployer('release')
    expect(first.code, first.stderr).to.equal(0)
  })
  afterEach(async () => {
    for (const cli of running.splice(0)) if (cli.child.exitCode === null) cli.child.kill('SIGKILL')
  })

  it('Ctrl-C during the upload publishes nothing, cleans up and frees the lock', async () => {
    const cli = await startBigUpload()
    cli.child.kill('SIGINT')
    const result = await cli.result
    expect(result.code).to.equal(ExitCode.interrupted)
    expect(result.stderr).to.contain('Interrupted')
    expect(await listDir(releasesDir())).to.deep.equal(['1'])
    expect(await readlink(join(ws.deployTo, 'current'))).to.equal('releases/1')
    expect(await listDir(join(ws.deployTo, '.deployer'))).to.not.include('lock')

    await rm(join(ws.source, 'big.bin'))
    const next = await deployer('release')
    expect(next.code, next.stderr).to.equal(0)
    expect(await listDir(releasesDir())).to.deep.equal(['1', '3'])
  })

  it('a dropped connection during the upload publishes nothing; the next release succeeds', async () => {
    const cli = await startBigUpload()
    const sessions = await sessionProcesses(sshd)
    expect(sessions.length).to.be.greaterThan(0)
    for (const pid of sessions) process.kill(pid, 'SIGKILL')
    const result = await cli.result
    expect(result.code).to.equal(ExitCode.connection)
    expect(result.stderr).to.contain('Host it')
    expect((await listDir(releasesDir())).filter((name) => /^\d+$/.test(name))).to.deep.equal(['1'])
    expect(await readlink(join(ws.deployTo, 'current'))).to.equal('releases/1')

    await rm(join(ws.source, 'big.bin'))
    const next = await deployer('release')
    expect(next.code, next.stderr).to.equal(0)
    expect(await listDir(releasesDir())).to.deep.equal(['1', '3'])
  })

  it('a killed run leaves a stale lock that the next run on this machine breaks, with a warning', async () => {
    const cli = await startBigUpload()
    cli.child.kill('SIGKILL')
    await cli.result
    expect(await readlink(join(ws.deployTo, 'current'))).to.equal('releases/1')

    await rm(join(ws.source, 'big.bin'))
    const next = await deployer('release')
    expect(next.code, next.stderr).to.equal(0)
    expect(next.stderr).to.contain('broke a stale lock').and.contain('that process is no longer running')
    // The killed run's partial release is cleaned up and its number is not reused.
    expect(await listDir(releasesDir())).to.deep.equal(['1', '3'])
  })

  it('a lock taken on another machine is reported with how to break it; after unlock the release succeeds', async () => {
    const lock = join(ws.deployTo, '.deployer', 'lock')
    const { uid, gid } = await userIds(DEPLOY_USER)
    await mkdir(lock)
    const owner = {
      user: 'ci',
      machine: 'runner-7',
      pid: 4242,
      token: 'other',
      command: 'release',
      startedAt: new Date().toISOString(),
    }
    await writeFile(join(lock, 'owner.json'), `${JSON.stringify(owner)}\n`)
    await chown(lock, uid, gid)
    await chown(join(lock, 'owner.json'), uid, gid)

    const blocked = await deployer('release')
    expect(blocked.code).to.equal(ExitCode.locked)
    expect(blocked.stderr).to.contain('ci@runner-7 (pid 4242').and.contain('deployer unlock --host it')
    expect(await readlink(join(ws.deployTo, 'current'))).to.equal('releases/1')

    const unlock = await deployer('unlock', '--host', 'it')
    expect(unlock.code, unlock.stderr).to.equal(0)
    const next = await deployer('release')
    expect(next.code, next.stderr).to.equal(0)
  })

  it('two concurrent releases: the second fails clearly while the first holds the lock, and neither corrupts anything', async () => {
    const barrier = join(ws.dir, 'go')
    await writeConfig(ws, sshd, {
      install: `while [ ! -e '${barrier}' ]; do sleep 0.05; done; echo built > built.txt`,
    })
    await writeApp(ws.source, 'v2')
    const first = startCli(['release', '--config', ws.config])
    running.push(first)
    await waitFor(() => first.stderrSoFar().includes('link'), {
      what: 'the first release to reach its install step',
    })

    const second = await deployer('release')
    expect(second.code).to.equal(ExitCode.locked)
    expect(second.stderr, second.stderr).to.match(/is locked by .* \(pid \d+, deployer release(, [^)]+)?\)/)
    expect(second.stderr).to.contain('Wait for that run to finish')

    await writeFile(barrier, '')
    const firstResult = await first.result
    expect(firstResult.code, firstResult.stderr).to.equal(0)
    expect(await listDir(releasesDir())).to.deep.equal(['1', '2'])
    expect(await readlink(join(ws.deployTo, 'current'))).to.equal('releases/2')
    expect(await readFile(join(releasesDir(), '2', 'built.txt'), 'utf8')).to.equal('built\n')
    expect(await listDir(join(ws.deployTo, '.deployer'))).to.not.include('lock')
  })
})
