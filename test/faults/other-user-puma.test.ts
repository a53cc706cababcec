import { type ChildProcess, spawn } from 'node:child_process'
import { chmod, readlink, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { expect } from 'chai'
import { ExitCode } from '../../src/errors.js'
import { runCli } from '../support/cli.js'
import { ensureUser } from '../support/fixture.js'
import { recordUnderLoad } from '../support/load.js'
import { masterPid, PUMA_TOKEN, stopPuma, stopSpawnedPuma } from '../support/puma-app.js'
import { type ServedHost, startServedHost } from '../support/served-host.js'
import { waitFor } from '../support/wait.js'

/** The user Puma runs as on the host (www-data on a real server), not the SSH user deploying. */
const PUMA_USER = 'deployer-other'

/**
 * Puma's master runs as another user than the SSH user, so the kernel refuses the restart signal
 * (EPERM). The release flipped `current` first: deployer must flip it back and say so, and say that Puma
 * was never restarted, never report a restart or a release that is not live.
 */
describe('a Puma master of another user refuses the restart signal, while it serves under load', function () {
  this.timeout(180_000)
  let host: ServedHost
  let puma: ChildProcess | undefined

  before(async () => {
    host = await startServedHost()
    const { uid, gid } = await ensureUser(PUMA_USER)
    const { deployTo } = host.ws
    // Puma as PUMA_USER: it may pass through srv/ and write its pidfile, socket and log in shared/.
    await stopPuma(host.ws)
    await chmod(join(host.ws.dir, 'srv'), 0o711)
    for (const dir of ['shared/tmp/pids', 'shared/tmp/sockets', 'shared/log'])
      await chmod(join(deployTo, dir), 0o777)
    await rm(join(deployTo, 'shared/tmp/pids/puma.pid'), { force: true })
    await rm(join(deployTo, 'shared/log/puma.log'), { force: true })
    const current = join(deployTo, 'current')
    // umask 0: the control socket stays connectable and the pidfile readable for the SSH user.
    puma = spawn(
      'setpriv',
      [
        `--reuid=${uid}`,
        `--regid=${gid}`,
        '--clear-groups',
        '/bin/sh',
        '-c',
        'umask 000; cd "$CURRENT" && PWD="$CURRENT" exec puma -C config/puma.rb',
      ],
      { env: { PATH: process.env.PATH, CURRENT: current }, stdio: 'ignore' },
    )
    await waitFor(
      async () => {
        const pid = await masterPid(host.ws).catch(() => 0)
        return pid === puma?.pid && (await host.servedReleases().catch(() => new Set())).has('1')
      },
      { what: `Puma as ${PUMA_USER} to serve release 1`, timeoutMs: 60_000 },
    )
    expect((await stat(`/proc/${puma.pid}`)).uid).to.equal(uid)
  })
  afterEach(() => host?.cleanUp())
  after(async () => {
    await stopSpawnedPuma(puma)
    await host?.stop()
  })

  it('flips current back, says Puma was not restarted and who it runs as; rollback does the same', async () => {
    const pid = puma?.pid
    await host.writeApp('v2')
    const load = await host.startLoad()
    const { result, json } = await host.release()
    expect(result.code, result.stderr).to.equal(ExitCode.failure)
    const outcome = json.hosts[0]
    expect(outcome?.status).to.equal('rolled-back')
    expect(outcome?.note).to.contain('Puma refused the restart signal').and.contain('Puma was not restarted')
    expect(outcome?.restart?.done, 'no restart reported').to.equal(undefined)
    const message = json.error?.message ?? ''
    expect(message).to.match(
      /Puma's master \(the pid in .*\) runs as deployer-other, so deployer-test may not send it (USR1|USR2|TERM) \(Operation not permitted\)/,
    )
    expect(message).to.contain('current points at releases/1 again, and Puma, never restarted')
    expect(json.error?.hint).to.contain('server.full_restart')
    expect(result.stderr).to.not.contain('looks like a bug')
    // The host: current back on 1, the same master (never signalled) serving 1, lock free.
    expect(await host.current()).to.equal('releases/1')
    expect(await masterPid(host.ws)).to.equal(pid)
    expect(await host.servedReleases()).to.deep.equal(new Set(['1']))
    expect(await host.lockHeld()).to.equal(false)
    expect(await host.releaseStates()).to.deep.equal([
      [1, 'live'],
      [2, 'rolled-back'],
    ])

    const rollback = await runCli(['rollback', '--to', '2', '--json', '--config', host.ws.config], {
      env: { PUMA_TOKEN },
    })
    expect(rollback.code, rollback.stderr).to.equal(ExitCode.failure)
    expect(rollback.stdout).to.contain('current points at releases/1 again')
    expect(await readlink(join(host.ws.deployTo, 'current'))).to.equal('releases/1')
    expect(await host.servedReleases()).to.deep.equal(new Set(['1']))
    await recordUnderLoad(load, {
      group: 'other users',
      name: `Puma's master runs as ${PUMA_USER}, deploying as deployer-test: the restart signal is refused (EPERM)`,
      expected:
        'current flipped back, the result says what is live (current on the previous release, Puma not restarted, who Puma runs as, server.full_restart as the fix); rollback --to likewise',
      observed: `release exit ${result.code}, host rolled-back ("${message.split('\n').find((line) => line.startsWith('current points at'))}"), no restart reported; current releases/1, same master pid serving 1, lock free, release 2 listed rolled-back; rollback --to 2 exit ${rollback.code}, current stays releases/1`,
    })
  })
})
