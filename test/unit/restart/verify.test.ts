import { expect } from 'chai'
import {
  assessRestart,
  type Baseline,
  type Expectation,
  newObservation,
  type Snapshot,
  type WorkerSnapshot,
} from '../../../src/restart/verify.js'

const R1 = '/srv/shop/releases/1'
const R2 = '/srv/shop/releases/2'
const baseline: Baseline = {
  masterPid: 100,
  masterStartTime: 5000,
  startedAt: 'S0',
  phase: 0,
  workerPids: [101, 102],
}
const worker = (index: number, pid: number, extra: Partial<WorkerSnapshot> = {}): WorkerSnapshot => ({
  index,
  pid,
  phase: 1,
  booted: true,
  cwd: R2,
  ...extra,
})
const snap = (extra: Partial<Snapshot>): Snapshot => ({
  masterPid: 100,
  masterStartTime: 5000,
  settlingMaster: null,
  masterCwd: R2,
  startedAt: 'S0',
  phase: 1,
  oldWorkers: 0,
  bootedWorkers: 2,
  workers: [worker(0, 201), worker(1, 202)],
  ...extra,
})
const phased: Expectation = { kind: 'phased', releasePath: R2, workers: 2 }
const hot: Expectation = { kind: 'hot', releasePath: R2, workers: 2 }

describe('assessRestart', () => {
  const table: {
    name: string
    expectation: Expectation
    snapshot: Snapshot
    state: string
    detail: RegExp
    fellBack?: boolean
  }[] = [
    {
      name: 'phased done: phase + 1, new booted workers in the new release',
      expectation: phased,
      snapshot: snap({}),
      state: 'done',
      detail: /2 workers booted/,
    },
    {
      name: 'phased pending while old workers remain',
      expectation: phased,
      snapshot: snap({ oldWorkers: 1, workers: [worker(0, 201), worker(1, 102, { phase: 0, cwd: R1 })] }),
      state: 'pending',
      detail: /old workers still running/,
    },
    {
      name: 'phased pending before the phase moves',
      expectation: phased,
      snapshot: snap({ phase: 0 }),
      state: 'pending',
      detail: /waiting for 1/,
    },
    {
      name: 'phased fails when the phase jumps by two',
      expectation: phased,
      snapshot: snap({ phase: 2 }),
      state: 'failed',
      detail: /another restart/,
    },
    {
      name: 'phased that fell back to a hot restart is recognised',
      expectation: phased,
      snapshot: snap({
        startedAt: 'S1',
        phase: 0,
        workers: [worker(0, 201, { phase: 0 }), worker(1, 202, { phase: 0 })],
      }),
      state: 'done',
      detail: /fell back to a hot restart/,
      fellBack: true,
    },
    {
      name: 'booted new workers in the old release mean Puma re-entered it (F2)',
      expectation: phased,
      snapshot: snap({ workers: [worker(0, 201, { cwd: R1 }), worker(1, 202, { cwd: R1 })] }),
      state: 'failed',
      detail: /restart directory is not the current path/,
    },
    {
      name: 'start waits for the pidfile to name a live master',
      expectation: { kind: 'start', releasePath: R2, workers: 2 },
      snapshot: snap({ masterPid: null }),
      state: 'pending',
      detail: /waiting for Puma to start/,
    },
    {
      name: 'a full restart waits while the old master still runs',
      expectation: { kind: 'full', releasePath: R2, workers: 2 },
      snapshot: snap({}),
      state: 'pending',
      detail: /old master 100 is still running/,
    },
    {
      name: 'the master gone is a failure',
      expectation: hot,
      snapshot: snap({ masterPid: null }),
      state: 'failed',
      detail: /master is gone/,
    },
    {
      name: 'hot pending until started_at changes',
      expectation: hot,
      snapshot: snap({ startedAt: 'S0', phase: 0 }),
      state: 'pending',
      detail: /re-exec/,
    },
    {
      name: 'hot done with a new started_at and new workers',
      expectation: hot,
      snapshot: snap({
        startedAt: 'S1',
        phase: 0,
        workers: [worker(0, 301, { phase: 0 }), worker(1, 302, { phase: 0 })],
      }),
      state: 'done',
      detail: /2 workers booted/,
    },
    {
      name: 'hot pending while workers boot',
      expectation: hot,
      snapshot: snap({
        startedAt: 'S1',
        phase: 0,
        bootedWorkers: 0,
        workers: [worker(0, 301, { booted: false })],
      }),
      state: 'pending',
      detail: /0 of 2 workers booted/,
    },
    {
      name: 'hot fails when the master pid changes',
      expectation: hot,
      snapshot: snap({ masterPid: 999 }),
      state: 'failed',
      detail: /master changed from pid 100 to 999/,
    },
    {
      name: 'hot fails when the pid is the same but the process is a new one (pid reused)',
      expectation: hot,
      snapshot: snap({ startedAt: 'S1', masterStartTime: 7000 }),
      state: 'failed',
      detail: /pid was reused/,
    },
    {
      name: 'hot waits while the master re-execs without its proctitle (same pid and start time)',
      expectation: hot,
      snapshot: snap({
        masterPid: null,
        settlingMaster: { pid: 100, startTime: 5000 },
        startedAt: null,
        workers: [],
      }),
      state: 'pending',
      detail: /re-executing/,
    },
    {
      name: 'hot fails when the process behind the pidfile is another one without a proctitle',
      expectation: hot,
      snapshot: snap({
        masterPid: null,
        settlingMaster: { pid: 100, startTime: 9999 },
        startedAt: null,
        workers: [],
      }),
      state: 'failed',
      detail: /master is gone/,
    },
    {
      name: 'phased fails when the master is gone',
      expectation: phased,
      snapshot: snap({ masterPid: null, startedAt: null, workers: [] }),
      state: 'failed',
      detail: /master is gone/,
    },
    {
      name: 'without stats, /proc alone decides',
      expectation: phased,
      snapshot: snap({
        startedAt: null,
        phase: null,
        oldWorkers: null,
        bootedWorkers: null,
        workers: [
          worker(0, 201, { booted: null, phase: null }),
          worker(1, 202, { booted: null, phase: null }),
        ],
      }),
      state: 'done',
      detail: /2 workers/,
    },
    {
      name: 'single mode checks the master cwd',
      expectation: { kind: 'hot', releasePath: R2, workers: 0 },
      snapshot: snap({ startedAt: 'S1', workers: [] }),
      state: 'done',
      detail: /single-mode master/,
    },
  ]
  for (const row of table) {
    it(row.name, () => {
      const assessment = assessRestart(row.expectation, baseline, row.snapshot, newObservation())
      expect(assessment.state).to.equal(row.state)
      expect(assessment.detail).to.match(row.detail)
      expect(assessment.fellBackToHot).to.equal(row.fellBack ?? false)
    })
  }

  it('detects a crash loop from distinct pids in a slot that never boots, before any deadline', () => {
    const observation = newObservation()
    const crashing = (pid: number) =>
      snap({
        bootedWorkers: 1,
        oldWorkers: 1,
        workers: [worker(0, pid, { booted: false }), worker(1, 102, { phase: 0, cwd: R1 })],
      })
    expect(assessRestart(phased, baseline, crashing(301), observation).state).to.equal('pending')
    expect(assessRestart(phased, baseline, crashing(302), observation).state).to.equal('pending')
    const third = assessRestart(phased, baseline, crashing(303), observation)
    expect(third.state).to.equal('failed')
    expect(third.detail).to.match(/worker 0 keeps failing to boot \(3 attempts/)
  })
})
