import { expect } from 'chai'
import { ExitCode } from '../../src/errors.js'
import type { HostReleaseOutcome } from '../../src/fleet/release.js'
import {
  parseJson,
  type ReleaseJson,
  type RunningCli,
  releaseJson,
  runCli,
  startCli,
} from '../support/cli.js'
import { type FleetHost, startFleet, type TestFleet } from '../support/fleet.js'
import { combineLoads, type Load, recordUnderLoad, startLoad } from '../support/load.js'
import { answers, PUMA_TOKEN } from '../support/puma-app.js'
import { waitFor } from '../support/wait.js'

const ROLLING = ['--strategy', 'rolling', '--batch', '1']
const CONNECTION_LOST =
  /nothing is listening on 127\.0\.0\.1:\d+ \(connection refused\)|the connection to .* dropped while running/

/**
 * A host of a rolling release (batch 1) goes away while the run holds at a failpoint on it: its
 * sshd and every session of it are stopped, then the run goes on. Three hosts, each with a Puma that
 * serves under load throughout (web2's Puma too: only its SSH server goes away).
 */
describe('a host that goes away in the middle of a rolling fleet release', function () {
  this.timeout(180_000)
  let fleet: TestFleet
  let web1: FleetHost
  let web2: FleetHost
  let web3: FleetHost
  const running: RunningCli[] = []
  let load: Load | undefined

  const env = { PUMA_TOKEN }
  const release = (...args: string[]) => releaseJson(fleet.ws.config, args, env)
  const servedReleases = async (host: FleetHost) =>
    new Set((await answers(host.port, 10)).map((body) => /release=(\d+)/.exec(body)?.[1] ?? body))
  /** Load on every host's Puma, web2's included (only its SSH server goes away). */
  const startLoads = async () => {
    load = combineLoads(fleet.hosts.map((host) => startLoad(host.port)))
    await load.warmUp()
  }
  const recordFleetCase = (name: string, expected: string, observed: string) =>
    recordUnderLoad(load as Load, { group: 'host goes away mid-rollout', name, expected, observed })
  const byHost = (json: ReleaseJson) =>
    new Map<string, HostReleaseOutcome>(json.hosts.map((outcome) => [outcome.host, outcome]))
  /**
   * Under load, starts a rolling release held at `failpoint@web2`, runs `whileHeld` there, then takes
   * web2's SSH server away and lets the run go on to its end.
   */
  const web2GoesAwayAt = async (failpoint: string, whileHeld: () => Promise<void>) => {
    await startLoads()
    const cli = startCli(['release', '--json', '--config', fleet.ws.config, ...ROLLING], {
      env: { ...env, DEPLOYER_FAILPOINT: `${failpoint}@web2` },
    })
    running.push(cli)
    await waitFor(() => cli.stderrSoFar().includes(`failpoint ${failpoint} web2\n`), {
      what: `the release to reach ${failpoint} on web2`,
      timeoutMs: 60_000,
    })
    await whileHeld()
    await web2.sshd.shutDown()
    cli.child.kill('SIGUSR2')
    const result = await cli.result
    const json = parseJson<ReleaseJson>(result)
    return { result, json, hosts: byHost(json) }
  }

  before(async () => {
    fleet = await startFleet(3)
    ;[web1, web2, web3] = fleet.hosts as [FleetHost, FleetHost, FleetHost]
    const first = await release()
    expect(first.result.code, first.result.stderr).to.equal(0)
  })
  afterEach(async () => {
    for (const cli of running.splice(0)) if (cli.child.exitCode === null) cli.child.kill('SIGKILL')
    await load?.stop()
    load = undefined
    // A case that failed half way must not leave web2's SSH server down for the next one.
    await web2?.sshd.restart()
  })
  after(async () => {
    await fleet?.stop()
  })

  it('before web2 publishes: web2 fails (exit 4), web1 is rolled back, web3 skipped; the next release succeeds', async () => {
    await fleet.writeApp('v2')
    const { result, json, hosts } = await web2GoesAwayAt('publish', async () => {
      // web1's wave is live and verified before web2's starts.
      expect(await fleet.currentOf(web1)).to.equal('releases/2')
    })

    expect(result.code, result.stderr).to.equal(ExitCode.connection)
    expect(hosts.get('web1')?.status).to.equal('rolled-back')
    expect(hosts.get('web1')?.note).to.equal('rolled back to release 1 because web2 failed')
    expect(hosts.get('web2')?.status).to.equal('failed')
    // Refused when deployer reconnects; "dropped" when it sent the publish before it saw the drop.
    expect(hosts.get('web2')?.error?.message).to.match(CONNECTION_LOST)
    expect(hosts.get('web2')?.error?.exitCode).to.equal(ExitCode.connection)
    expect(hosts.get('web3')?.status).to.equal('skipped')
    expect(json.error?.message).to.match(/^Release 2 failed on web2: Host web2: /)
    expect(json.error?.message).to.contain('Rolled back: web1.\nNot started: web3.')
    // Every host is on release 1 and serves it; nothing of release 2 is live anywhere.
    for (const host of fleet.hosts) {
      expect(await fleet.currentOf(host), host.name).to.equal('releases/1')
      expect(await servedReleases(host), host.name).to.deep.equal(new Set(['1']))
    }
    expect(await fleet.releaseDirs(web3), 'web3 discarded its partial').to.deep.equal(['1'])
    expect(await fleet.lockHeld(web1)).to.equal(false)
    expect(await fleet.lockHeld(web3)).to.equal(false)
    // What web2 could not clean up while it was away: its partial release and its lock, reported.
    expect(await fleet.releaseDirs(web2)).to.deep.equal(['.2.partial', '1'])
    expect(await fleet.lockHeld(web2)).to.equal(true)
    expect(result.stderr).to.contain('could not release the lock').and.contain('deployer unlock --host web2')

    await web2.sshd.restart()
    const next = await release(...ROLLING)
    expect(next.result.code, next.result.stderr).to.equal(0)
    expect(next.result.stderr).to.match(/web2\s+warning: broke a stale lock/)
    expect(byHost(next.json).get('web2')?.removedStale).to.deep.equal([
      `${web2.deployTo}/releases/.2.partial`,
    ])
    for (const host of fleet.hosts) {
      expect(await fleet.currentOf(host), host.name).to.equal('releases/3')
      expect(await servedReleases(host), host.name).to.deep.equal(new Set(['3']))
      expect(await fleet.lockHeld(host), host.name).to.equal(false)
    }
    await recordFleetCase(
      'sshd of web2 stopped at publish@web2 (rolling, batch 1, 3 hosts)',
      'web2 fails with a connection error; web1 (live) rolled back; web3 skipped; every host on one release; locks of reachable hosts free; next release succeeds once web2 is back',
      `exit ${result.code}: web1 rolled-back, web2 failed (${hosts.get('web2')?.error?.message.split('\n')[0]}), web3 skipped; all current releases/1 and serving 1; web1/web3 locks free, web2 kept .2.partial and its lock (reported with unlock hint); after web2 came back the next release broke the stale lock, removed .2.partial, exit 0, all on 3`,
    )
  })

  it('after web2 flipped: exit 9 names web2 still on the new release; a release then stops (exit 10) until the hinted rollback', async () => {
    await fleet.writeApp('v4')
    const { result, json, hosts } = await web2GoesAwayAt('flip', async () => {
      expect(await fleet.currentOf(web2), 'web2 published and flipped').to.equal('releases/4')
    })

    expect(result.code, result.stderr).to.equal(ExitCode.partial)
    expect(hosts.get('web1')?.status).to.equal('rolled-back')
    expect(hosts.get('web2')?.status).to.equal('released')
    expect(hosts.get('web2')?.error?.message).to.match(CONNECTION_LOST)
    expect(hosts.get('web2')?.note).to.equal(
      'tried to roll back because web2 failed, but could not; still on release 4',
    )
    expect(hosts.get('web3')?.status).to.equal('skipped')
    expect(json.error?.message).to.contain('Still on release 4: web2.')
    expect(json.error?.hint).to.equal('Roll them back by hand with `deployer rollback --host web2`.')
    expect(result.stderr, 'no prune on the host that failed').to.not.contain('pruning old releases failed')
    expect(await fleet.currentOf(web1)).to.equal('releases/3')
    expect(await fleet.currentOf(web3)).to.equal('releases/3')
    expect(await fleet.releaseDirs(web3))
      .to.not.include('4')
      .and.not.include('.4.partial')
    // web2 was cut off before the restart: its current says 4, its Puma still serves 3.
    expect(await fleet.currentOf(web2)).to.equal('releases/4')
    for (const host of fleet.hosts)
      expect(await servedReleases(host), host.name).to.deep.equal(new Set(['3']))
    expect(await fleet.lockHeld(web1)).to.equal(false)
    expect(await fleet.lockHeld(web3)).to.equal(false)

    await web2.sshd.restart()
    const refused = await release(...ROLLING)
    expect(refused.result.code, refused.result.stderr).to.equal(ExitCode.disagreement)
    expect(refused.json.error?.message).to.contain('web2: current is 4, not 3')
    expect(refused.json.error?.hint).to.contain('deployer rollback --to N --host NAME')
    const rollback = await runCli(['rollback', '--config', fleet.ws.config, '--host', 'web2'], { env })
    expect(rollback.code, rollback.stderr).to.equal(0)
    expect(await fleet.currentOf(web2)).to.equal('releases/3')
    const next = await release(...ROLLING)
    expect(next.result.code, next.result.stderr).to.equal(0)
    for (const host of fleet.hosts) {
      expect(await fleet.currentOf(host), host.name).to.equal(`releases/${next.json.release}`)
      expect(await servedReleases(host), host.name).to.deep.equal(new Set([String(next.json.release)]))
      expect(await fleet.lockHeld(host), host.name).to.equal(false)
    }
    await recordFleetCase(
      'sshd of web2 stopped at flip@web2, after it published and flipped (rolling, batch 1, 3 hosts)',
      'web1 rolled back, web3 skipped; web2 unreachable so still on the new release: exit 9 naming it with the rollback command; the next release refuses (exit 10) until web2 is rolled back',
      `exit ${result.code}: web1 rolled-back, web2 released but unreachable (current releases/4, its Puma still serving 3), web3 skipped; hint "${json.error?.hint}"; with web2 back: release exit ${refused.result.code} ("web2: current is 4, not 3"), \`deployer rollback --host web2\` exit 0, then release ${next.json.release} exit 0 on all hosts`,
    )
  })
})
