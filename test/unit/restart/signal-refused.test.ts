import { mkdir, mkdtemp, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect } from 'chai'
import { RemoteCommandError } from '../../../src/errors.js'
import { HostSession } from '../../../src/hosts/host-session.js'
import { flipBackUnrestarted } from '../../../src/pipeline/flip-back.js'
import type { ProgressEvent } from '../../../src/progress.js'
import {
  explainRefusedSignal,
  isRefusedSignal,
  SignalRefusedError,
} from '../../../src/restart/signal-refused.js'
import { LocalTransport } from '../../../src/transport/local.js'
import { localHost } from '../../support/local-host.js'

const refused = new RemoteCommandError('web1', 'sending USR1 to Puma', {
  code: 1,
  stdout: '',
  stderr: 'sh: 3: kill: Operation not permitted\n',
})

describe('a restart signal the kernel refuses', () => {
  let sandbox: string
  let session: HostSession
  let deployTo: string

  beforeEach(async () => {
    sandbox = await mkdtemp(join(tmpdir(), 'deployer-eperm-'))
    deployTo = join(sandbox, 'shop')
    await mkdir(join(deployTo, 'releases', '1'), { recursive: true })
    await mkdir(join(deployTo, 'releases', '2'), { recursive: true })
    await symlink('releases/2', join(deployTo, 'current'))
    // pid 1 stands for a master of another user: its owner is read from /proc.
    await writeFile(join(sandbox, 'puma.pid'), '1\n')
    session = new HostSession(localHost(deployTo), new LocalTransport())
  })
  afterEach(async () => {
    await rm(sandbox, { recursive: true, force: true })
  })

  it('is told from other failures of the signalling command', () => {
    expect(isRefusedSignal(refused)).to.equal(true)
    const missing = new RemoteCommandError('web1', 'sending USR1 to Puma', {
      code: 3,
      stdout: '',
      stderr: 'no pidfile at /srv/shop/puma.pid\n',
    })
    expect(isRefusedSignal(missing)).to.equal(false)
    expect(isRefusedSignal(new Error('Operation not permitted'))).to.equal(false)
  })

  it('becomes a SignalRefusedError naming who the master runs as', async () => {
    const error = await explainRefusedSignal(session, join(sandbox, 'puma.pid'), 'USR1', refused).catch(
      (caught: unknown) => caught,
    )
    expect(error).to.be.instanceOf(SignalRefusedError)
    const owner = (error as SignalRefusedError).owner
    expect(owner, 'the owner of pid 1, read on the host').to.match(/^\S+$/)
    expect((error as Error).message).to.contain(`runs as ${owner}, so `)
    expect((error as Error).message).to.contain('may not send it USR1 (Operation not permitted)')
    expect((error as Error).message).to.contain('Puma was not restarted')
    expect((error as SignalRefusedError).hint).to.contain('server.full_restart')
  })

  it('rethrows any other failure as it is', async () => {
    const other = new Error('connection lost')
    const error = await explainRefusedSignal(session, join(sandbox, 'puma.pid'), 'USR1', other).catch(
      (caught: unknown) => caught,
    )
    expect(error).to.equal(other)
  })

  it('flips current back without a restart, records the rollback, and says what is live', async () => {
    const events: ProgressEvent[] = []
    const signal = new SignalRefusedError('local', 'USR1', 'deploy', 'www-data', '/srv/shop/puma.pid')
    const back = await flipBackUnrestarted(session, signal, 2, 1, {
      actor: { user: 'deploy', machine: 'm', pid: 1 },
      now: () => new Date('2026-01-01T00:00:00Z'),
      reporter: { emit: (event) => events.push(event) },
    })
    expect(await readlink(join(deployTo, 'current'))).to.equal('releases/1')
    const history = (await readFile(join(deployTo, '.deployer', 'history.jsonl'), 'utf8')).trim().split('\n')
    expect(history.map((line) => JSON.parse(line).event)).to.deep.equal(['rollback'])
    expect(back.error.message).to.contain('runs as www-data')
    expect(back.error.message).to.contain('current points at releases/1 again, and Puma, never restarted')
    expect(back.note).to.contain('Puma was not restarted')
    expect(events.map((event) => event.kind)).to.deep.equal(['warn'])
  })
})
