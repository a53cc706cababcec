import { mkdir, rm, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { expect } from 'chai'
import { ExitCode } from '../../src/errors.js'
import { type CliResult, parseJson, type ReleaseJson, releaseJson, runCli } from '../support/cli.js'
import {
  DEPLOY_USER,
  listDir,
  makeWorkspace,
  type Workspace,
  writeApp,
  writeConfig,
} from '../support/fixture.js'
import { recordUnderLoad } from '../support/load.js'
import { canMount, mountTmpfs, unmount } from '../support/mount.js'
import { recordCase } from '../support/reliability.js'
import { type ServedHost, startServedHost } from '../support/served-host.js'
import { startSshd, type TestSshd } from '../support/sshd.js'

const MIB = 1024 * 1024

/**
 * Inputs that go wrong on their way to the host: a source that overlaps deploy_to on host local, a
 * source file that changes during the upload, a host that runs out of inodes. Each is named as what it
 * is (never "looks like a bug"), and the host is checked afterwards.
 */
describe('a source that overlaps deploy_to on host local', function () {
  this.timeout(60_000)
  let ws: Workspace

  beforeEach(async () => {
    ws = await makeWorkspace('root')
    await writeApp(ws.source, 'v1')
  })
  afterEach(async () => {
    await rm(ws.dir, { recursive: true, force: true })
  })

  const releaseLocal = async (source: string, deployTo: string): Promise<CliResult> => {
    const yaml = [
      'app: itest',
      `source: ${JSON.stringify(source)}`,
      `deploy_to: ${JSON.stringify(deployTo)}`,
      'hosts: [local]',
      'install:',
      '  command: "true"',
    ]
    await writeFile(ws.config, `${yaml.join('\n')}\n`)
    return runCli(['release', '--json', '--config', ws.config])
  }

  it('refuses a source inside deploy_to, and a deploy_to inside the source, with exit 3 before any change', async () => {
    const inside = join(ws.deployTo, 'build')
    await mkdir(inside)
    await writeApp(inside, 'v1')
    const first = await releaseLocal(inside, ws.deployTo)
    expect(first.code, first.stderr).to.equal(ExitCode.config)
    const firstError = parseJson<ReleaseJson>(first).error
    expect(firstError?.message).to.equal(
      `Host local: the source ${inside} lies inside deploy_to ${ws.deployTo}: it would be released into itself, and prune could delete it.`,
    )
    expect(firstError?.hint).to.contain('directory of its own')
    expect(await listDir(ws.deployTo), 'nothing created in deploy_to').to.deep.equal(['build'])

    const nested = join(ws.source, 'deploy')
    const second = await releaseLocal(ws.source, nested)
    expect(second.code, second.stderr).to.equal(ExitCode.config)
    expect(parseJson<ReleaseJson>(second).error?.message).to.contain(`holds deploy_to ${nested}`)
    expect(await listDir(ws.source), 'no deploy_to created in the source').to.not.include('deploy')

    const apart = await releaseLocal(ws.source, ws.deployTo)
    expect(apart.code, apart.stderr).to.equal(0)
    await recordCase({
      kind: 'input',
      group: 'source tree',
      name: 'host local: source inside deploy_to, and deploy_to inside the source',
      expected: 'exit 3 naming both paths before any change; apart, the same release succeeds',
      observed: `exit ${first.code} ("${firstError?.message.replaceAll(ws.dir, '<tmp>')}") and exit ${second.code} ("… holds deploy_to …"); deploy_to and source unchanged; with the source apart exit ${apart.code}`,
    })
  })
})

describe('a source file that changes during the upload, while Puma serves under load', function () {
  this.timeout(180_000)
  let host: ServedHost

  before(async () => {
    host = await startServedHost()
  })
  afterEach(() => host?.cleanUp())
  after(() => host?.stop())

  it('fails naming the file, publishes nothing, and the next release succeeds', async () => {
    const asset = join(host.ws.source, 'public', 'asset.bin')
    await host.writeApp('v2')
    await host.writeAsset(8 * MIB)
    const load = await host.startLoad()
    const held = await host.holdRelease('upload')
    // Part of the archive is on its way: the big file is cut short, as a build still writing it would.
    await truncate(asset, 1000)
    held.child.kill('SIGUSR2')
    const result = await held.result
    const json = parseJson<ReleaseJson>(result)
    expect(result.code, result.stderr).to.equal(ExitCode.failure)
    expect(json.error?.message).to.contain(`The source file ${asset} changed while it was being uploaded`)
    expect(json.error?.hint).to.contain('finished build').and.not.contain('bug')
    expect(result.stderr).to.not.contain('looks like a bug')
    expect(await host.current()).to.equal('releases/1')
    expect(await host.releaseEntries(), 'no releases/2 and no .2.partial').to.deep.equal(['1'])
    expect(await host.lockHeld()).to.equal(false)
    expect(await host.servedReleases()).to.deep.equal(new Set(['1']))

    const next = await host.release()
    expect(next.result.code, next.result.stderr).to.equal(0)
    expect(await host.servedReleases()).to.deep.equal(new Set([String(next.json.release)]))
    await recordUnderLoad(load, {
      group: 'source tree',
      name: 'a source file (8 MiB) cut short while the upload streams it',
      expected:
        'exit 1 naming the file and saying to release a finished build; nothing published, lock freed; next release succeeds',
      observed: `exit ${result.code} ("${json.error?.message.replaceAll(host.ws.dir, '<tmp>')}"); current releases/1 serving 1, releases/ holds only 1, lock free; next release ${next.json.release} exit 0 serving it`,
    })
  })
})

describe('a host that runs out of inodes during the upload', function () {
  this.timeout(120_000)
  let sshd: TestSshd
  let ws: Workspace | undefined
  let mounted = false

  before(async function () {
    if (!(await canMount())) this.skip()
    sshd = await startSshd({ user: DEPLOY_USER, createUser: true })
  })
  after(async () => {
    if (mounted && ws) await unmount(ws.deployTo)
    if (ws) await rm(ws.dir, { recursive: true, force: true })
    await sshd?.stop()
  })

  it('says the inodes ran out (not that the disk is full), publishes nothing, and works once files are fewer', async () => {
    ws = await makeWorkspace(DEPLOY_USER)
    // 64 MiB of space but 100 inodes: release 1 fits, release 2 brings 200 small files.
    await mountTmpfs(ws.deployTo, DEPLOY_USER, 'size=64m,nr_inodes=100')
    mounted = true
    await writeApp(ws.source, 'v1')
    await writeConfig(ws, sshd, { install: 'true' })
    const first = await releaseJson(ws.config, [])
    expect(first.result.code, first.result.stderr).to.equal(0)

    const many = join(ws.source, 'many')
    await mkdir(many)
    for (let index = 0; index < 200; index++) await writeFile(join(many, `f${index}.txt`), `${index}\n`)
    const { result, json } = await releaseJson(ws.config, [])
    expect(result.code, result.stderr).to.equal(ExitCode.failure)
    expect(json.error?.message).to.contain(`because the disk holding ${ws.deployTo} has no free inodes left`)
    expect(json.error?.message).to.match(/No space left on device: \d+ of 100 inodes free/)
    expect(json.error?.hint).to.contain(`df -i ${ws.deployTo}`)
    expect(await listDir(join(ws.deployTo, 'releases')), 'the partial release was removed').to.deep.equal([
      '1',
    ])
    expect(await listDir(join(ws.deployTo, '.deployer')), 'lock freed').to.not.include('lock')

    await rm(many, { recursive: true })
    const next = await releaseJson(ws.config, [])
    expect(next.result.code, next.result.stderr).to.equal(0)
    expect(next.json.release).to.equal(3)
    await recordCase({
      kind: 'fault',
      group: 'disk full',
      name: 'deploy_to runs out of inodes during the upload (tmpfs with 64 MiB but 100 inodes, 200 new files)',
      expected:
        'the release fails saying the inodes ran out (not the space) with a `df -i` hint; nothing published, lock freed; next release succeeds with fewer files',
      observed: `exit ${result.code} ("${json.error?.message.split('\n')[0]?.replaceAll(ws.dir, '<tmp>')}"); releases/ holds only 1, lock free; without the 200 files release 3 exit 0`,
    })
  })
})
