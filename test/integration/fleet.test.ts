import { rename, symlink } from 'node:fs/promises'
import { join } from 'node:path'
import { expect } from 'chai'
import { ExitCode } from '../../src/errors.js'
import { releaseJson } from '../support/cli.js'
import { type FleetHost, startFleet, type TestFleet } from '../support/fleet.js'
import { answers, PUMA_TOKEN } from '../support/puma-app.js'

const FLEET_SIZE = 5

/**
 * A fleet of five hosts on this machine: five sshd instances on their own ports, each host with its
 * own deploy_to and its own Puma (cluster, two workers). The cases build on each other in order, as a
 * fleet's life does: first release, parallel, rolling, canary, a host that disagrees, a failing host.
 */
describe('fleet releases over five sshd instances with a Puma each', function () {
  this.timeout(300_000)
  let fleet: TestFleet
  let hosts: FleetHost[]

  const release = (...args: string[]) => releaseJson(fleet.ws.config, args, { PUMA_TOKEN })
  const releaseOk = async (...args: string[]) => {
    const outcome = await release(...args)
    expect(outcome.result.code, outcome.result.stderr).to.equal(0)
    return outcome
  }
  const currentOf = (host: FleetHost) => fleet.currentOf(host)
  const currents = () => Promise.all(hosts.map(currentOf))
  const versionsServed = async (host: FleetHost) =>
    new Set((await answers(host.port, 10)).map((body) => /version=(\S+)/.exec(body)?.[1]))
  const releaseDirs = (host: FleetHost) => fleet.releaseDirs(host)
  /** Index in the progress output of the first line matching `pattern`. */
  const lineOf = (stderr: string, pattern: RegExp) =>
    stderr.split('\n').findIndex((line) => pattern.test(line))
  const writeApp = (version: string) => fleet.writeApp(version)
  const setEnv = (host: FleetHost, text: string) => fleet.setEnv(host, text)

  before(async () => {
    fleet = await startFleet(FLEET_SIZE)
    hosts = fleet.hosts
  })

  after(async () => {
    await fleet?.stop()
  })

  it('releases to every host in parallel and starts a Puma on each', async () => {
    const { json } = await releaseOk()
    expect(json.release).to.equal(1)
    expect(json.hosts.map((host) => host.status)).to.deep.equal(Array(FLEET_SIZE).fill('released'))
    expect(await currents()).to.deep.equal(Array(FLEET_SIZE).fill('releases/1'))
    for (const host of hosts) expect(await versionsServed(host)).to.deep.equal(new Set(['v1']))
  })

  it('rolls out in batches: a batch goes live only after the one before is verified', async () => {
    await writeApp('v2')
    const { json, result } = await releaseOk('--strategy', 'rolling', '--batch', '2')
    expect(json.hosts.map((host) => host.status)).to.deep.equal(Array(FLEET_SIZE).fill('released'))
    expect(json.hosts.map((host) => host.restart?.kind)).to.deep.equal(Array(FLEET_SIZE).fill('phased'))
    // Waves [web1, web2], [web3, web4], [web5]: each wave's restarts end before the next publishes.
    const verified = (name: string) => lineOf(result.stderr, new RegExp(`^${name}\\s+restart\\s+ok`))
    const published = (name: string) => lineOf(result.stderr, new RegExp(`^${name}\\s+publish\\s+ok`))
    for (const [before, after] of [
      ['web1', 'web3'],
      ['web2', 'web3'],
      ['web2', 'web4'],
      ['web4', 'web5'],
      ['web3', 'web5'],
    ] as const) {
      expect(verified(before), `${before} verified before ${after} went live`).to.be.greaterThan(-1)
      expect(verified(before)).to.be.lessThan(published(after))
    }
    expect(await currents()).to.deep.equal(Array(FLEET_SIZE).fill('releases/2'))
    for (const host of hosts) expect(await versionsServed(host)).to.deep.equal(new Set(['v2']))
  })

  it('sends the canary alone first, then the rest together', async () => {
    await writeApp('v3')
    const { json, result } = await releaseOk('--strategy', 'canary')
    expect(json.hosts.map((host) => host.status)).to.deep.equal(Array(FLEET_SIZE).fill('released'))
    const canaryVerified = lineOf(result.stderr, /^web1\s+restart\s+ok/)
    expect(canaryVerified).to.be.greaterThan(-1)
    for (const other of hosts.slice(1))
      expect(canaryVerified).to.be.lessThan(
        lineOf(result.stderr, new RegExp(`^${other.name}\\s+publish\\s+ok`)),
      )
    expect(await currents()).to.deep.equal(Array(FLEET_SIZE).fill('releases/3'))
  })

  it('stops before any change when a host disagrees on current', async () => {
    const odd = hosts[3] as FleetHost
    // Someone pointed web4 back at release 2 by hand.
    const link = join(odd.deployTo, 'current')
    await symlink('releases/2', `${link}.tmp`)
    await rename(`${link}.tmp`, link)
    const listings = await Promise.all(hosts.map(releaseDirs))

    try {
      await writeApp('v4')
      const { result, json } = await release()
      expect(result.code).to.equal(ExitCode.disagreement)
      expect(json.ok).to.equal(false)
      expect(json.error?.message).to.include('web4: current is 2, not 3')
      expect(await Promise.all(hosts.map(releaseDirs))).to.deep.equal(listings)
      expect(await currentOf(odd)).to.equal('releases/2')
    } finally {
      await symlink('releases/3', `${link}.tmp`)
      await rename(`${link}.tmp`, link)
    }
  })

  it('rolls the hosts already live back when a host of a later batch fails', async () => {
    const failing = hosts[2] as FleetHost
    await setEnv(failing, 'break-v4')
    await writeApp('v4')
    const { result, json } = await release('--strategy', 'rolling', '--batch', '2')
    expect(result.code, result.stderr).to.equal(ExitCode.verify)
    const byName = new Map(json.hosts.map((host) => [host.host, host]))
    // web1, web2 went live in the first batch; web3 failed verification and rolled itself back;
    // web4 went live beside it and was rolled back with web1 and web2; web5 was never started.
    expect(byName.get('web3')?.status, result.stderr).to.equal('rolled-back')
    expect(byName.get('web3')?.note).to.equal(undefined)
    for (const name of ['web1', 'web2', 'web4']) {
      expect(byName.get(name)?.status, name).to.equal('rolled-back')
      expect(byName.get(name)?.note, name).to.equal('rolled back to release 3 because web3 failed')
    }
    expect(byName.get('web5')?.status).to.equal('skipped')
    expect(json.error?.message).to.match(/Rolled back: web1, web2, web3, web4\.\nNot started: web5\./)
    expect(await currents()).to.deep.equal(Array(FLEET_SIZE).fill('releases/3'))
    expect(await releaseDirs(hosts[4] as FleetHost)).to.not.include('.4.partial')
    expect(await releaseDirs(hosts[4] as FleetHost)).to.not.include('4')
    for (const host of hosts) expect(await versionsServed(host), host.name).to.deep.equal(new Set(['v3']))

    // Once the host is fixed, the next release goes out everywhere: the rolled-back release 4 left on
    // some hosts does not count as disagreement.
    await setEnv(failing, 'fine')
    const next = await releaseOk('--strategy', 'rolling', '--batch', '2')
    expect(next.json.release).to.equal(5)
    expect(await currents()).to.deep.equal(Array(FLEET_SIZE).fill('releases/5'))
    for (const host of hosts) expect(await versionsServed(host), host.name).to.deep.equal(new Set(['v4']))
  })

  it('with --on-failure stop, leaves the canary failure alone and starts no other host', async () => {
    const canary = hosts[0] as FleetHost
    await setEnv(canary, 'break-v5')
    await writeApp('v5')
    const { result, json } = await release('--strategy', 'canary', '--on-failure', 'stop')
    expect(result.code, result.stderr).to.equal(ExitCode.verify)
    expect(json.hosts[0]?.status).to.equal('rolled-back')
    expect(json.hosts.slice(1).map((host) => host.status)).to.deep.equal(
      Array(FLEET_SIZE - 1).fill('skipped'),
    )
    expect(await currents()).to.deep.equal(Array(FLEET_SIZE).fill('releases/5'))
    for (const host of hosts.slice(1)) expect(await releaseDirs(host)).to.not.include('6')
    await setEnv(canary, 'fine')
  })
})
