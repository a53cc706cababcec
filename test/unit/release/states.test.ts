import { expect } from 'chai'
import type { Actor, HistoryEvent } from '../../../src/release/history.js'
import { parseHistory } from '../../../src/release/history.js'
import { deriveStates } from '../../../src/release/states.js'

const by: Actor = { user: 'ci', machine: 'runner', pid: 1 }
const time = '2026-11-24T00:00:00.000Z'

describe('deriveStates', () => {
  it('marks current live and the others previous', () => {
    expect(deriveStates([2, 1, 3], 3, [])).to.deep.equal([
      { number: 1, state: 'previous' },
      { number: 2, state: 'previous' },
      { number: 3, state: 'live' },
    ])
  })

  it('marks failed releases and the release a rollback left', () => {
    const history: HistoryEvent[] = [
      { event: 'failed', release: 2, reason: 'health check', time, by },
      { event: 'rollback', from: 3, to: 1, time, by },
    ]
    expect(deriveStates([1, 2, 3], 1, history).map((info) => info.state)).to.deep.equal([
      'live',
      'failed',
      'rolled-back',
    ])
  })

  it('does not mark the older release when rolling forward', () => {
    const history: HistoryEvent[] = [
      { event: 'rollback', from: 2, to: 1, time, by },
      { event: 'rollback', from: 1, to: 2, time, by },
    ]
    expect(deriveStates([1, 2], 2, history).map((info) => info.state)).to.deep.equal(['previous', 'live'])
  })
})

describe('parseHistory', () => {
  it('skips a torn last line left by a killed run', () => {
    const text = `${JSON.stringify({ event: 'prune', deleted: [1], time, by })}\n{"event":"rel`
    expect(parseHistory(text)).to.have.length(1)
  })
})
