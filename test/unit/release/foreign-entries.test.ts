import { lstat, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect } from 'chai'
import { parseHistory } from '../../../src/release/history.js'
import { parseHostState } from '../../../src/release/host-state.js'
import { layoutFor } from '../../../src/release/layout.js'
import * as remote from '../../../src/release/remote-commands.js'
import { LocalTransport } from '../../../src/transport/local.js'

/** The inspect script and the history append, run through /bin/sh against real entries, fed to the parsers. */
describe('releases/ with entries deployer did not make (run through /bin/sh)', () => {
  const local = new LocalTransport()
  let deployTo: string

  beforeEach(async () => {
    deployTo = join(await mkdtemp(join(tmpdir(), 'deployer-foreign-')), 'app')
    await mkdir(join(deployTo, 'releases', '2'), { recursive: true })
    await mkdir(join(deployTo, 'releases', '.5.deleting'))
    await mkdir(join(deployTo, 'releases', '07'))
    await mkdir(join(deployTo, 'releases', 'tmp'))
    await writeFile(join(deployTo, 'releases', '7'), 'a file\n')
    await symlink('/etc', join(deployTo, 'releases', '8'))
    await symlink('2', join(deployTo, 'releases', '9'))
    await writeFile(join(deployTo, 'releases', '3~'), '')
    await writeFile(join(deployTo, 'releases', '.4.swp'), '')
  })
  afterEach(async () => {
    await rm(join(deployTo, '..'), { recursive: true, force: true })
  })

  it('counts only real directories named by a number and reports the rest with their type', async () => {
    const result = await local.exec(remote.inspectCommand(layoutFor(deployTo)))
    const state = parseHostState(result.stdout)
    expect(state.releases.map((release) => release.number)).to.deep.equal([2])
    expect(state.deleting).to.deep.equal([5])
    expect(state.unfinished).to.deep.equal([5])
    const foreign = Object.fromEntries(state.foreign.map((entry) => [entry.name, entry.type]))
    expect(foreign).to.deep.equal({
      '07': 'dir',
      tmp: 'dir',
      '7': 'file',
      '8': 'symlink',
      '9': 'symlink',
      '3~': 'file',
      '.4.swp': 'file',
    })
  })

  it('never points current at a symlink named like a release', async () => {
    const result = await local.exec(remote.flipCommand(layoutFor(deployTo), 9))
    expect(result.code).to.not.equal(0)
  })

  it('never deletes through a symlink named like a release', async () => {
    const output = await local.exec(remote.removeReleasesCommand(layoutFor(deployTo), [8, 9]))
    expect(output.code).to.equal(0)
    expect(output.stdout).to.equal('')
    expect((await lstat(join(deployTo, 'releases', '2'))).isDirectory()).to.equal(true)
    expect((await lstat(join(deployTo, 'releases', '8'))).isSymbolicLink()).to.equal(true)
    expect((await lstat(join(deployTo, 'releases', '9'))).isSymbolicLink()).to.equal(true)
  })

  it('starts a new line after a torn last history line, so the next event is kept', async () => {
    const layout = layoutFor(deployTo)
    await mkdir(layout.meta, { recursive: true })
    await writeFile(layout.history, '{"event":"release","release":1}\n{"event":"rele')
    const by = { user: 'u', machine: 'm', pid: 1 }
    const event = { event: 'prune' as const, deleted: [1], time: 't', by }
    expect((await local.exec(remote.appendHistoryCommand(layout, event))).code).to.equal(0)
    expect((await local.exec(remote.appendHistoryCommand(layout, event))).code).to.equal(0)
    const text = await readFile(layout.history, 'utf8')
    expect(text.split('\n')).to.have.length(5)
    expect(parseHistory(text).filter((entry) => entry.event === 'prune')).to.have.length(2)
  })
})
