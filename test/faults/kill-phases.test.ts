import { randomBytes } from 'node:crypto'
import { appendFile, readdir, readFile, readlink, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { expect } from 'chai'
import type { FailpointName } from '../../src/fault/failpoint.js'
import { runCli, startCli } from '../support/cli.js'
import { DEPLOY_USER, makeWorkspace, type Workspace } from '../support/fixture.js'
import { startLoad } from '../support/load.js'
import { answers, PUMA_TOKEN, stopPuma, writePumaApp, writePumaConfig } from '../support/puma-app.js'
import { recordCase } from '../support/reliability.js'
import { findFreePort, startSshd, type TestSshd } from '../support/sshd.js'
import { waitFor } from '../support/wait.js'

const PHASES: FailpointName[] = ['lock', 'upload', 'install', 'publish', 'flip', 'restart', 'verify']
const SIGNALS = ['SIGKILL', 'SIGINT'] as const
/** From here on the new release is published and `current` points at it. */
const PUBLISHED_FROM = PHASES.indexOf('flip')

/**
 * The CLI killed (SIGKILL) or interrupted (SIGINT) at each phase of a release, while Puma serves a
 * steady load of new-connection requests. Every case checks what deployer promises: `current` on a
 * complete release that serves, nothing half-built published, the lock free (or, after SIGKILL, broken
 * by the next run on this machine), no request failed, and the next release succeeds.
 */
describe('killing or interrupting a release at each phase, with Puma under load', function () {
  this.timeout(120_000)
  let sshd: TestSshd
  let ws: Workspace
  let port: number
  let version = 1

  const current = () => readlink(join(ws.deployTo, 'current'))
  const published = async () =>
    (await readdir(join(ws.deployTo, 'releases')))
      .filter((name) => /^\d+$/.test(name))
      .map(Number)
      .sort((a, b) => a - b)
  const lockHeld = () =>
    stat(join(ws.deployTo, '.deployer', 'lock')).then(
      () => true,
      () => false,
    )
  const servedReleases = async () =>
    new Set((await answers(port, 12)).map((body) => Number(/release=(\d+)/.exec(body)?.[1])))
  /** A new version of the app, with a changed 2 MB file so the upload streams more than one chunk. */
  const nextVersion = async () => {
    version++
    await writePumaApp(ws, { port, version: `v${version}`, queueRequests: false })
    await writeFile(join(ws.source, 'assets.bin'), randomBytes(2 * 1024 * 1024))
  }
  const release = async (env: NodeJS.ProcessEnv = {}) => {
    const result = await runCli(['release', '--config', ws.config], { env: { PUMA_TOKEN, ...env } })
    expect(result.code, result.stderr).to.equal(0)
    return result
  }

  before(async () => {
    sshd = await startSshd({ user: DEPLOY_USER, createUser: true })
    ws = await makeWorkspace(DEPLOY_USER)
    port = await findFreePort()
    await writePumaApp(ws, { port, version: 'v1', queueRequests: false })
    await writePumaConfig(ws, sshd, { port })
    await appendFile(ws.config, 'install:\n  command: "true"\n')
    await release()
  })
  after(async () => {
    if (ws) await stopPuma(ws)
    await sshd?.stop()
  })

  for (const phase of PHASES) {
    for (const signal of SIGNALS) {
      it(`${signal} at ${phase}: current stays complete and serving, no request fails, the next release succeeds`, async () => {
        await nextVersion()
        const before = await current()
        const releasesBefore = await published()
        const load = startLoad(port)
        try {
          const cli = startCli(['release', '--config', ws.config], {
            env: { PUMA_TOKEN, DEPLOYER_FAILPOINT: phase },
          })
          await waitFor(() => cli.stderrSoFar().includes(`failpoint ${phase}`), {
            timeoutMs: 30_000,
            what: `the release to reach the ${phase} failpoint`,
          })
          cli.child.kill(signal)
          const result = await cli.result
          const newRelease = Math.max(...releasesBefore) + 1
          const reachedPublish = PHASES.indexOf(phase) >= PUBLISHED_FROM

          // After a SIGINT before the publish, the run cleans up and says so; later it finishes the host.
          if (signal === 'SIGINT') {
            expect(result.code, result.stderr).to.equal(reachedPublish ? 0 : 130)
            expect(await lockHeld(), 'lock freed').to.equal(false)
          } else {
            expect(result.signal).to.equal('SIGKILL')
          }
          const expectedCurrent = reachedPublish ? `releases/${newRelease}` : before
          expect(await current()).to.equal(expectedCurrent)
          // Nothing but the new release appears (a run that finished may also have pruned old ones).
          const after = await published()
          expect(after.includes(newRelease)).to.equal(reachedPublish)
          for (const number of after) expect([...releasesBefore, newRelease]).to.include(number)
          // What current points at is complete: its RELEASE file and manifest were written before it was.
          const live = join(ws.deployTo, expectedCurrent)
          expect((await readFile(join(live, 'RELEASE'), 'utf8')).trim()).to.match(/^\d+$/)
          await stat(join(live, '.deployer', 'manifest.json'))
          // Puma serves a published release: the old one, or the new one once it was signalled.
          for (const served of await servedReleases())
            expect([...releasesBefore, newRelease]).to.include(served)
          const stale = await lockHeld()

          const next = await release()
          if (signal === 'SIGKILL') expect(next.stderr.includes('broke a stale lock')).to.equal(stale)
          const newest = Math.max(...(await published()))
          expect(await current()).to.equal(`releases/${newest}`)
          await waitFor(async () => (await servedReleases()).size === 1, {
            timeoutMs: 30_000,
            what: 'every worker to serve one release',
          })
          expect([...(await servedReleases())]).to.deep.equal([newest])

          const counts = await load.stop()
          expect(counts.failed, counts.errors.join('; ')).to.equal(0)
          expect(counts.ok).to.be.greaterThan(0)
          await recordCase({
            kind: 'fault',
            group: 'CLI killed during a phase',
            name: `${signal} at ${phase}`,
            expected:
              'current on a complete release that serves; no partial release published; lock free or broken by the next run; next release succeeds; no failed request',
            observed: [
              signal === 'SIGINT' ? `exit ${result.code}` : 'killed',
              `current ${expectedCurrent === before ? 'unchanged' : `-> ${expectedCurrent}`}`,
              reachedPublish ? `release ${newRelease} published` : 'nothing published',
              stale ? 'stale lock broken by the next run' : 'lock free',
              `next release ${newest} live`,
              `${counts.ok} requests ok`,
            ].join(', '),
            failedRequests: counts.failed,
          })
        } finally {
          await load.stop()
        }
      })
    }
  }
})
