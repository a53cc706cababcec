/**
 * Restarts on a busy machine (issue 10): for each Puma version, the slow-booting big-Gemfile app (two
 * workers, `preload_app! false`) serves HTTP load while a CPU hog spins on every core, and deployer's
 * phased and hot releases are measured next to the same signal sent by hand (kill -USR1 / -USR2) to the
 * same master, in the same run. The done-criterion: deployer's restarts cost no more failed requests
 * than the hand-sent signal on each version.
 */
import { rm } from 'node:fs/promises'
import { writeSlowBootApp } from '../test/support/big-gemfile.js'
import { DEBIAN_PUMA, PUMA_VERSIONS, type PumaVersion } from '../test/support/bundled-puma.js'
import { releaseJson } from '../test/support/cli.js'
import { startCpuHogs } from '../test/support/cpu-hogs.js'
import { DEPLOY_USER, makeWorkspace, type Workspace } from '../test/support/fixture.js'
import { type LoadCounts, startLoad } from '../test/support/load.js'
import { masterPid, PUMA_TOKEN, pumaStats, stopPuma, writePumaConfig } from '../test/support/puma-app.js'
import { findFreePort, startSshd, type TestSshd } from '../test/support/sshd.js'
import { waitFor } from '../test/support/wait.js'

const REPEAT = Number(process.env.BENCH_REPEAT ?? 1)
const CLIENTS = 4

export interface LoadRestartRow {
  puma: PumaVersion
  kind: 'phased' | 'hot'
  by: 'deployer' | 'by hand'
  seconds: number
  counts: LoadCounts
  note: string
}

/** Which versions to run: BENCH_PUMA=6.6.1,8.0.2 narrows it (default: all four). */
export function benchVersions(): PumaVersion[] {
  const wanted = process.env.BENCH_PUMA?.split(',')
  return PUMA_VERSIONS.filter((version) => !wanted || wanted.includes(version))
}

export async function benchRestartsUnderLoad(
  version: PumaVersion,
  sshd: TestSshd,
): Promise<LoadRestartRow[]> {
  const ws = await makeWorkspace(DEPLOY_USER)
  const port = await findFreePort()
  const bundledPuma = version === DEBIAN_PUMA ? undefined : version
  const rows: LoadRestartRow[] = []
  let release = 1
  let threads = 4
  const writeApp = () =>
    writeSlowBootApp(ws, {
      port,
      version: `v${release}`,
      threads,
      queueRequests: false,
      bundledPuma,
      extraConfig: ['preload_app! false'],
    })
  const deploy = async (kind: 'phased' | 'hot') => {
    release += 1
    if (kind === 'hot') threads = threads === 4 ? 3 : 4
    await writeApp()
    const { result, json } = await releaseJson(ws.config, [], { PUMA_TOKEN })
    const host = json.hosts[0]
    const done = host?.restart?.done
    return {
      seconds: (done?.ms ?? Number.NaN) / 1000,
      note: `exit ${result.code}, ${host?.restart?.kind ?? '?'} restart, ${host?.status}`,
    }
  }
  const byHand = async (kind: 'phased' | 'hot') => ({
    seconds: await signalByHand(ws, kind),
    note: kind === 'phased' ? 'kill -USR1' : 'kill -USR2',
  })
  try {
    await writeApp()
    await writePumaConfig(ws, sshd, {
      port,
      healthTimeout: '600s',
      install: 'bundle install --local --quiet',
      bundledPuma,
      restartTimeout: '900s',
    })
    const first = await releaseJson(ws.config, [], { PUMA_TOKEN })
    if (first.result.code !== 0) throw new Error(`first release failed:\n${first.result.stderr}`)
    const hogs = await startCpuHogs({ maxSeconds: 30 * 60 })
    try {
      const measure = async (kind: 'phased' | 'hot', by: 'deployer' | 'by hand') => {
        const load = startLoad(port, CLIENTS, { maxSeconds: 15 * 60, maxRequests: 500_000 })
        await load.warmUp(10)
        const { seconds, note } = by === 'deployer' ? await deploy(kind) : await byHand(kind)
        const counts = await load.stop()
        rows.push({ puma: version, kind, by, seconds, counts, note })
        process.stderr.write(
          `${version} ${kind} ${by}: ${seconds.toFixed(1)} s, ${counts.failed} failed, no answer for ${(counts.longestGapMs / 1000).toFixed(1)} s\n`,
        )
      }
      // Who goes first alternates by round, so neither side always meets a master that just did the
      // same kind of restart, or a machine that just finished the other's work.
      for (let round = 0; round < REPEAT; round++) {
        for (const kind of ['phased', 'hot'] as const) {
          const order =
            round % 2 === 0 ? (['deployer', 'by hand'] as const) : (['by hand', 'deployer'] as const)
          for (const by of order) await measure(kind, by)
        }
      }
    } finally {
      await hogs.stop()
    }
  } finally {
    await stopPuma(ws).catch(() => {})
    await rm(ws.dir, { recursive: true, force: true })
  }
  return rows
}

/**
 * Sends USR1 (phased) or USR2 (hot) to the master by hand and returns the seconds until Puma's stats
 * say both workers of the new phase (or the new master) booted.
 */
export async function signalByHand(ws: Workspace, kind: 'phased' | 'hot'): Promise<number> {
  const before = await pumaStats(ws)
  const started = Date.now()
  process.kill(await masterPid(ws), kind === 'phased' ? 'SIGUSR1' : 'SIGUSR2')
  await waitFor(
    async () => {
      const now = await pumaStats(ws)
      const fresh = kind === 'phased' ? now.phase === before.phase + 1 : now.started_at !== before.started_at
      return (
        fresh &&
        now.worker_status.length === 2 &&
        now.worker_status.every((worker) => worker.booted && worker.phase === now.phase)
      )
    },
    { what: `the ${kind} restart sent by hand to complete`, timeoutMs: 600_000, intervalMs: 100 },
  )
  return (Date.now() - started) / 1000
}

/** Every version in turn over one sshd. */
export async function benchAllRestartsUnderLoad(): Promise<LoadRestartRow[]> {
  const sshd = await startSshd({ user: DEPLOY_USER, createUser: true })
  try {
    const rows: LoadRestartRow[] = []
    for (const version of benchVersions()) rows.push(...(await benchRestartsUnderLoad(version, sshd)))
    return rows
  } finally {
    await sshd.stop()
  }
}

export function renderRestartsUnderLoad(rows: readonly LoadRestartRow[]): string {
  const header = ['Puma', 'restart', 'sent by', 'restart s', 'no answer s', 'requests', 'failed', 'outcome']
  const lines = rows.map((row) => [
    row.puma,
    row.kind,
    row.by,
    row.seconds.toFixed(1),
    (row.counts.longestGapMs / 1000).toFixed(1),
    String(row.counts.ok + row.counts.failed),
    `${row.counts.failed}${row.counts.failed ? ` (${row.counts.errors[0]})` : ''}`,
    row.note,
  ])
  const widths = header.map((title, column) =>
    Math.max(title.length, ...lines.map((line) => (line[column] ?? '').length)),
  )
  const format = (cells: string[]) =>
    `| ${cells.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join(' | ')} |`
  return [format(header), format(widths.map((width) => '-'.repeat(width))), ...lines.map(format)].join('\n')
}

/** Per version and kind: whether deployer failed no more requests than the hand-sent signal. */
export function verdicts(rows: readonly LoadRestartRow[]): string[] {
  const of = (puma: string, kind: string, by: string) =>
    rows.filter((row) => row.puma === puma && row.kind === kind && row.by === by)
  const failed = (selected: readonly LoadRestartRow[]) =>
    selected.reduce((sum, row) => sum + row.counts.failed, 0)
  const outage = (selected: readonly LoadRestartRow[]) =>
    (
      selected.reduce((sum, row) => sum + row.counts.longestGapMs, 0) /
      Math.max(1, selected.length) /
      1000
    ).toFixed(1)
  return [...new Set(rows.map((row) => `${row.puma} ${row.kind}`))].map((key) => {
    const [puma = '', kind = ''] = key.split(' ')
    const ours = of(puma, kind, 'deployer')
    const hand = of(puma, kind, 'by hand')
    const verdict = failed(ours) <= failed(hand) ? 'met' : 'NOT met'
    return `Puma ${puma} ${kind}: deployer ${failed(ours)} failed (no answer for ${outage(ours)} s on average), by hand ${failed(hand)} (${outage(hand)} s): ${verdict}`
  })
}
