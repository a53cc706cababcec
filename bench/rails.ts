/**
 * A real Rails app (Debian's Rails 6.1.7 and Puma 5.6.5, `bundle exec puma`, two workers, production)
 * released by deployer over the real sshd: how long its phased and hot restarts take (next to the same
 * signals sent by hand), and how long a full restart without socket activation refuses connections,
 * seen by a client that calls connect() on the port in a loop during `deployer release --restart full`.
 */

import { rm, writeFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { join } from 'node:path'
import { releaseJson } from '../test/support/cli.js'
import { DEPLOY_USER, makeWorkspace } from '../test/support/fixture.js'
import { fetchApp, PUMA_TOKEN, stopPuma, writePumaConfig } from '../test/support/puma-app.js'
import { RAILS_ENV_FILE, writeRailsApp } from '../test/support/rails-app.js'
import { findFreePort, startSshd } from '../test/support/sshd.js'
import { signalByHand } from './restarts-under-load.js'

const ROUNDS = Number(process.env.BENCH_REPEAT ?? 3)

export interface RailsRow {
  scenario: string
  /** Seconds per round. */
  seconds: number[]
  /** Full restarts: seconds of refused connections per round; and without any HTTP answer. */
  refused?: number[]
  unanswered?: number[]
  note: string
}

/** What a connect() loop saw: the longest run of refusals, from the first refused to the next accept. */
interface Outage {
  attempts: number
  refusedAttempts: number
  longestRefusedMs: number
  /** Longest time between two successful HTTP answers (requests in a second loop). */
  longestUnansweredMs: number
}

/**
 * Calls connect() on 127.0.0.1:`port` back to back (each connection closed at once) and, in a second
 * loop, GETs the app, until `stop()` or `maxSeconds`.
 */
function hammer(port: number, maxSeconds = 600): { stop(): Promise<Outage> } {
  const endsAt = Date.now() + maxSeconds * 1000
  let stopping = false
  const done = () => stopping || Date.now() >= endsAt
  const outage: Outage = { attempts: 0, refusedAttempts: 0, longestRefusedMs: 0, longestUnansweredMs: 0 }
  const connects = (async () => {
    let refusedSince: number | null = null
    while (!done()) {
      outage.attempts++
      const accepted = await new Promise<boolean>((resolve) => {
        const socket = connect({ host: '127.0.0.1', port })
        socket.once('connect', () => {
          socket.destroy()
          resolve(true)
        })
        socket.once('error', () => resolve(false))
      })
      const now = Date.now()
      if (accepted) {
        if (refusedSince !== null)
          outage.longestRefusedMs = Math.max(outage.longestRefusedMs, now - refusedSince)
        refusedSince = null
      } else {
        outage.refusedAttempts++
        refusedSince ??= now
        // A refused connect returns at once: pace the loop to about a thousand attempts a second.
        await new Promise((resolve) => setTimeout(resolve, 1))
      }
    }
  })()
  const gets = (async () => {
    let lastAnswer = Date.now()
    while (!done()) {
      const answered = await fetchApp(port).then(
        () => true,
        () => false,
      )
      const now = Date.now()
      if (answered) {
        outage.longestUnansweredMs = Math.max(outage.longestUnansweredMs, now - lastAnswer)
        lastAnswer = now
      } else await new Promise((resolve) => setTimeout(resolve, 5))
    }
  })()
  return {
    async stop() {
      stopping = true
      await Promise.all([connects, gets])
      return outage
    },
  }
}

export async function benchRails(): Promise<RailsRow[]> {
  const sshd = await startSshd({ user: DEPLOY_USER, createUser: true })
  const ws = await makeWorkspace(DEPLOY_USER)
  const port = await findFreePort()
  let version = 1
  let threads = 4
  const write = () => writeRailsApp(ws, { port, version: `v${version}`, threads, queueRequests: false })
  const deploy = async (kind: 'phased' | 'hot' | 'full') => {
    version += 1
    if (kind === 'hot') threads = threads === 4 ? 3 : 4
    await write()
    const { result, json } = await releaseJson(ws.config, kind === 'full' ? ['--restart', 'full'] : [], {
      PUMA_TOKEN,
    })
    const host = json.hosts[0]
    if (result.code !== 0 || host?.restart?.kind !== kind)
      throw new Error(
        `the ${kind} release came out as ${host?.restart?.kind} (exit ${result.code}):\n${result.stderr}`,
      )
    return (host.restart.done?.ms ?? Number.NaN) / 1000
  }
  const rows: RailsRow[] = [
    { scenario: 'deployer release: phased (code change)', seconds: [], note: 'USR1' },
    { scenario: 'kill -USR1 by hand (reference)', seconds: [], note: '' },
    { scenario: 'deployer release: hot (puma.rb change)', seconds: [], note: 'USR2' },
    { scenario: 'kill -USR2 by hand (reference)', seconds: [], note: '' },
    {
      scenario: 'deployer release --restart full, no socket activation',
      seconds: [],
      refused: [],
      unanswered: [],
      note: 'TERM, wait, server.start',
    },
  ]
  const [phased, usr1, hot, usr2, full] = rows as [RailsRow, RailsRow, RailsRow, RailsRow, RailsRow]
  try {
    const envFile = join(ws.dir, 'rails.env')
    await writeFile(envFile, RAILS_ENV_FILE)
    await write()
    await writePumaConfig(ws, sshd, {
      port,
      envFile,
      bundledPuma: '5.6.5',
      install: 'bundle check',
      healthTimeout: '300s',
      restartTimeout: '900s',
    })
    const first = await releaseJson(ws.config, [], { PUMA_TOKEN })
    if (first.result.code !== 0) throw new Error(`first release failed:\n${first.result.stderr}`)
    for (let round = 0; round < ROUNDS; round++) {
      phased.seconds.push(await deploy('phased'))
      usr1.seconds.push(await signalByHand(ws, 'phased'))
      hot.seconds.push(await deploy('hot'))
      usr2.seconds.push(await signalByHand(ws, 'hot'))
      const watch = hammer(port)
      full.seconds.push(await deploy('full'))
      const outage = await watch.stop()
      full.refused?.push(outage.longestRefusedMs / 1000)
      full.unanswered?.push(outage.longestUnansweredMs / 1000)
      process.stderr.write(
        `rails round ${round + 1}: full restart refused connections for ${outage.longestRefusedMs} ms (${outage.refusedAttempts} of ${outage.attempts} connects)\n`,
      )
    }
  } finally {
    await stopPuma(ws).catch(() => {})
    await rm(ws.dir, { recursive: true, force: true })
    await sshd.stop()
  }
  return rows
}

const median = (values: readonly number[]) => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2
    ? (sorted[middle] ?? Number.NaN)
    : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2
}

export function renderRails(rows: readonly RailsRow[]): string {
  const header = [
    'scenario',
    'restart s (median)',
    'each round',
    'refused s (median, max)',
    'no answer s (median)',
  ]
  const list = (values: readonly number[]) => values.map((value) => value.toFixed(2)).join(', ')
  const lines = rows.map((row) => [
    row.scenario,
    median(row.seconds).toFixed(2),
    list(row.seconds),
    row.refused ? `${median(row.refused).toFixed(2)}, ${Math.max(...row.refused).toFixed(2)}` : '',
    row.unanswered ? median(row.unanswered).toFixed(2) : '',
  ])
  const widths = header.map((title, column) =>
    Math.max(title.length, ...lines.map((line) => (line[column] ?? '').length)),
  )
  const format = (cells: string[]) =>
    `| ${cells.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join(' | ')} |`
  return [format(header), format(widths.map((width) => '-'.repeat(width))), ...lines.map(format)].join('\n')
}
