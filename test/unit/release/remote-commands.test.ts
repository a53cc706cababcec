import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect } from 'chai'
import { layoutFor } from '../../../src/release/layout.js'
import * as remote from '../../../src/release/remote-commands.js'
import { LocalTransport } from '../../../src/transport/local.js'

/*
 * The builders run here through /bin/sh against a deploy_to whose name carries every character that
 * could break out of a shell word. Nothing may appear outside deploy_to, and the steps must still work.
 */
const hostileName = `shop $(touch PWNED) \`touch PWNED2\`; touch PWNED3 'q' "d" \n nl`

describe('remote command builders (run through /bin/sh)', () => {
  const local = new LocalTransport()
  let sandbox: string
  let deployTo: string

  beforeEach(async () => {
    sandbox = await mkdtemp(join(tmpdir(), 'deployer-cmd-'))
    deployTo = join(sandbox, hostileName)
  })
  afterEach(async () => {
    await rm(sandbox, { recursive: true, force: true })
  })

  async function run(command: string): Promise<string> {
    const result = await local.exec(command)
    expect(result.code, `${command}\n${result.stderr}`).to.equal(0)
    return result.stdout
  }

  it('prepares, links shared entries, publishes and flips with a hostile deploy_to', async () => {
    const layout = layoutFor(deployTo)
    await run(remote.prepareCommand(layout, 1))
    await writeFile(join(deployTo, 'releases', '.1.partial', '.env'), 'SECRET=1\n')
    await run(remote.linkSharedCommand(layout, 1, ['log', 'tmp/pids'], ['.env']))
    await run(remote.publishCommand(layout, 1))
    await run(remote.flipCommand(layout, 1))
    expect(await readlink(join(deployTo, 'current'))).to.equal('releases/1')
    expect(await readlink(join(deployTo, 'releases', '1', 'tmp', 'pids'))).to.equal(
      join(deployTo, 'shared', 'tmp', 'pids'),
    )
    // The release's .env seeded the missing shared copy.
    expect(await readFile(join(deployTo, 'shared', '.env'), 'utf8')).to.equal('SECRET=1\n')
    expect((await readdir(sandbox)).sort()).to.deep.equal([hostileName])
    expect(await readdir(process.cwd())).to.not.include('PWNED')
  })

  it('fails to link a shared file that exists nowhere, naming it', async () => {
    const layout = layoutFor(deployTo)
    await run(remote.prepareCommand(layout, 1))
    const result = await local.exec(remote.linkSharedCommand(layout, 1, [], ['config/master.key']))
    expect(result.code).to.equal(4)
    expect(result.stderr).to.contain('shared file').and.contain('config/master.key')
  })

  it('refuses to publish over an existing release', async () => {
    const layout = layoutFor(deployTo)
    await run(remote.prepareCommand(layout, 1))
    await mkdir(join(deployTo, 'releases', '1'))
    const result = await local.exec(remote.publishCommand(layout, 1))
    expect(result.code).to.equal(3)
    expect((await lstat(join(deployTo, 'releases', '.1.partial'))).isDirectory()).to.equal(true)
  })

  it('removes stale partial releases and records the sequence', async () => {
    const layout = layoutFor(deployTo)
    await run(remote.prepareCommand(layout, 1))
    const output = await run(remote.prepareCommand(layout, 2))
    expect(output).to.contain('.1.partial')
    expect(await readdir(join(deployTo, 'releases'))).to.deep.equal(['.2.partial'])
    expect((await readFile(layout.sequence, 'utf8')).trim()).to.equal('2')
  })

  it('never deletes the release current points at', async () => {
    const layout = layoutFor(deployTo)
    await run(remote.prepareCommand(layout, 1))
    await run(remote.publishCommand(layout, 1))
    await run(remote.flipCommand(layout, 1))
    const result = await local.exec(remote.removeReleasesCommand(layout, [1]))
    expect(result.code).to.equal(5)
    expect((await lstat(join(deployTo, 'releases', '1'))).isDirectory()).to.equal(true)
  })

  it('takes the lock once, reports the holder, and frees it only for its owner', async () => {
    const layout = layoutFor(deployTo)
    const owner = { user: 'a', machine: 'm', pid: 1, token: 'tok-1', command: 'release', startedAt: 't' }
    expect(await run(remote.acquireLockCommand(layout, owner))).to.equal('acquired\n')
    const second = await run(remote.acquireLockCommand(layout, { ...owner, token: 'tok-2' }))
    expect(second)
      .to.match(/^held\n/)
      .and.contain('tok-1')
    await run(remote.releaseLockCommand(layout, { ...owner, token: 'tok-2' }))
    expect((await lstat(layout.lock)).isDirectory()).to.equal(true)
    await run(remote.releaseLockCommand(layout, owner))
    expect(await lstat(layout.lock).catch(() => null)).to.equal(null)
  })

  it('reads the state with the lock only for the run that took it', async () => {
    const layout = layoutFor(deployTo)
    const owner = { user: 'a', machine: 'm', pid: 1, token: 'tok-1', command: 'release', startedAt: 't' }
    const mine = await run(remote.acquireLockAndInspectCommand(layout, owner, '--state--'))
    expect(mine).to.match(/^acquired\n--state--\nreal\t/)
    const other = await run(
      remote.acquireLockAndInspectCommand(layout, { ...owner, token: 'tok-2' }, '--state--'),
    )
    expect(other).to.match(/^held\n/)
    expect(other).to.not.contain('--state--')
  })

  it('refuses to build a delete outside deploy_to', () => {
    const layout = layoutFor('/srv/shop')
    expect(() => remote.guardedPath(layout, '/srv/other')).to.throw(/not inside deploy_to/)
    expect(() => remote.guardedPath(layout, '/srv/shop')).to.throw(/not inside deploy_to/)
  })

  it('keeps a history line with quotes and newlines as one line', async () => {
    const layout = layoutFor(deployTo)
    const by = { user: "o'brien", machine: 'm\nx', pid: 1 }
    await run(remote.appendHistoryCommand(layout, { event: 'prune', deleted: [1], time: 't', by }))
    const lines = (await readFile(layout.history, 'utf8')).trimEnd().split('\n')
    expect(lines).to.have.length(1)
    expect(JSON.parse(lines[0] ?? '').by).to.deep.equal(by)
  })
})
