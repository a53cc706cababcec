/**
 * Start-up, measured: how long `deployer --help` and `deployer releases` (against a local host) take
 * as shipped (one bundled module, and the single executable) next to the same commands run from the
 * unbundled compiler output through node_modules with oclif's manifest (how deployer ran before the
 * bundle), and `node -e 0`, Node's own start-up. Medians of interleaved runs in one run, of the CPU
 * time the process used (user + system: steady on a shared, busy machine) and of the wall time.
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

/** One run: the CPU time (user + system) the process and its children used, and the wall time. */
interface Sample {
  cpu: number
  wall: number
}

export interface StartupRow {
  variant: string
  /** Median milliseconds per job, in JOBS order. */
  cpu: number[]
  wall: number[]
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
      files: ['dist'],
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

/** Runs the command under bash, whose `times` prints its children's user and system time. */
async function timeOnce(command: string, args: readonly string[]): Promise<Sample> {
  const started = process.hrtime.bigint()
  const { stdout } = await run(
    'bash',
    ['-c', '"$@" >/dev/null 2>&1 || exit 1; times', 'bash', command, ...args],
    {
      env: cliEnv(),
    },
  )
  const wall = Number(process.hrtime.bigint() - started) / 1e6
  // Two lines, the shell's own and its children's: `0m0.301s 0m0.042s`.
  const children = stdout.trim().split('\n').at(-1) ?? ''
  const seconds = [...children.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]))
  if (seconds.length !== 2) throw new Error(`cannot read the times of ${command}: ${stdout}`)
  return { cpu: ((seconds[0] as number) + (seconds[1] as number)) * 1000, wall }
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
    const samples = variants.map(() => JOBS.map(() => [] as Sample[]))
    for (let round = 0; round < REPEAT; round++) {
      for (const [v, variant] of variants.entries()) {
        for (const [j, args] of jobArgs.entries()) {
          // `node -e 0` is the same for every variant: Node's own start-up, the floor.
          const [command, argv] = j === 0 ? [process.execPath, ['-e', '0']] : variant.argv(args)
          samples[v]?.[j]?.push(await timeOnce(command, argv))
        }
      }
    }
    const medianOf = (v: number, j: number, key: keyof Sample) =>
      median((samples[v]?.[j] ?? []).map((sample) => sample[key]))
    return variants.map((variant, v) => ({
      variant: variant.variant,
      cpu: JOBS.map((_, j) => medianOf(v, j, 'cpu')),
      wall: JOBS.map((_, j) => medianOf(v, j, 'wall')),
    }))
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

export function renderStartup(rows: readonly StartupRow[]): string {
  const floor = (key: 'cpu' | 'wall') => Math.round(median(rows.map((row) => row[key][0] ?? 0)))
  const jobs = JOBS.slice(1)
  const lines = [
    `| variant | ${jobs.map((job) => `${job}: CPU (wall)`).join(' | ')} |`,
    `| --- | ${jobs.map(() => '---:').join(' | ')} |`,
    ...rows.map(
      (row) =>
        `| ${row.variant} | ${jobs
          .map((_, j) => `${Math.round(row.cpu[j + 1] ?? 0)} ms (${Math.round(row.wall[j + 1] ?? 0)} ms)`)
          .join(' | ')} |`,
    ),
  ]
  return `${lines.join('\n')}\n\n\`node -e 0\` (Node's own start-up, run between the others): ${floor('cpu')} ms CPU (${floor('wall')} ms wall). Medians of ${REPEAT} interleaved runs each; CPU = user + system time of the process.`
}
