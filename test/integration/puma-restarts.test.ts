import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { chown, readFile, readlink, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { expect } from 'chai'
import { ExitCode } from '../../src/errors.js'
import type { HostReleases } from '../../src/fleet/list.js'
import { parseJson, type ReleaseJson, releaseJson, runCli } from '../support/cli.js'
import { DEPLOY_USER, userIds, type Workspace } from '../support/fixture.js'
import {
  answers,
  masterPid,
  PUMA_TOKEN,
  pumaStats,
  writePumaApp,
  writePumaConfig,
} from '../support/puma-app.js'
import { usePumaWorkspace } from '../support/suite.js'

describe('Puma restarts chosen from what changed (real Puma behind a real sshd)', function () {
  this.timeout(180_000)
  let ws: Workspace
  let port: number
  const suite = usePumaWorkspace({
    setup: async (env) => {
      ;({ ws, port } = env)
      await writePumaApp(ws, { port, version: 'v1' })
      await writePumaConfig(ws, env.sshd, { port })
    },
  })

  const release = (...args: string[]) => releaseJson(ws.config, args, { PUMA_TOKEN })
  const releaseOk = async (...args: string[]) => {
    const outcome = await release(...args)
    expect(outcome.result.code, outcome.result.stderr).to.equal(0)
    return outcome.json
  }
  const restartOf = (json: ReleaseJson) => json.hosts[0]?.restart
  const stats = () => pumaStats(ws)
  const servedReleases = async () =>
    new Set((await answers(port)).map((body) => /release=(\d+)/.exec(body)?.[1]))

  it('starts Puma on the first release, then a code change is a phased restart (USR1): same master, every worker new, in the new release', async () => {
    const first = await releaseOk()
    expect(restartOf(first)?.kind).to.equal('start')
    const pid = await masterPid(ws)
    const before = await stats()

    await writePumaApp(ws, { port, version: 'v2' })
    const second = await releaseOk()
    expect(restartOf(second)?.kind).to.equal('phased')
    expect(restartOf(second)?.reasons.join()).to.contain('only the app code changed')
    expect(await masterPid(ws)).to.equal(pid)
    const after = await stats()
    expect(after.started_at).to.equal(before.started_at)
    expect(after.phase).to.equal(before.phase + 1)
    const oldPids = new Set(before.worker_status.map((worker) => worker.pid))
    expect(after.worker_status.every((worker) => !oldPids.has(worker.pid))).to.equal(true)
    expect(await servedReleases()).to.deep.equal(new Set(['2']))
    for (const body of await answers(port, 6))
      expect(body).to.contain(`cwd=${join(ws.deployTo, 'releases', '2')}`)
    const stored = JSON.parse(
      await readFile(join(ws.deployTo, 'releases/2/.deployer/fingerprints.json'), 'utf8'),
    )
    expect(stored.restart.kind).to.equal('phased')
  })

  it('a puma.rb change is a hot restart (USR2): same master pid, new started_at', async () => {
    await releaseOk()
    const pid = await masterPid(ws)
    const before = await stats()
    await writePumaApp(ws, { port, version: 'v2', threads: 3 })
    const json = await releaseOk()
    expect(restartOf(json)?.kind).to.equal('hot')
    expect(restartOf(json)?.reasons.join()).to.contain('Puma config changed')
    expect(await masterPid(ws)).to.equal(pid)
    expect((await stats()).started_at).to.not.equal(before.started_at)
    expect(await servedReleases()).to.deep.equal(new Set(['2']))
  })

  it('a lockfile change without prune_bundler is a hot restart', async () => {
    await writePumaApp(ws, { port, version: 'v1', gemfileLock: 'GEM\n  specs:\n    rack (2.2.6)\n' })
    await releaseOk()
    await writePumaApp(ws, { port, version: 'v1', gemfileLock: 'GEM\n  specs:\n    rack (2.2.7)\n' })
    const json = await releaseOk()
    expect(restartOf(json)?.kind).to.equal('hot')
    expect(restartOf(json)?.reasons.join()).to.contain('lockfiles changed')
    expect(await servedReleases()).to.deep.equal(new Set(['2']))
  })

  it('a .ruby-version change is a full restart', async () => {
    await writePumaApp(ws, { port, version: 'v1', rubyVersion: '3.1' })
    await releaseOk()
    const pid = await masterPid(ws)
    await writePumaApp(ws, { port, version: 'v2', rubyVersion: '3.2.0' })
    const json = await releaseOk()
    expect(restartOf(json)?.kind).to.equal('full')
    expect(restartOf(json)?.reasons.join()).to.match(/Ruby changes from 3\.1\.\d+ to 3\.2\.0/)
    expect(await masterPid(ws)).to.not.equal(pid)
    expect(await servedReleases()).to.deep.equal(new Set(['2']))
  })

  it('a change to server.env_files is a full restart and the master gets the new environment', async () => {
    const envFile = join(ws.dir, 'app.env')
    await writeFile(envFile, 'FROM_ENV_FILE=one\n')
    await writePumaConfig(ws, suite.sshd, { port, envFile })
    await releaseOk()
    expect((await answers(port, 2))[0]).to.contain('from_env=one')
    await writeFile(envFile, 'FROM_ENV_FILE=two\n')
    await writePumaApp(ws, { port, version: 'v2' })
    const json = await releaseOk()
    expect(restartOf(json)?.kind).to.equal('full')
    expect(restartOf(json)?.reasons.join()).to.contain('environment files changed')
    for (const body of await answers(port, 6)) expect(body).to.contain('from_env=two')
  })

  it('a shared .env that the app reads at boot is picked up by a phased restart', async () => {
    await releaseOk()
    const dotenv = join(ws.deployTo, 'shared', '.env')
    await writeFile(dotenv, 'changed-value\n')
    const { uid, gid } = await userIds(DEPLOY_USER)
    await chown(dotenv, uid, gid)
    await writePumaApp(ws, { port, version: 'v2' })
    const json = await releaseOk()
    expect(restartOf(json)?.kind).to.equal('phased')
    for (const body of await answers(port, 6)) expect(body).to.contain('dotenv=changed-value')
  })

  it('`directory` missing from puma.rb: a full restart, with a warning that says how to fix the config', async () => {
    await writePumaApp(ws, { port, version: 'v1', noDirectory: true })
    await releaseOk()
    await writePumaApp(ws, { port, version: 'v2', noDirectory: true })
    const { result, json } = await release()
    expect(result.code, result.stderr).to.equal(0)
    expect(restartOf(json)?.kind).to.equal('full')
    expect(restartOf(json)?.warnings.join()).to.contain(`directory "${join(ws.deployTo, 'current')}"`)
    expect(result.stderr).to.contain('warning:').and.contain('directory')
    expect(await servedReleases()).to.deep.equal(new Set(['2']))
  })

  it('a release whose config.ru raises at boot is rolled back automatically: the old release keeps serving and the new one is marked failed', async () => {
    await releaseOk()
    await writePumaApp(ws, { port, version: 'v2', brokenBoot: true })
    const { result, json } = await release()
    expect(result.code).to.equal(ExitCode.verify)
    expect(json.ok).to.equal(false)
    expect(json.hosts[0]?.status).to.equal('rolled-back')
    expect(result.stderr).to.contain('keeps failing to boot')
    // Puma 5.6 logs where the boot failed (the first backtrace line), which deployer shows.
    expect(result.stderr, result.stderr).to.contain('Unable to start worker').and.contain('config.ru:1')
    expect(await readlink(join(ws.deployTo, 'current'))).to.equal('releases/1')
    expect(await servedReleases()).to.deep.equal(new Set(['1']))
    const listed = parseJson<{ hosts: HostReleases[] }>(
      await runCli(['releases', '--json', '--config', ws.config], { env: { PUMA_TOKEN } }),
    )
    expect(listed.hosts[0]?.releases.map((entry) => [entry.number, entry.state])).to.deep.equal([
      [1, 'live'],
      [2, 'failed'],
    ])
  })

  it('quotes the log Puma writes through --redirect-stdout/--redirect-stderr in server.start when a restart fails', async () => {
    const log = join(ws.deployTo, 'shared/log/puma-redirected.log')
    await writePumaApp(ws, { port, version: 'v1', noStdoutRedirect: true })
    await writePumaConfig(ws, suite.sshd, {
      port,
      startArgs: `--redirect-stdout ${log} --redirect-stderr ${log} --redirect-append`,
    })
    await releaseOk()
    await writePumaApp(ws, { port, version: 'v2', noStdoutRedirect: true, brokenBoot: true })
    const { result } = await release()
    expect(result.code, result.stderr).to.equal(ExitCode.verify)
    expect(result.stderr).to.contain(`== ${log}`).and.contain('Unable to start worker')
    expect(result.stderr).to.contain('its boot error is above')
    expect(await servedReleases()).to.deep.equal(new Set(['1']))
  })

  it('never starts a second Puma while another process holds its port, and says which port', async () => {
    const squatter = createServer().listen(port, '127.0.0.1')
    await once(squatter, 'listening')
    try {
      const { result } = await release()
      // Published, but not started: the run ends with the host on the new release, saying so (exit 9).
      expect(result.code, result.stderr).to.equal(ExitCode.partial)
      expect(result.stderr).to.contain(`port ${port} is held by a process`)
      expect(existsSync(join(ws.deployTo, 'shared/tmp/pids/puma.pid'))).to.equal(false)
    } finally {
      squatter.close()
    }
  })

  it('rollback restarts Puma onto the previous release and verifies it', async () => {
    await releaseOk()
    await writePumaApp(ws, { port, version: 'v2' })
    await releaseOk()
    const result = await runCli(['rollback', '--config', ws.config], { env: { PUMA_TOKEN } })
    expect(result.code, result.stderr).to.equal(0)
    expect(result.stdout, result.stdout + result.stderr).to.match(/phased restart/)
    expect(await servedReleases()).to.deep.equal(new Set(['1']))
  })

  it("prune keeps the release the Puma master booted from, so a later hot restart still works (the seed's failure)", async () => {
    await releaseOk()
    for (const version of ['v2', 'v3']) {
      await writePumaApp(ws, { port, version })
      await releaseOk()
    }
    const pruned = await runCli(['prune', '--keep', '1', '--config', ws.config], { env: { PUMA_TOKEN } })
    expect(pruned.code, pruned.stderr).to.equal(0)
    expect(pruned.stdout).to.match(/kept 1: in use by pid \d+ \(puma master/)
    await writePumaApp(ws, { port, version: 'v4', threads: 2 })
    const json = await releaseOk()
    expect(restartOf(json)?.kind).to.equal('hot')
    expect(await servedReleases()).to.deep.equal(new Set(['4']))
  })
})
