/**
 * Fast releases, measured: a synthetic app of about 5,000 files and 50 MB deployed over the real sshd
 * on 127.0.0.1, next to the same job done by hand over the same SSH server (tar over ssh for a first
 * deploy, rsync --link-dest for a repeat deploy), medians of several repetitions in one run.
 */
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { runCli } from '../test/support/cli.js'
import { DEPLOY_USER, makeWorkspace, type Workspace } from '../test/support/fixture.js'
import { startSshd, type TestSshd } from '../test/support/sshd.js'

const run = promisify(execFile)
const REPEAT = Number(process.env.BENCH_REPEAT ?? 5)
const FILES = 5000
// Bundler's settings from the environment, so `bundle check` sees what `bundle install` wrote.
const BUNDLER = 'BUNDLE_DEPLOYMENT=true BUNDLE_PATH=vendor/bundle'
const INSTALL = `${BUNDLER} bundle install --local --quiet`
const CHECK = `${BUNDLER} bundle check >/dev/null`

/** What a bench config installs: nothing (the same job as tar or rsync), or the app's gems. */
type InstallMode = 'none' | 'fresh' | 'reuse' | 'check'

export interface UploadFigures {
  rows: { job: string; deployer: number; reference: number; referenceName: string }[]
  install: { check: number; reuse: number; fresh: number }
  files: number
  bytes: number
}

/** ~5,000 files, ~50 MB, incompressible: many small sources plus a few large assets, and a vendored gem. */

export async function writeSyntheticApp(root: string): Promise<number> {
  let bytes = 0
  for (let i = 0; i < FILES - 100; i++) {
    const dir = join(root, 'app', `d${Math.floor(i / 100)}`)
    if (i % 100 === 0) await mkdir(dir, { recursive: true })
    const body = randomBytes(1500 + (i % 2000)).toString('base64')
    bytes += body.length
    await writeFile(join(dir, `f${i}.rb`), body)
  }
  await mkdir(join(root, 'public', 'assets'), { recursive: true })
  for (let i = 0; i < 100; i++) {
    const body = randomBytes(440_000)
    bytes += body.length
    await writeFile(join(root, 'public', 'assets', `a${i}.bin`), body)
  }
  const gem = join(root, 'vendor', 'cache')
  await mkdir(gem, { recursive: true })
  await run(
    'gem',
    ['build', '--silent', 'shop_greeting.gemspec', '-o', join(gem, 'shop_greeting-1.0.0.gem')],
    {
      cwd: new URL('../examples/fixture-gem', import.meta.url).pathname,
    },
  )
  await writeFile(join(root, 'Gemfile'), 'source "https://rubygems.org"\ngem "shop_greeting", "1.0.0"\n')
  await writeFile(
    join(root, 'Gemfile.lock'),
    await readFile(new URL('../examples/shop/Gemfile.lock', import.meta.url), 'utf8'),
  )
  await writeFile(join(root, 'config.ru'), 'run ->(env) { [200, {}, ["ok"]] }\n')
  return bytes
}

async function writeBenchConfig(
  ws: Workspace,
  sshd: TestSshd,
  deployTo: string,
  mode: InstallMode,
  client: 'builtin' | 'openssh' = 'builtin',
): Promise<string> {
  const file = join(ws.dir, `deployer-${mode}-${client}.yml`)
  const lines = [
    'app: bench',
    `source: ${JSON.stringify(ws.source)}`,
    'exclude: [.git, log, tmp, .bundle, vendor/bundle]',
    `deploy_to: ${JSON.stringify(deployTo)}`,
    'keep_releases: 3',
    `hosts: [${JSON.stringify(`${sshd.user}@127.0.0.1:${sshd.port}`)}]`,
    'ssh:',
    `  identity: ${JSON.stringify(sshd.clientKeyPath)}`,
    `  known_hosts: ${JSON.stringify(sshd.knownHostsPath)}`,
    `  client: ${client}`,
    ...(mode === 'none' ? [] : ['install:', `  command: ${JSON.stringify(INSTALL)}`]),
    ...(mode === 'reuse' || mode === 'check' ? ['  vendor: vendor/bundle'] : []),
    ...(mode === 'check' ? [`  check: ${JSON.stringify(CHECK)}`] : []),
  ]
  await writeFile(file, `${lines.join('\n')}\n`)
  return file
}

/** Seconds a command took. */
export async function timed(work: () => Promise<unknown>): Promise<number> {
  const started = performance.now()
  await work()
  return (performance.now() - started) / 1000
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2
}

export async function benchUpload(): Promise<UploadFigures> {
  const sshd = await startSshd({ user: DEPLOY_USER, createUser: true })
  const ws = await makeWorkspace(DEPLOY_USER)
  const ssh = [
    '-p',
    String(sshd.port),
    '-i',
    sshd.clientKeyPath,
    '-o',
    `UserKnownHostsFile=${sshd.knownHostsPath}`,
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'BatchMode=yes',
  ]
  const target = `${sshd.user}@127.0.0.1`
  const sshRun = (command: string) => run('ssh', [...ssh, target, command], { maxBuffer: 64 * 1024 * 1024 })
  const deployer = async (config: string) => {
    const result = await runCli(['release', '--json', '--config', config])
    if (result.code !== 0) throw new Error(`release failed:\n${result.stderr}`)
    return JSON.parse(result.stdout) as { hosts: { timings: Record<string, number> }[] }
  }
  const changeOneFile = () =>
    writeFile(join(ws.source, 'app', 'd0', 'f0.rb'), randomBytes(1500).toString('base64'))
  const installSeconds = (json: { hosts: { timings: Record<string, number> }[] }) =>
    (json.hosts[0]?.timings.install ?? Number.NaN) / 1000
  try {
    const bytes = await writeSyntheticApp(ws.source)
    const first = { deployer: [] as number[], reference: [] as number[] }
    const repeat = { deployer: [] as number[], reference: [] as number[] }
    // The same two jobs with `ssh.client: openssh`: the upload's tar stream through the system's ssh.
    const openssh = { first: [] as number[], repeat: [] as number[] }
    const install = { check: [] as number[], reuse: [] as number[], fresh: [] as number[] }
    for (let round = 0; round < REPEAT; round++) {
      // The file job alone, next to the same job done by hand: no install step.
      const deployTo = join(ws.deployTo, `r${round}`)
      await sshRun(`mkdir -p ${deployTo}`)
      const files = await writeBenchConfig(ws, sshd, deployTo, 'none')
      first.deployer.push(await timed(() => deployer(files)))
      const tarDir = join(ws.deployTo, `tar${round}`)
      first.reference.push(
        await timed(() =>
          run('bash', [
            '-c',
            `tar cz -C ${ws.source} --exclude=./vendor/bundle . | ssh ${ssh.join(' ')} ${target} 'mkdir -p ${tarDir} && tar xz -C ${tarDir}'`,
          ]),
        ),
      )
      await changeOneFile()
      repeat.deployer.push(await timed(() => deployer(files)))
      const rsyncDir = join(ws.deployTo, `rsync${round}`)
      repeat.reference.push(
        await timed(() =>
          run('rsync', [
            '-a',
            `--link-dest=${tarDir}`,
            '--exclude=vendor/bundle',
            '-e',
            `ssh ${ssh.join(' ')}`,
            `${ws.source}/`,
            `${target}:${rsyncDir}/`,
          ]),
        ),
      )

      const opensshTo = join(ws.deployTo, `o${round}`)
      await sshRun(`mkdir -p ${opensshTo}`)
      const opensshFiles = await writeBenchConfig(ws, sshd, opensshTo, 'none', 'openssh')
      openssh.first.push(await timed(() => deployer(opensshFiles)))
      await changeOneFile()
      openssh.repeat.push(await timed(() => deployer(opensshFiles)))

      // The dependency step with an unchanged lockfile: checked, reinstalled over reused gems, fresh.
      const depsTo = join(ws.deployTo, `d${round}`)
      await sshRun(`mkdir -p ${depsTo}`)
      await deployer(await writeBenchConfig(ws, sshd, depsTo, 'check'))
      for (const mode of ['check', 'reuse', 'fresh'] as const) {
        await changeOneFile()
        install[mode].push(installSeconds(await deployer(await writeBenchConfig(ws, sshd, depsTo, mode))))
      }
    }
    return {
      files: FILES,
      bytes,
      rows: [
        {
          job: 'first deploy',
          deployer: median(first.deployer),
          reference: median(first.reference),
          referenceName: 'tar cz \\| ssh tar xz',
        },
        {
          job: 'repeat deploy, one file changed',
          deployer: median(repeat.deployer),
          reference: median(repeat.reference),
          referenceName: 'rsync -a --link-dest over ssh',
        },
        {
          job: 'first deploy, `ssh.client: openssh`',
          deployer: median(openssh.first),
          reference: median(first.reference),
          referenceName: 'tar cz \\| ssh tar xz',
        },
        {
          job: 'repeat deploy, one file changed, `ssh.client: openssh`',
          deployer: median(openssh.repeat),
          reference: median(repeat.reference),
          referenceName: 'rsync -a --link-dest over ssh',
        },
      ],
      install: { check: median(install.check), reuse: median(install.reuse), fresh: median(install.fresh) },
    }
  } finally {
    await rm(ws.dir, { recursive: true, force: true })
    await sshd.stop()
  }
}

export function renderUpload(figures: UploadFigures): string {
  const lines = [
    `synthetic app: ${figures.files} files, ${(figures.bytes / 1024 / 1024).toFixed(1)} MB; medians of ${REPEAT} runs, loopback SSH as an unprivileged user`,
    '',
    '| job | deployer | reference (same SSH server, same run) | reference | ratio |',
    '| --- | ---: | --- | ---: | ---: |',
    ...figures.rows.map(
      (row) =>
        `| ${row.job} | ${row.deployer.toFixed(2)} s | ${row.referenceName} | ${row.reference.toFixed(2)} s | ${(row.deployer / row.reference).toFixed(2)}× |`,
    ),
    `| dependency step, lockfile unchanged, \`install.check\` | ${figures.install.check.toFixed(2)} s | \`bundle install\` into an empty vendor/bundle | ${figures.install.fresh.toFixed(2)} s | ${(figures.install.check / figures.install.fresh).toFixed(2)}× |`,
    `| dependency step, lockfile unchanged, \`bundle install\` over reused gems | ${figures.install.reuse.toFixed(2)} s | \`bundle install\` into an empty vendor/bundle | ${figures.install.fresh.toFixed(2)} s | ${(figures.install.reuse / figures.install.fresh).toFixed(2)}× |`,
    '',
    "The deploys in the first four rows have no install step, so they do the job tar and rsync do (plus the lock, the manifest, publishing, `current` and the history); rows 1-2 use the built-in SSH client, rows 3-4 the system's OpenSSH client over one ControlMaster.",
  ]
  return lines.join('\n')
}
