import { expect } from 'chai'
import { formatAge } from '../../../src/format.js'
import { parseStartTicks, readProcessIdentity } from '../../../src/release/actor.js'
import {
  describeHeldLock,
  judgeLockOwner,
  type LockOwner,
  type ProcessIdentity,
} from '../../../src/release/lock.js'

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

describe('judgeLockOwner', () => {
  const identity = { bootId: 'boot-a', pidNamespace: 'pid:[1]', startTicks: 500 }
  const held: LockOwner = { ...owner, process: identity }
  const here: { machine: string; process: ProcessIdentity | null } = {
    machine: 'laptop',
    process: { ...identity, startTicks: 900 },
  }
  const cases: [string, LockOwner, typeof here, number | null, boolean | undefined][] = [
    ['its pid is gone in this kernel and namespace', held, here, null, false],
    ['its pid now names a process that started at another time', held, here, 777, false],
    ['its pid runs with its start time', held, here, 500, true],
    ['another machine', held, { ...here, machine: 'ci-runner' }, null, undefined],
    [
      'the same host name after a reboot or in a cloned VM',
      held,
      { ...here, process: { ...identity, bootId: 'boot-b' } },
      null,
      undefined,
    ],
    [
      'the same host name in another container',
      held,
      { ...here, process: { ...identity, pidNamespace: 'pid:[2]' } },
      null,
      undefined,
    ],
    ['a lock without an identity (an older deployer)', owner, here, null, undefined],
    ['a machine without /proc', held, { machine: 'laptop', process: null }, null, undefined],
  ]
  for (const [name, lockOwner, machine, ticks, expected] of cases)
    it(`judges the owner ${expected === false ? 'gone' : expected ? 'alive' : 'possibly alive'}: ${name}`, () =>
      expect(judgeLockOwner(lockOwner, machine, ticks)).to.equal(expected))

  it('reads the start time after a command with spaces and parentheses', () => {
    const stat = `42 (ruby (x) y) S ${Array.from({ length: 18 }, (_, index) => index + 4).join(' ')} 123456 0 0`
    expect(parseStartTicks(stat)).to.equal(123456)
  })

  it("reads this process's identity from /proc", () => {
    const mine = readProcessIdentity()
    expect(mine?.bootId).to.match(/^[0-9a-f-]{36}$/)
    expect(mine?.pidNamespace).to.match(/^pid:\[\d+\]$/)
    expect(mine?.startTicks).to.be.a('number')
  })
})
