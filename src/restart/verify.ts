import type { ServerProbe } from './probe-facts.js'

/** One look at the server during verification, reduced to what the checks need. */
export interface Snapshot {
  /** null when no Puma master is running. */
  masterPid: number | null
  /** The running master's start time (/proc/PID/stat); null when unknown. */
  masterStartTime: number | null
  /**
   * A live process behind the pidfile that does not show Puma's proctitle (yet): a master re-exec'ing
   * after USR2. Judged against the baseline's identity; null when there is none.
   */
  settlingMaster: { pid: number; startTime: number | null } | null
  masterCwd: string | null
  /** From Puma's stats; null without a control app (then only /proc is checked). */
  startedAt: string | null
  phase: number | null
  oldWorkers: number | null
  bootedWorkers: number | null
  workers: WorkerSnapshot[]
}

export interface WorkerSnapshot {
  index: number | null
  pid: number
  phase: number | null
  booted: boolean | null
  /** The worker's resolved cwd, from /proc. */
  cwd: string | null
}

export type VerifiedKind = 'phased' | 'hot' | 'full' | 'start'

export interface Expectation {
  kind: VerifiedKind
  /** The new release's real path: every worker (or a single-mode master) must run there. */
  releasePath: string
  /** Expected worker count; 0 in single mode. */
  workers: number
}

/** What the server looked like right before the signal. */
export interface Baseline {
  masterPid: number | null
  /** The master's start time: with the pid, what identifies it across a re-exec (null when unknown). */
  masterStartTime: number | null
  startedAt: string | null
  phase: number | null
  workerPids: number[]
}

/** Carried from one look to the next, to recognise a crash loop before the deadline. */
export interface Observation {
  /** Distinct pids seen per worker slot while it was not booted. */
  unbootedPids: Map<string, Set<number>>
  /** Distinct new worker pids seen at all. */
  newPids: Set<number>
}

export type Assessment =
  | { state: 'done'; detail: string; fellBackToHot: boolean }
  | { state: 'pending'; detail: string; fellBackToHot: boolean }
  | { state: 'failed'; detail: string; fellBackToHot: boolean }

export function newObservation(): Observation {
  return { unbootedPids: new Map(), newPids: new Set() }
}

/** A worker slot whose boot failed this many times (distinct pids) is a crash loop, not a slow boot. */
export const CRASH_LOOP_PIDS = 3

/**
 * Judges one snapshot against what the restart should have produced (docs/puma-restarts.md §5):
 * phased: same `started_at` (else Puma fell back to a hot restart), phase + 1, no old workers, every worker
 * booted in the new phase with a new pid; hot: same master pid, new `started_at`, all workers new and
 * booted; start/full: a master and booted workers. In every case each worker's cwd is the new release,
 * because stats alone look perfect when Puma re-entered the old release (F2).
 */
export function assessRestart(
  expectation: Expectation,
  baseline: Baseline,
  snapshot: Snapshot,
  observation: Observation,
): Assessment {
  let kind = expectation.kind
  let fellBackToHot = false
  if (snapshot.masterPid === null) {
    // A starting Puma writes its pidfile only once it runs; until then there is nothing to judge.
    if (kind === 'start' || kind === 'full')
      return { state: 'pending', detail: 'waiting for Puma to start', fellBackToHot }
    // USR2 re-execs the master in place: for a while its proctitle is not Puma's. Same pid and start
    // time is the same process, so it is restarting, not gone.
    if (snapshot.settlingMaster && isBaselineMaster(baseline, snapshot.settlingMaster)) {
      return {
        state: 'pending',
        detail: `the master (pid ${snapshot.settlingMaster.pid}) is re-executing and has not set its proctitle yet`,
        fellBackToHot,
      }
    }
    return {
      state: 'failed',
      detail: 'the Puma master is gone (no live process behind the pidfile)',
      fellBackToHot,
    }
  }
  if ((kind === 'start' || kind === 'full') && snapshot.masterPid === baseline.masterPid) {
    return {
      state: 'pending',
      detail: `the old master ${baseline.masterPid} is still running`,
      fellBackToHot,
    }
  }
  if (
    kind !== 'start' &&
    kind !== 'full' &&
    baseline.masterPid !== null &&
    !isBaselineMaster(baseline, { pid: snapshot.masterPid, startTime: snapshot.masterStartTime })
  ) {
    const reused = snapshot.masterPid === baseline.masterPid ? ' (the pid was reused by a new process)' : ''
    return {
      state: 'failed',
      detail: `the master changed from pid ${baseline.masterPid} to ${snapshot.masterPid}${reused} during a ${kind} restart`,
      fellBackToHot,
    }
  }
  if (
    kind === 'phased' &&
    snapshot.startedAt !== null &&
    baseline.startedAt !== null &&
    snapshot.startedAt !== baseline.startedAt
  ) {
    // Puma refused the phased restart (preload, single mode) and restarted hot instead (F1).
    kind = 'hot'
    fellBackToHot = true
  }
  const result = (state: Assessment['state'], detail: string): Assessment => ({
    state,
    detail,
    fellBackToHot,
  })

  const oldPids = new Set(baseline.workerPids)
  for (const worker of snapshot.workers) {
    if (!oldPids.has(worker.pid)) observation.newPids.add(worker.pid)
    if (worker.booted === false && !oldPids.has(worker.pid)) {
      const slot = String(worker.index ?? 'any')
      const pids = observation.unbootedPids.get(slot) ?? new Set<number>()
      pids.add(worker.pid)
      observation.unbootedPids.set(slot, pids)
      if (pids.size >= CRASH_LOOP_PIDS) {
        return result(
          'failed',
          `worker ${slot} keeps failing to boot (${pids.size} attempts: pids ${[...pids].join(', ')})`,
        )
      }
    }
  }
  if (
    snapshot.startedAt === null &&
    observation.newPids.size >= CRASH_LOOP_PIDS * Math.max(1, expectation.workers) + expectation.workers
  ) {
    return result(
      'failed',
      `workers keep being replaced (${observation.newPids.size} new pids): they crash at boot`,
    )
  }

  if (expectation.workers === 0) {
    if (kind === 'hot' && snapshot.startedAt !== null && snapshot.startedAt === baseline.startedAt)
      return result('pending', 'waiting for the master to re-exec')
    if (snapshot.masterCwd !== expectation.releasePath)
      return result('pending', `the master runs in ${snapshot.masterCwd ?? '?'}`)
    return result('done', 'the single-mode master runs the new release')
  }

  if (snapshot.startedAt !== null) {
    if (kind === 'phased') {
      const wanted = (baseline.phase ?? 0) + 1
      if (snapshot.phase !== null && snapshot.phase > wanted) {
        return result(
          'failed',
          `phase jumped to ${snapshot.phase} (expected ${wanted}): another restart was signalled meanwhile`,
        )
      }
      if (snapshot.phase !== wanted)
        return result('pending', `phase ${snapshot.phase ?? '?'}, waiting for ${wanted}`)
      if ((snapshot.oldWorkers ?? 0) > 0)
        return result('pending', `${snapshot.oldWorkers} old workers still running`)
    } else if (kind === 'hot' && snapshot.startedAt === baseline.startedAt) {
      return result('pending', 'waiting for the master to re-exec')
    }
    if ((snapshot.bootedWorkers ?? 0) < expectation.workers) {
      return result('pending', `${snapshot.bootedWorkers ?? 0} of ${expectation.workers} workers booted`)
    }
  }
  const workers = snapshot.workers
  if (workers.length < expectation.workers)
    return result('pending', `${workers.length} of ${expectation.workers} workers running`)
  const stale = workers.filter((worker) => oldPids.has(worker.pid))
  if (stale.length > 0)
    return result('pending', `old workers ${stale.map((worker) => worker.pid).join(', ')} still running`)
  const unbooted = workers.filter((worker) => worker.booted === false)
  if (unbooted.length > 0) return result('pending', `${unbooted.length} workers still booting`)
  const elsewhere = workers.filter((worker) => worker.cwd !== expectation.releasePath)
  if (elsewhere.length > 0) {
    // Booted, new, and still not in the new release: Puma re-entered the old one (F2). Waiting will not help.
    const where = [...new Set(elsewhere.map((worker) => worker.cwd ?? '?'))].join(', ')
    if (elsewhere.every((worker) => worker.booted !== false)) {
      return result(
        'failed',
        `new workers run in ${where}, not in ${expectation.releasePath}: Puma's restart directory is not the current path`,
      )
    }
    return result('pending', `workers in ${where}`)
  }
  return result(
    'done',
    `${workers.length} workers booted in ${expectation.releasePath}${fellBackToHot ? ' (Puma fell back to a hot restart)' : ''}`,
  )
}

/** Whether `seen` is the baseline's master: the same pid and, where both are known, the same start time. */
export function isBaselineMaster(
  baseline: Pick<Baseline, 'masterPid' | 'masterStartTime'>,
  seen: { pid: number; startTime: number | null },
): boolean {
  if (baseline.masterPid === null || seen.pid !== baseline.masterPid) return false
  return (
    baseline.masterStartTime === null ||
    seen.startTime === null ||
    seen.startTime === baseline.masterStartTime
  )
}

/** What a probe saw, as assessRestart compares it with the baseline. */
export function snapshotOf(probe: ServerProbe): Snapshot {
  const status = new Map((probe.stats?.workerStatus ?? []).map((entry) => [entry.pid, entry]))
  const master = probe.master
  return {
    masterPid: master.running ? master.pid : null,
    masterStartTime: master.running ? (master.startTime ?? null) : null,
    settlingMaster:
      master.settling && master.pid !== null
        ? { pid: master.pid, startTime: master.startTime ?? null }
        : null,
    masterCwd: probe.master.cwd ?? null,
    startedAt: probe.stats?.startedAt ?? null,
    phase: probe.stats?.phase ?? null,
    oldWorkers: probe.stats?.oldWorkers ?? null,
    bootedWorkers: probe.stats?.bootedWorkers ?? null,
    workers: [
      ...probe.workers.map((worker) => {
        const entry = status.get(worker.pid)
        return {
          index: entry?.index ?? worker.index ?? null,
          pid: worker.pid,
          phase: entry?.phase ?? null,
          booted: entry ? entry.booted : null,
          cwd: worker.cwd ?? null,
        }
      }),
      // Workers Puma knows about but that /proc no longer shows (crashed between the two reads).
      ...(probe.stats?.workerStatus ?? [])
        .filter(
          (entry) =>
            entry.pid !== null && !probe.workers.some((worker) => worker.pid === entry.pid) && !entry.booted,
        )
        .map((entry) => ({
          index: entry.index,
          pid: entry.pid as number,
          phase: entry.phase,
          booted: false,
          cwd: null,
        })),
    ],
  }
}
