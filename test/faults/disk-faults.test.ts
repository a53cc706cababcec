import { appendFile, mkdir, readFile, rm, stat, statfs, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { expect } from 'chai'
import { ExitCode } from '../../src/errors.js'
import { parseJson, type ReleaseJson, runCli } from '../support/cli.js'
import { DEPLOY_USER } from '../support/fixture.js'
import { recordUnderLoad } from '../support/load.js'
import { canMount, mountTmpfs, unmount } from '../support/mount.js'
import { PUMA_TOKEN, stopPuma } from '../support/puma-app.js'
import { type ServedHost, startServedHost } from '../support/served-host.js'

const DISK_BYTES = 8 * 1024 * 1024
const MIB = 1024 * 1024

async function freeBytes(path: string): Promise<number> {
  const stats = await statfs(path)
  return stats.bavail * stats.bsize
}

/**
 * deploy_to on its own small tmpfs, so the upload can fill the disk while Puma serves from it. Skipped
 * (and recorded nowhere) where mounting is not allowed.
 */
describe('a disk that fills up during the upload, while Puma serves under load', function () {
  this.timeout(120_000)
  let host: ServedHost | undefined
  let mountPoint: string | undefined

  before(async function () {
    if (!(await canMount())) this.skip()
    host = await startServedHost({
      beforeFirstRelease: async (ws) => {
        await mountTmpfs(ws.deployTo, DEPLOY_USER, `size=${DISK_BYTES}`)
        mountPoint = ws.deployTo
      },
    })
  })
  afterEach(() => host?.cleanUp())
  after(async () => {
    // Puma runs from the tmpfs: stop it before unmounting, and unmount before removing the workspace.
    if (host) await stopPuma(host.ws)
    if (mountPoint) await unmount(mountPoint)
    await host?.stop()
  })

  it('fails the upload with a disk-space error, publishes nothing, and succeeds once space is freed', async () => {
    const served = host as ServedHost
    const deployTo = served.ws.deployTo
    // Someone else's file takes all but 1 MiB; the release brings 3 MiB of incompressible data.
    const filler = join(deployTo, 'filler.bin')
    await writeFile(filler, Buffer.alloc((await freeBytes(deployTo)) - MIB))
    await served.writeApp('v2')
    await served.writeAsset(3 * MIB)
    const load = await served.startLoad()

    const { result, json } = await served.release()
    // No exit code of its own in the contract: a failed step (1), now told as a full disk, not as a bug.
    expect(result.code, result.stderr).to.equal(ExitCode.failure)
    expect(json.error?.message).to.contain(
      `uploading release 2 failed (exit 2) because the disk holding ${deployTo} is full (No space left on device)`,
    )
    expect(json.error?.hint).to.contain(`df -h ${deployTo}`).and.contain('deployer prune')
    expect(await served.current()).to.equal('releases/1')
    expect(await served.releaseEntries(), 'no releases/2 and no .2.partial').to.deep.equal(['1'])
    expect(await served.lockHeld()).to.equal(false)
    expect(await served.servedReleases()).to.deep.equal(new Set(['1']))
    expect(await freeBytes(deployTo), 'the partial upload was removed').to.be.greaterThan(MIB / 2)

    await rm(filler)
    const next = await served.release()
    expect(next.result.code, next.result.stderr).to.equal(0)
    expect(next.json.release).to.equal(3)
    expect(await served.servedReleases()).to.deep.equal(new Set(['3']))
    await recordUnderLoad(load, {
      group: 'disk full',
      name: 'deploy_to fills up during the upload (8 MiB tmpfs, 1 MiB free, 3 MiB to upload)',
      expected:
        'the release fails with the disk error and a hint about space; current unchanged, partial removed, lock freed; next release succeeds once space is freed',
      observed: `exit ${result.code} ("${json.error?.message.split('\n')[0]}", hint "${json.error?.hint}"); current releases/1 serving it, releases/ holds only 1, lock free; after freeing space release 3 exit 0, serving 3`,
    })
  })
})

/** Pads `path` with blank lines (skipped when read) to a whole number of pages: the next append needs a new page. */
async function padToPage(path: string, page: number): Promise<void> {
  const { size } = await stat(path)
  const missing = (page - (size % page)) % page
  if (missing > 0) await appendFile(path, '\n'.repeat(missing))
}

/**
 * `.deployer` on a tmpfs of its own, filled at the publish failpoint: the release's files, the publish
 * and the flip all succeed (releases/ is on another disk), then every history append fails with
 * ENOSPC, as when another process fills the disk at that moment.
 */
describe('a disk that fills up while the history is appended after the flip, while Puma serves under load', function () {
  this.timeout(180_000)
  let host: ServedHost | undefined
  let meta: string | undefined
  let mounted = false

  before(async function () {
    if (!(await canMount())) this.skip()
    host = await startServedHost({
      beforeFirstRelease: async (ws) => {
        meta = join(ws.deployTo, '.deployer')
        await mkdir(meta)
        await mountTmpfs(meta, DEPLOY_USER, 'size=64k', 'deployer-history')
        mounted = true
      },
    })
  })
  afterEach(() => host?.cleanUp())
  after(async () => {
    if (host) await stopPuma(host.ws)
    if (mounted && meta) await unmount(meta)
    await host?.stop()
  })

  it('reports the new release live and restarted with a warning, and later commands read the host', async () => {
    const served = host as ServedHost
    const metaDir = meta as string
    const history = join(metaDir, 'history.jsonl')
    const filler = join(metaDir, 'filler.bin')
    await served.writeApp('v2')
    const load = await served.startLoad()
    const held = await served.holdRelease('publish')
    // Built and about to publish: now the disk holding the history fills up.
    const { bsize } = await statfs(metaDir)
    await padToPage(history, bsize)
    await writeFile(filler, Buffer.alloc((await statfs(metaDir)).bavail * bsize))
    expect((await statfs(metaDir)).bavail, 'the disk is full').to.equal(0)
    const before = await readFile(history, 'utf8')
    held.child.kill('SIGUSR2')
    const result = await held.result
    const json = parseJson<ReleaseJson>(result)

    expect(result.code, result.stderr).to.equal(0)
    const outcome = json.hosts[0]
    expect(outcome?.status).to.equal('released')
    expect(outcome?.release).to.equal(2)
    expect(outcome?.restart?.done, 'Puma was restarted and verified').to.not.equal(undefined)
    const warning = outcome?.warnings?.[0] ?? ''
    expect(warning).to.contain('could not be written').and.contain('No space left on device')
    expect(warning).to.contain('release 2').and.contain('restart 2')
    expect(warning).to.contain('What is live is as reported').and.contain(`df -h ${served.ws.deployTo}`)
    expect(result.stderr).to.contain('warning').and.contain('No space left on device')
    // The host: release 2 live and serving, the history as it was (no torn line), the lock free.
    expect(await served.current()).to.equal('releases/2')
    expect(await served.servedReleases()).to.deep.equal(new Set(['2']))
    expect(await readFile(history, 'utf8')).to.equal(before)
    expect(await served.lockHeld()).to.equal(false)
    // Later commands derive what is live from the host, not from the history that lacks release 2.
    expect(await served.releaseStates()).to.deep.equal([
      [1, 'previous'],
      [2, 'live'],
    ])
    await rm(filler)
    const rollback = await runCli(['rollback', '--json', '--config', served.ws.config], {
      env: { PUMA_TOKEN },
    })
    expect(rollback.code, rollback.stderr).to.equal(0)
    expect(await served.current()).to.equal('releases/1')
    expect(await served.servedReleases()).to.deep.equal(new Set(['1']))
    await served.writeApp('v3')
    const next = await served.release()
    expect(next.result.code, next.result.stderr).to.equal(0)
    expect(next.json.release).to.equal(3)
    expect(next.json.hosts[0]?.warnings).to.equal(undefined)
    expect(await served.servedReleases()).to.deep.equal(new Set(['3']))
    expect(await readFile(history, 'utf8')).to.contain('"event":"release","release":3')
    await recordUnderLoad(load, {
      group: 'disk full',
      name: 'the disk holding .deployer fills up right before the publish: every history append after the flip fails (ENOSPC)',
      expected:
        'exit 0 reporting release 2 live and Puma restarted, with a warning naming the missing events, the disk error and what to do; releases, rollback and the next release read the host',
      observed: `exit ${result.code}, host released 2 with ${outcome?.restart?.kind} restart done, warning "${warning.split('; it lacks')[0]?.replaceAll(served.ws.dir, '<tmp>')}…"; current releases/2 serving 2, history unchanged, lock free; releases --json: 1 previous, 2 live; after freeing space rollback exit 0 to 1 (serving 1), release 3 exit 0 serving 3`,
    })
  })
})
