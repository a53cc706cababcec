import { expect } from 'chai'
import type { HistoryEvent } from '../../../src/release/history.js'
import {
  type DeadlineInputs,
  lastObservedRestart,
  MASTER_ALLOWANCE_MS,
  restartDeadlineMs,
} from '../../../src/restart/deadline.js'

describe('restartDeadlineMs', () => {
  const base: DeadlineInputs = {
    kind: 'hot',
    workers: 2,
    workerShutdownTimeout: 30,
    workerBootTimeout: 60,
    observed: null,
  }
  const M = MASTER_ALLOWANCE_MS
  const rows: { name: string; inputs: Partial<DeadlineInputs>; ms: number }[] = [
    {
      name: 'hot with nothing observed: the master, then one worker_boot_timeout',
      inputs: {},
      ms: M + 60_000,
    },
    {
      name: 'hot after a 5 s hot restart: Puma lets a boot take 60 s, longer than 3 × 5 s',
      inputs: { observed: { kind: 'hot', ms: 5000, workers: 2 } },
      ms: M + 60_000,
    },
    {
      name: 'hot after a 40 s hot restart (a busy host): three times that',
      inputs: { observed: { kind: 'hot', ms: 40_000, workers: 2 } },
      ms: M + 120_000,
    },
    {
      name: 'phased with nothing observed: each worker drains, then boots',
      inputs: { kind: 'phased' },
      ms: M + 2 * (30_000 + 60_000),
    },
    {
      name: 'phased after a 60 s phased restart of 2 workers: 30 s boots, three times each',
      inputs: { kind: 'phased', observed: { kind: 'phased', ms: 60_000, workers: 2 } },
      ms: M + 2 * (30_000 + 90_000),
    },
    {
      name: 'a short worker_boot_timeout with a short observed boot',
      inputs: {
        kind: 'phased',
        workers: 3,
        workerBootTimeout: 10,
        observed: { kind: 'hot', ms: 4000, workers: 3 },
      },
      ms: M + 3 * (30_000 + 12_000),
    },
    {
      name: 'single mode phased (Puma turns it hot): one step',
      inputs: { kind: 'phased', workers: 0 },
      ms: M + 30_000 + 60_000,
    },
    { name: 'server.restart_timeout wins', inputs: { restartTimeout: 45, kind: 'phased' }, ms: 45_000 },
    {
      name: 'a nonsense observation is ignored',
      inputs: { observed: { kind: 'hot', ms: -5, workers: 2 } },
      ms: M + 60_000,
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
