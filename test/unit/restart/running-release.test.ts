import { expect } from 'chai'
import type { HistoryEvent } from '../../../src/release/history.js'
import { findRunningReleases } from '../../../src/restart/running-release.js'

const by = { user: 'u', machine: 'm', pid: 1 }
const restart = (
  release: number,
  kind: 'phased' | 'hot' | 'start',
  configRelease: number,
  bootRelease: number,
  startedAt: string,
): HistoryEvent => ({
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
    })
  })

  it('falls back to the master cwd when Puma was restarted by hand since', () => {
    expect(findRunningReleases(history, 'S9', 3)).to.deep.equal({
      configRelease: 3,
      bootRelease: 3,
      source: 'process',
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
    })
  })
})
