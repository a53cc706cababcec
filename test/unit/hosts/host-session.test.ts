import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect } from 'chai'
import { HostSession } from '../../../src/hosts/host-session.js'
import { newLockOwner } from '../../../src/release/lock.js'
import { LocalTransport } from '../../../src/transport/local.js'
import { localHost } from '../../support/local-host.js'

describe('HostSession.tryLock with readState', () => {
  let sandbox: string
  let session: HostSession
  const actor = { user: 'deploy', machine: 'laptop', pid: 4242 }

  beforeEach(async () => {
    sandbox = await mkdtemp(join(tmpdir(), 'deployer-session-'))
    const deployTo = join(sandbox, 'shop')
    await mkdir(join(deployTo, 'releases', '3'), { recursive: true })
    await symlink('releases/3', join(deployTo, 'current'))
    session = new HostSession(localHost(deployTo), new LocalTransport())
  })
  afterEach(async () => {
    await rm(sandbox, { recursive: true, force: true })
  })

  it('reads the state in the same round trip as the lock, and hands it out once', async () => {
    const outcome = await session.tryLock(newLockOwner(actor, 'release', new Date()), { readState: true })
    expect(outcome.acquired).to.equal(true)
    const state = session.takeLockedState()
    expect(state?.current).to.equal(3)
    expect(state?.releases.map((release) => release.number)).to.deep.equal([3])
    expect(session.takeLockedState()).to.equal(undefined)
  })

  it('reads nothing when someone else holds the lock', async () => {
    await session.tryLock(newLockOwner({ ...actor, pid: 1 }, 'release', new Date()))
    const outcome = await session.tryLock(newLockOwner(actor, 'release', new Date()), { readState: true })
    expect(outcome.acquired).to.equal(false)
    expect(session.takeLockedState()).to.equal(undefined)
  })
})
