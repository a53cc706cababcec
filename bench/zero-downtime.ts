/**
 * Zero downtime, measured: a real two-worker Puma cluster behind the real sshd serves constant HTTP
 * load (wrk) while deployer performs a phased release, a hot release and a self-rollback, next to
 * steady state and next to the same signals sent by hand, all in the same run. Clients that open a
 * connection per request and keep-alive clients are measured separately.
 */
import { rm } from 'node:fs/promises'
import { runCli } from '../test/support/cli.js'
import { DEPLOY_USER, makeWorkspace } from '../test/support/fixture.js'
import { masterPid, PUMA_TOKEN, stopPuma, writePumaApp, writePumaConfig } from '../test/support/puma-app.js'
import { findFreePort, startSshd } from '../test/support/sshd.js'
import { type LoadFigures, startLoad } from './wrk.js'

const LOAD_SECONDS = Number(process.env.BENCH_LOAD_SECONDS ?? 6)
const CONNECTIONS = 16
const REPEAT = Number(process.env.BENCH_REPEAT ?? 1)

interface Row {
  puma: string
  scenario: string
  clients: string
  figures: LoadFigures
  note: string
}

/** Puma configs compared: Puma's defaults, and with `queue_requests false`. */
export const PUMA_VARIANTS = [
  { name: 'queue_requests on (default)', queueRequests: true },
  { name: 'queue_requests false', queueRequests: false },
] as const

export async function benchZeroDowntime(variant: (typeof PUMA_VARIANTS)[number]): Promise<Row[]> {
  const sshd = await startSshd({ user: DEPLOY_USER, createUser: true })
  const ws = await makeWorkspace(DEPLOY_USER)
  const port = await findFreePort()
  const rows: Row[] = []
  let version = 1
  // The thread count in puma.rb: changing it makes a config change (hot restart), keeping it a code change.
  let threads = 4
  const deploy = async (change: { newConfig?: boolean; brokenBoot?: boolean } = {}) => {
    version += 1
    if (change.newConfig) threads = threads === 4 ? 3 : 4
    await writePumaApp(ws, {
      port,
      version: `v${version}`,
      threads,
      brokenBoot: change.brokenBoot,
      queueRequests: variant.queueRequests,
    })
    const result = await runCli(['release', '--json', '--config', ws.config], { env: { PUMA_TOKEN } })
    const json = JSON.parse(result.stdout) as { hosts: { restart?: { kind: string }; status: string }[] }
    return `exit ${result.code}, ${json.hosts[0]?.restart?.kind ?? '?'} restart, ${json.hosts[0]?.status}`
  }
  try {
    await writePumaApp(ws, { port, version: 'v1', queueRequests: variant.queueRequests })
    await writePumaConfig(ws, sshd, { port })
    const first = await runCli(['release', '--config', ws.config], { env: { PUMA_TOKEN } })
    if (first.code !== 0) throw new Error(`first release failed:\n${first.stderr}`)
    for (const connectionPerRequest of [true, false]) {
      const clients = connectionPerRequest ? 'connection per request' : 'keep-alive'
      const measure = async (scenario: string, action: () => Promise<string>) => {
        const load = startLoad({
          url: `http://127.0.0.1:${port}/`,
          seconds: LOAD_SECONDS,
          connections: CONNECTIONS,
          connectionPerRequest,
        })
        // Let the load reach a steady rate before acting (a benchmark, not a test: a fixed warm-up is fine).
        await new Promise((resolve) => setTimeout(resolve, 1000))
        const note = await action()
        rows.push({ puma: variant.name, scenario, clients, figures: await load.done, note })
      }
      const scenarios = (process.env.BENCH_SCENARIOS ?? 'steady,usr1,phased,usr2,hot,rollback').split(',')
      for (let round = 0; round < REPEAT; round++) {
        for (const scenario of scenarios) {
          if (scenario === 'steady') await measure('steady state', async () => 'no action')
          if (scenario === 'usr1')
            await measure('USR1 sent by hand', async () => {
              process.kill(await masterPid(ws), 'SIGUSR1')
              return 'kill -USR1'
            })
          if (scenario === 'phased') await measure('deployer release: phased (code change)', () => deploy())
          if (scenario === 'usr2')
            await measure('USR2 sent by hand', async () => {
              process.kill(await masterPid(ws), 'SIGUSR2')
              return 'kill -USR2'
            })
          if (scenario === 'hot')
            await measure('deployer release: hot (puma.rb change)', () => deploy({ newConfig: true }))
          if (scenario === 'rollback')
            await measure('deployer release: self-rollback (boot fails)', () => deploy({ brokenBoot: true }))
        }
      }
    }
  } finally {
    await stopPuma(ws).catch(() => {})
    await rm(ws.dir, { recursive: true, force: true })
    await sshd.stop()
  }
  return rows
}

export function renderZeroDowntime(rows: readonly Row[]): string {
  const header = ['puma.rb', 'clients', 'scenario', 'requests', 'failed', 'p50 ms', 'p99 ms', 'deployer']
  const lines = rows.map((row) => [
    row.puma,
    row.clients,
    row.scenario,
    String(row.figures.requests),
    `${row.figures.failed}${row.figures.failed > 0 ? ` (${describeFailures(row.figures)})` : ''}`,
    row.figures.p50Ms.toFixed(1),
    row.figures.p99Ms.toFixed(1),
    row.note,
  ])
  const widths = header.map((title, column) =>
    Math.max(title.length, ...lines.map((line) => (line[column] ?? '').length)),
  )
  const format = (cells: string[]) =>
    `| ${cells.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join(' | ')} |`
  return [format(header), format(widths.map((width) => '-'.repeat(width))), ...lines.map(format)].join('\n')
}

function describeFailures(figures: LoadFigures): string {
  const { connect, read, write, timeout } = figures.socketErrors
  return [
    connect && `connect ${connect}`,
    read && `read ${read}`,
    write && `write ${write}`,
    timeout && `timeout ${timeout}`,
    figures.non2xx && `non-2xx ${figures.non2xx}`,
  ]
    .filter(Boolean)
    .join(', ')
}
