/**
 * Start-up, measured: how long `deployer --help` and `deployer releases` (against a local host) take
 * as shipped (one bundled module, and the single executable) next to the same commands run from the
 * unbundled compiler output through node_modules with oclif's manifest (how deployer ran before the
 * bundle), and `node -e 0`, Node's own start-up. Medians of interleaved runs in one run.
 */
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { cliEnv } from '../test/support/cli.js'
import { buildSea, ROOT } from '../test/support/package.js'

const run = promisify(execFile)
const REPEAT = Number(process.env.BENCH_REPEAT ?? 15)

export interface StartupRow {
  variant: string
  /** Median milliseconds per job, in JOBS order. */
  medians: number[]
}

const JOBS = ['node -e 0', 'deployer --help', 'deployer releases (local host)'] as const

/**
 * A directory that runs the compiler's output (dist/commands, dist/src) the way the package did before
 * the bundle: oclif finds the commands in dist/commands through oclif.manifest.json, every module
 * loaded from its own file, the libraries from node_modules.
 */
async function unbundledRoot(dir: string): Promise<string> {
  const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8'))
  await writeFile(
    join(dir, 'package.json'),
    JSON.stringify({
      name: pkg.name,
      version: pkg.version,
      type: 'module',
      oclif: { ...pkg.oclif, commands: './dist/commands' },
    }),
  )
  await symlink(join(ROOT, 'dist'), join(dir, 'dist'))
  await symlink(join(ROOT, 'node_modules'), join(dir, 'node_modules'))
  await writeFile(
    join(dir, 'run.js'),
    "import { execute } from '@oclif/core'\nawait execute({ dir: import.meta.url })\n",
  )
  await run(join(ROOT, 'node_modules', '.bin', 'oclif'), ['manifest'], {
    cwd: dir,
    env: { ...process.env, OCLIF_SKIP_NEW_VERSION_CHECK: 'true' },
  })
  return join(dir, 'run.js')
}

/** A deploy_to with one release on the local host, for `releases` to read. */
async function localConfig(dir: string, bin: string): Promise<string> {
  const source = join(dir, 'app')
  await mkdir(source)
  await writeFile(join(source, 'config.ru'), 'run ->(_env) { [200, {}, ["ok"]] }\n')
  const config = join(dir, 'deployer.yml')
  await writeFile(
    config,
    `app: bench\nsource: ${source}\ndeploy_to: ${join(dir, 'srv')}\nhosts: [local]\ninstall:\n  command: "true"\n`,
  )
  await run(process.execPath, [bin, 'release', '--config', config], { env: cliEnv() })
  return config
}

async function timeOnce(command: string, args: readonly string[]): Promise<number> {
  const started = process.hrtime.bigint()
  await run(command, args, { env: cliEnv() })
  return Number(process.hrtime.bigint() - started) / 1e6
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2
}

export async function benchStartup(): Promise<StartupRow[]> {
  const dir = await mkdtemp(join(tmpdir(), 'deployer-bench-startup-'))
  try {
    const bundled = join(ROOT, 'bin', 'run.js')
    const unbundled = await unbundledRoot(await mkdtemp(join(dir, 'unbundled-')))
    const sea = existsSync(join(ROOT, 'dist', 'deployer.cjs')) ? await buildSea() : undefined
    const config = await localConfig(dir, bundled)
    type Argv = (args: string[]) => [string, string[]]
    const node =
      (script: string): Argv =>
      (args) => [process.execPath, [script, ...args]]
    const variants: { variant: string; argv: Argv }[] = [
      { variant: 'before: compiler output + node_modules (manifest)', argv: node(unbundled) },
      { variant: 'after: one bundled module (npm package)', argv: node(bundled) },
      ...(sea ? [{ variant: 'after: single executable', argv: ((args) => [sea, args]) as Argv }] : []),
    ]
    const jobArgs: string[][] = [[], ['--help'], ['releases', '--config', config]]
    const samples = variants.map(() => JOBS.map(() => [] as number[]))
    for (let round = 0; round < REPEAT; round++) {
      for (const [v, variant] of variants.entries()) {
        for (const [j, args] of jobArgs.entries()) {
          // `node -e 0` is the same for every variant: Node's own start-up, the floor.
          const [command, argv] = j === 0 ? [process.execPath, ['-e', '0']] : variant.argv(args)
          samples[v]?.[j]?.push(await timeOnce(command, argv))
        }
      }
    }
    return variants.map((variant, v) => ({
      variant: variant.variant,
      medians: JOBS.map((_, j) => median(samples[v]?.[j] ?? [])),
    }))
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

export function renderStartup(rows: readonly StartupRow[]): string {
  const floor = median(rows.map((row) => row.medians[0] ?? 0))
  const lines = [
    `| variant | ${JOBS.slice(1).join(' | ')} |`,
    `| --- | ${JOBS.slice(1)
      .map(() => '---:')
      .join(' | ')} |`,
    ...rows.map(
      (row) =>
        `| ${row.variant} | ${row.medians
          .slice(1)
          .map((ms) => `${Math.round(ms)} ms`)
          .join(' | ')} |`,
    ),
  ]
  return `${lines.join('\n')}\n\n\`node -e 0\` (Node's own start-up, measured between the runs): ${Math.round(floor)} ms; medians of ${REPEAT} interleaved runs each.`
}
