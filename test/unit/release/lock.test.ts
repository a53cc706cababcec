import { expect } from 'chai'
import { describeHeldLock, formatAge, type LockOwner } from '../../../src/release/lock.js'

const owner: LockOwner = {
  user: 'alice',
  machine: 'laptop',
  pid: 4242,
  token: 't',
  command: 'release',
  startedAt: '2026-11-24T10:00:00.000Z',
}
const now = new Date('2026-11-24T10:12:00.000Z')

describe('describeHeldLock', () => {
  it('names the holder, the command and the age', () => {
    const report = describeHeldLock('web1', '/srv/shop', owner, now, 'other-machine', undefined)
    expect(report.message).to.equal(
      'Host web1: /srv/shop is locked by alice@laptop (pid 4242, deployer release) since 2026-11-24T10:00:00.000Z (12 min ago).',
    )
    expect(report.stale).to.equal(false)
    expect(report.hint).to.contain('deployer unlock --host web1')
  })

  it('calls a lock stale when its owner ran here and is gone', () => {
    const report = describeHeldLock('web1', '/srv/shop', owner, now, 'laptop', false)
    expect(report.stale).to.equal(true)
    expect(report.message).to.contain('no longer running')
  })

  it('does not call a lock stale while its owner runs', () => {
    expect(describeHeldLock('web1', '/srv/shop', owner, now, 'laptop', true).stale).to.equal(false)
  })

  it('explains a lock without an owner file', () => {
    expect(describeHeldLock('web1', '/srv/shop', null, now, 'laptop', undefined).message).to.contain(
      'names no owner',
    )
  })

  const ages: [number, string][] = [
    [5, '5s'],
    [600, '10 min'],
    [7200, '2 h'],
    [3 * 86400, '3 days'],
  ]
  for (const [seconds, text] of ages)
    it(`formats ${seconds}s as ${text}`, () => expect(formatAge(seconds)).to.equal(text))
})
