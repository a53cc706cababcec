import { randomBytes } from 'node:crypto'
import { readdir, readFile } from 'node:fs/promises'
import { expect } from 'chai'
import { ExitCode } from '../../src/errors.js'
import { writeLoginJunk } from '../support/login-junk.js'
import { recordCase } from '../support/reliability.js'
import { type ServedHost, startServedHost } from '../support/served-host.js'
import { waitFor } from '../support/wait.js'

const CANARY = `canary-${randomBytes(8).toString('hex')}`
const USER = 'deployer-fish-puma'
const SHELL = '/usr/bin/fish'

/** Every process's command line on this machine (the host of the test sshd), as `ps` shows them. */
async function commandLines(): Promise<Array<{ pid: number; cmdline: string }>> {
  const found: Array<{ pid: number; cmdline: string }> = []
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue
    // A process can exit between readdir and this read.
    const raw = await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '')
    if (raw) found.push({ pid: Number(name), cmdline: raw.replaceAll('\0', ' ') })
  }
  return found
}

/**
 * Polls every process's argv until stopped (at most `maxScans` times): what another user on the host
 * sees in `ps`. Notes each command line that contains `secret`, and whether it saw Puma (which proves
 * that it sees the deploy user's processes at all).
 */
function watchCommandLines(secret: string, maxScans = 100_000) {
  let stopped = false
  const leaks: string[] = []
  let scans = 0
  let sawPuma = false
  const done = (async () => {
    while (!stopped && scans < maxScans) {
      for (const { cmdline } of await commandLines()) {
        if (cmdline.includes(secret)) leaks.push(cmdline)
        if (cmdline.startsWith('puma ')) sawPuma = true
      }
      scans += 1
      await new Promise((resolve) => setImmediate(resolve))
    }
  })()
  return {
    async stop() {
      stopped = true
      await done
      return { leaks, scans, sawPuma }
    },
  }
}

/** Pids of the processes whose command line is exactly `cmdline`. */
async function pidsOf(cmdline: string): Promise<number[]> {
  return (await commandLines()).filter((entry) => entry.cmdline.trim() === cmdline).map((entry) => entry.pid)
}

/**
 * What deployer's remote commands leave behind on the host: secrets in the process list, processes an
 * install left running, an install that never ends. As a fish user whose login files print junk, with a
 * real Puma, asserting on the host's processes and releases afterwards.
 */
describe('remote processes: secrets in ps, processes left behind, an install that never ends', function () {
  this.timeout(300_000)
  let host: ServedHost
  let version = 1
  const nextVersion = () => `v${++version}`
  let watcher: ReturnType<typeof watchCommandLines> | undefined

  before(async () => {
    // full_restart runs in current/ (a release): the pidfile and log are under ../../shared.
    const fullRestart = [
      'DEPLOY_SECRET=${CANARY}',
      'pid=$(cat ../../shared/tmp/pids/puma.pid)',
      'kill -TERM "$pid"',
      'while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done',
      'DEPLOY_SECRET=$DEPLOY_SECRET nohup setsid puma -C config/puma.rb >> ../../shared/log/full-restart.log 2>&1 < /dev/null &',
    ].join('\n')
    watcher = watchCommandLines(CANARY)
    host = await startServedHost({
      user: USER,
      shell: SHELL,
      env: { CANARY },
      config: {
        install: 'export DEPLOY_SECRET=${CANARY} && test -n "$DEPLOY_SECRET"',
        startPrefix: 'DEPLOY_SECRET=${CANARY}',
        healthQuery: '?token=${CANARY}',
        fullRestart,
      },
      beforeFirstRelease: () => writeLoginJunk(USER, SHELL),
    })
  })
  afterEach(async () => {
    await host?.cleanUp()
    await host?.configure()
  })
  after(async () => {
    await watcher?.stop()
    await host?.stop()
  })

  it('keeps ${VAR} values of install.command, server.start, server.full_restart and health.url out of ps', async () => {
    // The first release (in before) started Puma with server.start and ran install and health check.
    await host.writeApp(nextVersion())
    const full = await host.release(['--restart', 'full'])
    expect(full.result.code, full.result.stderr).to.equal(0)
    expect(full.json.hosts[0]?.restart?.kind, 'server.full_restart ran').to.equal('full')
    await host.writeApp(nextVersion())
    const phased = await host.release()
    expect(phased.result.code, phased.result.stderr).to.equal(0)
    expect(await host.servedReleases()).to.deep.equal(new Set([String(phased.json.release)]))
    const seen = await watcher!.stop()
    watcher = undefined
    expect(seen.sawPuma, 'the watcher sees the deploy user’s processes').to.equal(true)
    expect(seen.scans).to.be.greaterThan(10)
    expect(seen.leaks, 'command lines showing the secret').to.deep.equal([])
    await recordCase({
      kind: 'fault',
      group: 'remote processes',
      name: 'a ${VAR} secret in install.command, server.start, server.full_restart and health.url',
      expected: 'never in any process’s command line on the host (what other users see in ps)',
      observed: `3 releases (start, full restart, phased; installs and health checks each time) as a fish user: ${seen.scans} scans of /proc/*/cmdline, Puma seen, the secret in none`,
    })
  })

  it('does not wait for processes an install leaves behind, and stops those in its process group', async () => {
    // `sleep 417 &` stays in the install's process group; `setsid sleep 418 &` escapes it like a daemon,
    // keeping the channel's stdout open.
    await host.configure({ install: 'sleep 417 & setsid sleep 418 & echo installed' })
    await host.writeApp(nextVersion())
    const { result, json } = await host.release()
    expect(result.code, result.stderr).to.equal(0)
    expect(await host.current()).to.equal(`releases/${json.release}`)
    await waitFor(async () => (await pidsOf('sleep 417')).length === 0, {
      what: 'the install’s background process to be stopped',
      timeoutMs: 30_000,
    })
    // The daemon left the group, so deployer neither waited for it nor stopped it; whether it lives on
    // after its channel closed is up to the host (it usually does). Stop what is left of it.
    const daemons = await pidsOf('sleep 418')
    expect(daemons.length, 'at most the one daemon the install started').to.be.at.most(1)
    for (const pid of daemons) process.kill(pid, 'SIGTERM')
    await recordCase({
      kind: 'fault',
      group: 'remote processes',
      name: 'install leaves a background process and a daemon holding its stdout',
      expected: 'the release finishes and succeeds; the process in the install’s group is stopped',
      observed: `exit ${result.code}, current releases/${json.release}; \`sleep 417 &\` stopped with the group; the setsid daemon holding stdout did not hold the run`,
    })
  })

  it('stops an install that outlives install.timeout, with every process it started (exit 7)', async () => {
    const before = { current: await host.current(), entries: await host.releaseEntries() }
    await host.configure({ install: 'sleep 419 & sleep 420', installTimeout: '2s' })
    await host.writeApp(nextVersion())
    const { result, json } = await host.release()
    expect(result.code, result.stderr).to.equal(ExitCode.install)
    expect(json.error?.message).to.contain('did not finish within install.timeout (2 s)')
    expect(json.error?.hint).to.contain('raise install.timeout')
    expect(await host.current()).to.equal(before.current)
    expect(await host.releaseEntries(), 'the partial release was removed').to.deep.equal(before.entries)
    expect(await host.lockHeld()).to.equal(false)
    await waitFor(async () => (await pidsOf('sleep 419')).length + (await pidsOf('sleep 420')).length === 0, {
      what: 'the timed-out install and its background process to be stopped',
      timeoutMs: 30_000,
    })
    await recordCase({
      kind: 'fault',
      group: 'remote processes',
      name: 'install never ends (install.timeout 2s)',
      expected:
        'exit 7 naming install.timeout; the install and its background process stopped; nothing published; lock free',
      observed: `exit ${result.code}: "${json.error?.message.split('\n')[0]}"; current ${before.current}, releases/ unchanged, no sleep left`,
    })
  })
})
