import { expect } from 'chai'
import { type Clock, type Look, pollUntil } from '../../../src/restart/poll.js'

/** A clock that only moves when something sleeps on it. */
function fakeClock(): Clock & { slept: number[] } {
  let now = 1_000
  const slept: number[] = []
  return {
    slept,
    now: () => now,
    sleep: async (ms) => {
      slept.push(ms)
      now += ms
    },
  }
}

describe('pollUntil', () => {
  const looks = <T>(...answers: Look<T>[]) => {
    let index = 0
    return async () => answers[Math.min(index++, answers.length - 1)] as Look<T>
  }

  it('returns the value of the first look that is done, waiting longer between later looks', async () => {
    const clock = fakeClock()
    const result = await pollUntil(
      { deadlineMs: 10_000, intervalMs: 250, clock },
      looks<number>(
        { state: 'pending', detail: 'booting' },
        { state: 'pending', detail: 'booting' },
        { state: 'pending', detail: 'booting' },
        { state: 'pending', detail: 'booting' },
        { state: 'pending', detail: 'booting' },
        { state: 'done', value: 7 },
      ),
    )
    expect(result).to.deep.equal({ ok: true, value: 7 })
    expect(clock.slept).to.deep.equal([250, 375, 563, 845, 1000])
  })

  it('stops at once on a look that failed for good, with its detail', async () => {
    const clock = fakeClock()
    const result = await pollUntil(
      { deadlineMs: 10_000, intervalMs: 250, clock },
      looks<number>({ state: 'pending', detail: 'booting' }, { state: 'failed', detail: 'crash loop' }),
    )
    expect(result).to.deep.equal({ ok: false, detail: 'crash loop', timedOut: false })
  })

  it('gives up after the deadline with the last thing seen, having looked once past it', async () => {
    const clock = fakeClock()
    const result = await pollUntil(
      { deadlineMs: 1_000, intervalMs: 300, maxIntervalMs: 300, clock },
      looks<number>({ state: 'pending', detail: 'still 1 of 2 booted' }),
    )
    expect(result).to.deep.equal({ ok: false, detail: 'still 1 of 2 booted', timedOut: true })
    // Looks at 0, 300, 600, 900 and 1200 ms: the last one is past the deadline.
    expect(clock.slept).to.have.length(4)
  })

  it('rejects when aborted, before looking again', async () => {
    const controller = new AbortController()
    let count = 0
    const clock = fakeClock()
    const polling = pollUntil(
      { deadlineMs: 10_000, intervalMs: 100, clock, signal: controller.signal },
      async () => {
        count += 1
        if (count === 2) controller.abort(new Error('interrupted'))
        return { state: 'pending', detail: 'waiting' }
      },
    )
    await polling.then(
      () => expect.fail('should reject'),
      (error: Error) => expect(error.message).to.equal('interrupted'),
    )
    expect(count).to.equal(2)
  })
})
