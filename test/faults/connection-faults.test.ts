import { expect } from 'chai'
import { ExitCode } from '../../src/errors.js'
import { parseJson, type ReleaseJson } from '../support/cli.js'
import { recordUnderLoad } from '../support/load.js'
import { type ServedHost, startServedHost } from '../support/served-host.js'
import { sessionProcesses } from '../support/sshd.js'
import { waitFor } from '../support/wait.js'

const GROUP = 'connection cut'

/**
 * The SSH connection of a running release is cut (its sshd session processes killed, as a network
 * failure would) at a failpoint, while Puma serves under load. The cases follow each other on one host.
 */
describe('a release whose SSH connection is cut, while Puma serves under load', function () {
  this.timeout(120_000)
  let host: ServedHost
  /** Kills the sshd processes serving the CLI's connection: the connection drops. */
  const cutConnection = async () => {
    const sessions = await sessionProcesses(host.sshd)
    expect(sessions, 'sshd session processes of the CLI').to.not.be.empty
    for (const pid of sessions) process.kill(pid, 'SIGKILL')
  }

  before(async () => {
    host = await startServedHost()
  })
  afterEach(() => host?.cleanUp())
  after(async () => {
    await host?.stop()
  })

  it('a cut during the upload publishes nothing, cleans up over a new connection and frees the lock', async () => {
    await host.writeApp('v2')
    await host.writeAsset(1024 * 1024)
    const serving = await host.startLoad()
    const cli = await host.holdRelease('upload')
    await cutConnection()
    // The failpoint waits on; once the upload has failed, let the run go on to its clean-up and exit.
    await waitFor(() => /^it\s+upload\s+FAILED/m.test(cli.stderrSoFar()), {
      what: 'the upload to fail on the dropped connection',
    })
    cli.child.kill('SIGUSR2')
    const result = await cli.result
    const json = parseJson<ReleaseJson>(result)
    expect(result.code, result.stderr).to.equal(ExitCode.connection)
    expect(json.error?.message).to.match(/Host it: the connection to .* dropped while running `tar/)
    expect(await host.current()).to.equal('releases/1')
    expect(await host.releaseEntries(), 'no releases/2, and .2.partial removed').to.deep.equal(['1'])
    expect(await host.lockHeld()).to.equal(false)
    expect(await host.servedReleases()).to.deep.equal(new Set(['1']))

    const next = await host.release()
    expect(next.result.code, next.result.stderr).to.equal(0)
    expect(next.json.release).to.equal(3)
    expect(await host.servedReleases()).to.deep.equal(new Set(['3']))
    await recordUnderLoad(serving, {
      group: GROUP,
      name: 'SSH connection cut during the upload',
      expected:
        'exit 4 naming the host; nothing published, partial removed, lock freed; old release serves; next release succeeds',
      observed: `exit ${result.code} ("${json.error?.message.split('\n')[0]}"); current releases/1, releases/ holds only 1, lock free; next release 3 exit 0, serving 3`,
    })
  })

  it('a cut after Puma got the restart signal: deployer reconnects, verifies the restart and finishes the release', async () => {
    await host.writeApp('v4')
    const serving = await host.startLoad()
    const cli = await host.holdRelease('verify')
    await cutConnection()
    cli.child.kill('SIGUSR2')
    const result = await cli.result
    const json = parseJson<ReleaseJson>(result)
    expect(result.code, result.stderr).to.equal(0)
    expect(json.hosts[0]?.status).to.equal('released')
    expect(json.hosts[0]?.restart?.kind).to.equal('phased')
    expect(await host.current()).to.equal('releases/4')
    expect(await host.releaseEntries()).to.deep.equal(['1', '3', '4'])
    expect(await host.lockHeld()).to.equal(false)
    expect(await host.servedReleases()).to.deep.equal(new Set(['4']))

    await host.writeApp('v5')
    const next = await host.release()
    expect(next.result.code, next.result.stderr).to.equal(0)
    expect(await host.servedReleases()).to.deep.equal(new Set(['5']))
    await recordUnderLoad(serving, {
      group: GROUP,
      name: 'SSH connection cut after the restart signal, before verification',
      expected:
        'the restart is verified over a new connection (or rolled back); current on a serving release; lock freed; no failed request',
      observed: `exit ${result.code}, phased restart verified after reconnecting; current releases/4 serving 4; lock free; next release 5 exit 0`,
    })
  })
})
