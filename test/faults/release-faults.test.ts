import { expect } from 'chai'
import { ExitCode } from '../../src/errors.js'
import { recordUnderLoad } from '../support/load.js'
import { type ServedHost, startServedHost } from '../support/served-host.js'

/**
 * Releases that fail on the host itself (install, boot, health check) or collide with another run
 * (a concurrent release, the lock of a killed one), while Puma serves under load. The cases follow
 * each other on one host; each checks what it leaves behind and that the next release succeeds.
 */
describe('releases that fail on the host or collide over the lock, while Puma serves under load', function () {
  this.timeout(180_000)
  let host: ServedHost
  let version = 1
  const nextVersion = () => `v${++version}`
  const numberOf = (target: string) => target.replace('releases/', '')

  /** The host as a failed run must leave it: same current, serving it, same releases/ entries, lock free. */
  const expectUntouched = async (before: { current: string; entries: string[] }) => {
    expect(await host.current()).to.equal(before.current)
    expect(await host.servedReleases()).to.deep.equal(new Set([numberOf(before.current)]))
    expect(await host.lockHeld(), 'lock held').to.equal(false)
    return { current: before.current, entries: await host.releaseEntries() }
  }
  const snapshot = async () => ({ current: await host.current(), entries: await host.releaseEntries() })
  /** Releases the app as it is now and expects it to go live and serve. */
  const releaseServes = async () => {
    const next = await host.release()
    expect(next.result.code, next.result.stderr).to.equal(0)
    expect(await host.current()).to.equal(`releases/${next.json.release}`)
    expect(await host.servedReleases()).to.deep.equal(new Set([String(next.json.release)]))
    expect(await host.lockHeld(), 'lock held').to.equal(false)
    return next
  }

  before(async () => {
    host = await startServedHost()
  })
  afterEach(async () => {
    await host?.cleanUp()
    // A case that failed half way must not leave its broken config or app to the next one.
    await host?.configure()
  })
  after(async () => {
    await host?.stop()
  })

  it('a failing install publishes nothing (exit 7) and the old release keeps serving', async () => {
    const before = await snapshot()
    await host.configure({ install: 'echo "could not fetch gems" >&2; exit 3' })
    await host.writeApp(nextVersion())
    const load = await host.startLoad()
    const { result, json } = await host.release()
    expect(result.code, result.stderr).to.equal(ExitCode.install)
    expect(json.error?.message).to.contain('could not fetch gems')
    const failed = Number(/in release (\d+) failed/.exec(json.error?.message ?? '')?.[1])
    const after = await expectUntouched(before)
    expect(after.entries, 'no releases/N and no .N.partial').to.deep.equal(before.entries)

    await host.configure()
    const next = await releaseServes()
    expect(next.json.release, 'the failed run used a number').to.equal(failed + 1)
    await recordUnderLoad(load, {
      group: 'release fails on the host',
      name: 'install command fails',
      expected:
        'exit 7 with the install output; nothing published; old release serves; next release succeeds',
      observed: `exit ${result.code}, release ${failed} discarded; current ${after.current}, releases/ ${after.entries.join(' ')}, lock free; next release ${next.json.release} exit 0`,
    })
  })

  it('a release whose config.ru raises at boot is rolled back by itself (exit 8) without failing a request', async () => {
    const before = await snapshot()
    await host.writeApp(nextVersion(), { brokenBoot: true })
    const load = await host.startLoad()
    const { result, json } = await host.release()
    expect(result.code, result.stderr).to.equal(ExitCode.verify)
    expect(json.hosts[0]?.status).to.equal('rolled-back')
    expect(json.error?.message).to.contain('keeps failing to boot')
    // Puma 5.6 logs where the boot failed (the first backtrace line), which deployer shows.
    expect(json.error?.message).to.contain('config.ru:1')
    await expectUntouched(before)
    expect(await host.releaseStates()).to.deep.include([json.release, 'failed'])

    await host.writeApp(nextVersion())
    const next = await releaseServes()
    await recordUnderLoad(load, {
      group: 'release fails on the host',
      name: 'new release fails to boot (config.ru raises)',
      expected: 'exit 8, rolled back by itself, release marked failed; old release serves throughout',
      observed: `exit ${result.code}, host rolled-back, release ${json.release} failed; current ${before.current} serving it, lock free; next release ${next.json.release} exit 0`,
    })
  })

  it('a health check that never passes rolls the release back (exit 8)', async () => {
    const before = await snapshot()
    await host.configure({ healthExpect: 'text this app never serves', healthTimeout: '2s' })
    await host.writeApp(nextVersion())
    const load = await host.startLoad()
    const { result, json } = await host.release()
    expect(result.code, result.stderr).to.equal(ExitCode.verify)
    expect(json.hosts[0]?.status, result.stderr).to.equal('rolled-back')
    expect(json.error?.message).to.contain('the health check of').and.contain('text this app never serves')
    // The release gone back to never passes either: deployer says so, and suspects the check.
    expect(json.error?.message).to.contain(
      `Release ${numberOf(before.current)}, serving again since the rollback, fails the same health check`,
    )
    expect(json.error?.hint).to.contain('Both releases fail the health check')
    await expectUntouched(before)
    expect(await host.releaseStates()).to.deep.include([json.release, 'failed'])

    await host.configure()
    const next = await releaseServes()
    await recordUnderLoad(load, {
      group: 'release fails on the host',
      name: 'health check never passes (health.expect never served, 2 s timeout)',
      expected:
        'exit 8, rolled back, release marked failed; old release serves; no failed request; the error says the old release fails the check too',
      observed: `exit ${result.code}, host rolled-back, release ${json.release} failed, error says release ${numberOf(before.current)} fails the same check; current ${before.current} serving it, lock free; next release ${next.json.release} exit 0`,
    })
  })

  it('a second release while the first holds the lock exits 6 naming the holder; the first succeeds', async () => {
    const before = await snapshot()
    await host.writeApp(nextVersion())
    const load = await host.startLoad()
    const first = await host.holdRelease('install')
    const second = await host.release()
    expect(second.result.code, second.result.stderr).to.equal(ExitCode.locked)
    // In CI the owner also names the CI run: "(pid N, deployer release, GitHub Actions run 7)".
    expect(second.json.error?.message).to.contain(`(pid ${first.child.pid}, deployer release`)
    expect(second.json.error?.hint).to.contain('Wait for that run to finish')
    expect(await host.lockHeld(), 'the first run still holds its lock').to.equal(true)
    expect(await host.current()).to.equal(before.current)

    first.child.kill('SIGUSR2')
    const firstResult = await first.result
    expect(firstResult.code, firstResult.stderr).to.equal(0)
    const released = JSON.parse(firstResult.stdout) as { release: number }
    expect(await host.current()).to.equal(`releases/${released.release}`)
    expect(await host.servedReleases()).to.deep.equal(new Set([String(released.release)]))
    expect(await host.lockHeld()).to.equal(false)
    await recordUnderLoad(load, {
      group: 'lock',
      name: 'two concurrent releases (the first held at install)',
      expected: 'the second exits 6 naming the holder and changes nothing; the first succeeds',
      observed: `second exit ${second.result.code} ("${second.json.error?.message}"); first exit ${firstResult.code}, current releases/${released.release} serving it, lock free`,
    })
  })

  it('the lock of a SIGKILLed run is broken by the next run on this machine, with a warning', async () => {
    const before = await snapshot()
    await host.writeApp(nextVersion())
    const load = await host.startLoad()
    const killed = await host.holdRelease('install')
    killed.child.kill('SIGKILL')
    await killed.result
    expect(await host.lockHeld(), 'the killed run left its lock').to.equal(true)
    const partials = (await host.releaseEntries()).filter((name) => /^\.\d+\.partial$/.test(name))
    expect(partials, 'the killed run left its partial release').to.have.length(1)
    expect(await host.current()).to.equal(before.current)

    const next = await releaseServes()
    expect(next.result.stderr)
      .to.contain('broke a stale lock')
      .and.contain('that process is no longer running')
    expect(next.json.hosts[0]?.removedStale.map((path) => path.split('/').at(-1))).to.deep.equal(partials)
    expect(await host.releaseEntries()).to.not.include(partials[0])
    await recordUnderLoad(load, {
      group: 'lock',
      name: 'stale lock left by a SIGKILLed release',
      expected:
        'the next run breaks it with a warning, removes the partial release and succeeds; current unchanged meanwhile',
      observed: `killed run left the lock and ${partials[0]}; next run warned "broke a stale lock", removed ${partials[0]}, exit 0, current releases/${next.json.release} serving it, lock free`,
    })
  })
})
