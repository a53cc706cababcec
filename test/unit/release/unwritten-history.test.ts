import { mkdir, mkdtemp, readlink, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect } from 'chai'
import { HostSession } from '../../../src/hosts/host-session.js'
import type { HistoryEvent } from '../../../src/release/history.js'
import {
  attachSessionWarnings,
  describeEvent,
  describeUnwritten,
} from '../../../src/release/unwritten-history.js'
import { LocalTransport } from '../../../src/transport/local.js'
import { localHost } from '../../support/local-host.js'

const by = { user: 'deploy', machine: 'laptop', pid: 1 }
const time = '2026-01-01T00:00:00.000Z'

describe('describeEvent', () => {
  const rows: Array<[HistoryEvent, string]> = [
    [{ event: 'release', release: 4, previous: 3, revision: 'abc', time, by }, 'release 4'],
    [{ event: 'failed', release: 4, reason: 'x', time, by }, 'failed 4'],
    [{ event: 'rollback', from: 4, to: 3, time, by }, 'rollback 4 -> 3'],
    [{ event: 'rollback', from: null, to: 3, time, by }, 'rollback none -> 3'],
    [{ event: 'prune', deleted: [1, 2], time, by }, 'prune 1, 2'],
    [
      {
        event: 'restart',
        release: 4,
        kind: 'phased',
        configRelease: 3,
        bootRelease: 1,
        startedAt: null,
        reasons: [],
        time,
        by,
      },
      'restart 4 (phased)',
    ],
  ]
  for (const [event, expected] of rows) {
    it(`names ${expected}`, () => expect(describeEvent(event)).to.equal(expected))
  }
})

describe('describeUnwritten', () => {
  const release: HistoryEvent = { event: 'release', release: 2, previous: 1, revision: 'r', time, by }
  const full = 'cat: write error: No space left on device'

  it('names the events, the cause, that what is live stands, and how to free space', () => {
    const text = describeUnwritten('/srv/my shop', '/srv/my shop/.deployer/history.jsonl', [
      { event: release, reason: full },
      { event: { event: 'prune', deleted: [1], time, by }, reason: full },
    ])
    expect(text).to.contain('/srv/my shop/.deployer/history.jsonl could not be written')
    expect(text).to.contain('(cat: write error: No space left on device)')
    expect(text).to.contain('lacks 2 events: release 2, prune 1')
    expect(text).to.contain('What is live is as reported')
    expect(text).to.contain("`df -h '/srv/my shop'` on the host")
    expect(text).to.not.contain('failed but is not marked')
  })

  it('warns that a failed release is not marked failed', () => {
    const text = describeUnwritten('/srv/shop', '/srv/shop/.deployer/history.jsonl', [
      { event: { event: 'failed', release: 5, reason: 'boot', time, by }, reason: full },
    ])
    expect(text).to.contain('lacks 1 event: failed 5')
    expect(text).to.contain('Release 5 failed but is not marked so')
  })

  it('asks for a writable history when the disk is not the cause', () => {
    const text = describeUnwritten('/srv/shop', '/srv/shop/.deployer/history.jsonl', [
      { event: release, reason: 'sh: 1: cannot create /srv/shop/.deployer/history.jsonl: Permission denied' },
    ])
    expect(text).to.contain('Permission denied')
    expect(text).to.contain('Make /srv/shop/.deployer/history.jsonl writable by the SSH user')
    expect(text).to.not.contain('df -h')
  })

  it('adds each session’s warning to its own outcome only', () => {
    const outcomes: { warnings?: string[] }[] = [{}, {}]
    attachSessionWarnings([{ warnings: () => [] }, { warnings: () => ['lost'] }], outcomes)
    expect(outcomes).to.deep.equal([{}, { warnings: ['lost'] }])
  })
})

describe('HostSession with a history it cannot write', () => {
  let sandbox: string
  let session: HostSession
  let deployTo: string

  beforeEach(async () => {
    sandbox = await mkdtemp(join(tmpdir(), 'deployer-unwritten-'))
    deployTo = join(sandbox, 'shop')
    // A directory where the history file should be: every append fails, as on a full disk.
    await mkdir(join(deployTo, '.deployer', 'history.jsonl'), { recursive: true })
    await mkdir(join(deployTo, 'releases', '.1.partial'), { recursive: true })
    session = new HostSession(localHost(deployTo), new LocalTransport())
  })
  afterEach(async () => {
    await rm(sandbox, { recursive: true, force: true })
  })

  it('publishes and flips, then reports the event it could not append instead of failing', async () => {
    const event: HistoryEvent = { event: 'release', release: 1, previous: null, revision: 'r', time, by }
    await session.publishAndFlip(1, [{ path: '.deployer/x.json', content: '{}' }], event)
    expect(await readlink(join(deployTo, 'current'))).to.equal('releases/1')
    expect(session.unwrittenHistory.map((entry) => entry.event)).to.deep.equal([event])
    expect(session.unwrittenHistory[0]?.reason).to.match(/Is a directory/)
    expect(session.unwrittenHistoryWarning()).to.contain('lacks 1 event: release 1')
  })

  it('keeps a failed record instead of throwing', async () => {
    const event: HistoryEvent = { event: 'rollback', from: 2, to: 1, time, by }
    expect(await session.record(event)).to.equal(false)
    expect(session.unwrittenHistoryWarning()).to.contain('rollback 2 -> 1')
  })
})
