import { expect } from 'chai'
import type { HistoryEvent } from '../../../src/release/history.js'
import { findRunningReleases, restartEvent } from '../../../src/restart/running-release.js'

const by = { user: 'u', machine: 'm', pid: 1 }
const restart = (
  release: number,
  kind: 'phased' | 'hot' | 'start',
  configRelease: number,
  bootRelease: number,
  startedAt: string,
): Extract<HistoryEvent, { event: 'restart' }> => ({
  event: 'restart',
  release,
  kind,
  configRelease,
  bootRelease,
  startedAt,
  reasons: [],
  time: 't',
  by,
})

describe('findRunningReleases', () => {
  const history = [
    restart(1, 'start', 1, 1, 'S1'),
    restart(2, 'hot', 2, 1, 'S2'),
    restart(3, 'phased', 2, 1, 'S2'),
  ]

  it('trusts the last recorded restart while started_at matches it', () => {
    expect(findRunningReleases(history, 'S2', 3)).to.deep.equal({
      configRelease: 2,
      bootRelease: 1,
      source: 'history',
      protect: [2, 1],
    })
  })

  it('falls back to the master cwd when Puma was restarted by hand since', () => {
    expect(findRunningReleases(history, 'S9', 3)).to.deep.equal({
      configRelease: 3,
      bootRelease: 3,
      source: 'process',
      protect: [3],
    })
  })

  it('trusts the record when there are no stats to contradict it', () => {
    expect(findRunningReleases(history, null, 3).configRelease).to.equal(2)
  })

  it('uses the master cwd when deployer never restarted this Puma', () => {
    expect(findRunningReleases([], 'S1', 4)).to.deep.equal({
      configRelease: 4,
      bootRelease: 4,
      source: 'process',
      protect: [4],
    })
  })

  it('keeps every release an unverified recovery may have left the master on', () => {
    const unverified = (
      release: number,
      kind: 'hot' | 'start',
      config: number,
      boot: number,
    ): HistoryEvent => ({
      ...restart(release, kind, config, boot, ''),
      startedAt: null,
      verified: false,
    })
    // Release 4 failed its hot restart, the recovery onto 3 did not verify either.
    const torn = [...history, unverified(4, 'hot', 4, 1), unverified(3, 'hot', 3, 1)]
    const running = findRunningReleases(torn, 'S7', 5)
    expect(running.configRelease).to.equal(3)
    expect(running.protect).to.deep.equal([1, 2, 3, 4, 5])
  })

  it('lets a verified restart after an unverified one settle what the master runs', () => {
    const torn: HistoryEvent[] = [
      ...history,
      { ...restart(4, 'hot', 4, 1, ''), startedAt: null, verified: false },
      restart(3, 'hot', 3, 1, 'S8'),
    ]
    expect(findRunningReleases(torn, 'S8', 3).protect).to.deep.equal([3, 1])
  })
})

describe('restartEvent', () => {
  const running = { configRelease: 2, bootRelease: 1, source: 'history' as const, protect: [2, 1] }
  const time = new Date('2026-11-24T00:00:00Z')
  const rows: {
    kind: 'phased' | 'hot' | 'full' | 'start'
    fellBackToHot: boolean
    config: number
    boot: number
    recorded: string
  }[] = [
    { kind: 'phased', fellBackToHot: false, config: 2, boot: 1, recorded: 'phased' },
    { kind: 'phased', fellBackToHot: true, config: 5, boot: 1, recorded: 'hot' },
    { kind: 'hot', fellBackToHot: false, config: 5, boot: 1, recorded: 'hot' },
    { kind: 'full', fellBackToHot: false, config: 5, boot: 5, recorded: 'full' },
    { kind: 'start', fellBackToHot: false, config: 5, boot: 5, recorded: 'start' },
  ]
  for (const row of rows) {
    it(`records a ${row.kind}${row.fellBackToHot ? ' that fell back to hot' : ''} restart of release 5`, () => {
      const event = restartEvent(
        5,
        { kind: row.kind, fellBackToHot: row.fellBackToHot, startedAt: 'S' },
        running,
        ['why'],
        time,
        by,
      )
      expect(event).to.include({
        event: 'restart',
        release: 5,
        kind: row.recorded,
        configRelease: row.config,
        bootRelease: row.boot,
      })
    })
  }
})
