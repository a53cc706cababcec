import { expect } from 'chai'
import type { HistoryEvent } from '../../../src/release/history.js'
import {
  type DeadlineInputs,
  lastObservedRestart,
  MIN_RESTART_DEADLINE_MS,
  restartDeadlineMs,
} from '../../../src/restart/deadline.js'

describe('restartDeadlineMs', () => {
  const base: DeadlineInputs = { kind: 'hot', workers: 2, workerShutdownTimeout: 30, observed: null }
  const rows: { name: string; inputs: Partial<DeadlineInputs>; ms: number }[] = [
    { name: 'hot with nothing observed: the floor', inputs: {}, ms: MIN_RESTART_DEADLINE_MS },
    {
      name: 'hot after a 5 s hot restart: floor + 3 × 5 s',
      inputs: { observed: { kind: 'hot', ms: 5000, workers: 2 } },
      ms: MIN_RESTART_DEADLINE_MS + 15_000,
    },
    {
      name: 'phased with nothing observed: floor + each worker draining',
      inputs: { kind: 'phased' },
      ms: MIN_RESTART_DEADLINE_MS + 2 * 30_000,
    },
    {
      name: 'phased after an 18 s phased restart of 2 workers: 9 s boots, three times each',
      inputs: { kind: 'phased', observed: { kind: 'phased', ms: 18_000, workers: 2 } },
      ms: MIN_RESTART_DEADLINE_MS + 2 * (30_000 + 27_000),
    },
    {
      name: 'phased after a hot restart: the hot boot counts per worker',
      inputs: { kind: 'phased', workers: 3, observed: { kind: 'hot', ms: 4000, workers: 3 } },
      ms: MIN_RESTART_DEADLINE_MS + 3 * (30_000 + 12_000),
    },
    {
      name: 'single mode phased (Puma turns it hot): one step',
      inputs: { kind: 'phased', workers: 0 },
      ms: MIN_RESTART_DEADLINE_MS + 30_000,
    },
    { name: 'server.restart_timeout wins', inputs: { restartTimeout: 45, kind: 'phased' }, ms: 45_000 },
    {
      name: 'a nonsense observation is ignored',
      inputs: { observed: { kind: 'hot', ms: -5, workers: 2 } },
      ms: MIN_RESTART_DEADLINE_MS,
    },
  ]
  for (const row of rows) {
    it(row.name, () => {
      expect(restartDeadlineMs({ ...base, ...row.inputs })).to.equal(row.ms)
    })
  }
})

describe('lastObservedRestart', () => {
  const by = { user: 'u', machine: 'm', pid: 1 }
  const restart = (ms: number | undefined, verified?: false): HistoryEvent => ({
    event: 'restart',
    release: 3,
    kind: 'hot',
    configRelease: 3,
    bootRelease: 1,
    startedAt: 'S',
    reasons: [],
    time: 't',
    by,
    ...(ms === undefined ? {} : { ms, workers: 2 }),
    ...(verified === false ? { verified } : {}),
  })

  it('takes the newest verified restart that recorded its duration', () => {
    const history = [restart(4000), restart(undefined), restart(9000, false)]
    expect(lastObservedRestart(history)).to.deep.equal({ kind: 'hot', ms: 4000, workers: 2 })
  })

  it('has nothing to go by on a host without recorded durations', () => {
    expect(lastObservedRestart([restart(undefined)])).to.equal(null)
  })
})
