import { type ChildProcess, execFile } from 'node:child_process'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { get } from 'node:http'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { BUNDLED_INSTALL, BUNDLED_START, bundlePuma, type PumaVersion, pumaMajor } from './bundled-puma.js'
import type { Workspace } from './fixture.js'
import type { TestSshd } from './sshd.js'
import { waitFor } from './wait.js'

/** The control app's token in tests; passed to deployer through ${PUMA_TOKEN}. */
export const PUMA_TOKEN = 'test-token-0123456789'

export interface PumaAppOptions {
  port: number
  /** Text served in every answer, to tell releases apart. */
  version: string
  /** Leave out `directory` (signals then depend on PWD: deployer must choose a full restart). */
  noDirectory?: boolean
  /** `workers N` (default 2; 0 is single mode). */
  workers?: number
  /**
   * Add `preload_app!`: Puma then refuses phased restarts. Without it a bundled Puma 7+ gets
   * `preload_app! false`, since 7.0 turns preload on by default with 2+ workers (puma/puma#3297);
   * `'unset'` writes no preload line at all, leaving Puma's own default.
   */
  preload?: boolean | 'unset'
  threads?: number
  /** Make config.ru raise at boot: the release can never serve. */
  brokenBoot?: boolean
  rubyVersion?: string
  gemfileLock?: string
  /** Leave Puma's worker timings at their defaults (tests shorten them to keep restarts quick). */
  defaultTimings?: boolean
  /**
   * `queue_requests false`: measured here, Puma 5.6's phased restart then resets no connection-per-request
   * client, while with the default a stopping worker resets a few (bench/zero-downtime.ts).
   */
  queueRequests?: boolean
  /**
   * Bundle this Puma version in the app (Gemfile, vendor/cache, prebuilt vendor/bundle; see bundled-puma.ts)
   * instead of running Debian's `puma` outside Bundler. Pair with the same option of writePumaConfig.
   */
  bundledPuma?: PumaVersion
  /** Extra lines appended to config/puma.rb. */
  extraConfig?: string[]
  /** Leave `stdout_redirect` out of puma.rb (Puma then writes where server.start sends it). */
  noStdoutRedirect?: boolean
}

/**
 * Writes a Rack app served by Debian's Puma, by default in cluster mode with two workers: each answer names the
 * release, the worker pid and cwd, an env var the master got from server.env_files, and a shared .env
 * value the app reads itself at boot.
 */
export async function writePumaApp(ws: Workspace, options: PumaAppOptions): Promise<void> {
  await mkdir(join(ws.source, 'config'), { recursive: true })
  const configRu = [
    options.brokenBoot ? 'raise "boom: this release cannot boot"' : '',
    'release = File.read("RELEASE").strip rescue "dev"',
    'dotenv = File.exist?(".env") ? File.read(".env").strip : "none"',
    `version = ${JSON.stringify(options.version)}`,
    'run ->(env) { [200, { "content-type" => "text/plain" }, ["release=#{release} version=#{version} pid=#{Process.pid} cwd=#{Dir.pwd} from_env=#{ENV["FROM_ENV_FILE"]} dotenv=#{dotenv}\\n"]] }',
    '',
  ].join('\n')
  await writeFile(join(ws.source, 'config.ru'), configRu)
  // Seeds shared/.env on the first release; later releases link to the shared copy.
  await writeFile(join(ws.source, '.env'), 'initial-value\n')
  const pumaRb = [
    options.noDirectory ? '' : `directory ${JSON.stringify(join(ws.deployTo, 'current'))}`,
    `workers ${options.workers ?? 2}`,
    options.preload === true
      ? 'preload_app!'
      : options.preload === 'unset'
        ? ''
        : preloadOff(options.bundledPuma),
    `threads 1, ${options.threads ?? 4}`,
    `bind "tcp://127.0.0.1:${options.port}"`,
    `pidfile ${JSON.stringify(join(ws.deployTo, 'shared/tmp/pids/puma.pid'))}`,
    `activate_control_app "unix://${join(ws.deployTo, 'shared/tmp/sockets/pumactl.sock')}", { auth_token: ${JSON.stringify(PUMA_TOKEN)} }`,
    options.noStdoutRedirect
      ? ''
      : `stdout_redirect ${JSON.stringify(join(ws.deployTo, 'shared/log/puma.log'))}, ${JSON.stringify(join(ws.deployTo, 'shared/log/puma.log'))}, true`,
    options.defaultTimings ? '' : 'worker_shutdown_timeout 5',
    options.defaultTimings ? '' : 'worker_check_interval 1',
    options.queueRequests === false ? 'queue_requests false' : '',
    ...(options.extraConfig ?? []),
    '',
  ].join('\n')
  await writeFile(join(ws.source, 'config', 'puma.rb'), pumaRb)
  if (options.bundledPuma) await bundlePuma(ws.source, options.bundledPuma)
  if (options.rubyVersion) await writeFile(join(ws.source, '.ruby-version'), `${options.rubyVersion}\n`)
  if (options.gemfileLock) await writeFile(join(ws.source, 'Gemfile.lock'), options.gemfileLock)
}

/** `preload_app! false` where Puma would otherwise preload by default (7.0+ in cluster mode). */
function preloadOff(version: PumaVersion | undefined): string {
  return version && pumaMajor(version) >= 7 ? 'preload_app! false' : ''
}

export interface PumaConfigOptions {
  port: number
  envFile?: string
  restart?: string
  healthTimeout?: string
  /** `health.expect` (default `release={release} `, which the app's answers contain). */
  healthExpect?: string
  /** `install.command`; no install section without it (a bundled Puma defaults to `bundle install --local`). */
  install?: string
  /** `install.check` (with an install command). */
  installCheck?: string
  /** `install.vendor` (with an install command): seeded from the previous release. */
  installVendor?: string
  /** The app bundles Puma (writePumaApp's option): start it with `bundle exec puma`. */
  bundledPuma?: PumaVersion
  /** Put before the puma command in server.start (e.g. `SECRET=${CANARY}`). */
  startPrefix?: string
  /** Appended to health.url, e.g. `?token=${CANARY}` (the app answers every path). */
  healthQuery?: string
  /** `server.full_restart`; none without it. */
  fullRestart?: string
  /** `install.timeout`, e.g. `2s`. */
  installTimeout?: string
  /** `server.restart_timeout` (unset: deployer's own deadline from the last restart). */
  restartTimeout?: string
  /** Appended to the puma command in server.start (e.g. `--redirect-stdout PATH`). */
  startArgs?: string
}

/** deployer.yml for the Puma app: server, health and shared sections over the test sshd. */
export async function writePumaConfig(
  ws: Workspace,
  sshd: TestSshd,
  options: PumaConfigOptions,
): Promise<void> {
  const command = options.bundledPuma ? BUNDLED_START : 'puma -C config/puma.rb'
  const puma = `${options.startPrefix ? `${options.startPrefix} ` : ''}exec ${command}${options.startArgs ? ` ${options.startArgs}` : ''}`
  const start = options.envFile ? `set -a; . ${options.envFile}; set +a; ${puma}` : puma
  const install = options.install ?? (options.bundledPuma ? BUNDLED_INSTALL : undefined)
  const lines = [
    'app: itest',
    `source: ${JSON.stringify(ws.source)}`,
    'exclude: [.git, log, tmp]',
    `deploy_to: ${JSON.stringify(ws.deployTo)}`,
    'keep_releases: 10',
    'hosts:',
    `  - { name: it, ssh: ${JSON.stringify(`${sshd.user}@127.0.0.1:${sshd.port}`)} }`,
    'ssh:',
    `  identity: ${JSON.stringify(sshd.clientKeyPath)}`,
    `  known_hosts: ${JSON.stringify(sshd.knownHostsPath)}`,
    'shared:',
    '  dirs: [log, tmp/pids, tmp/sockets]',
    '  files: [.env]',
    'server:',
    '  config: config/puma.rb',
    '  pidfile: shared/tmp/pids/puma.pid',
    `  control_url: ${JSON.stringify(`unix://${join(ws.deployTo, 'shared/tmp/sockets/pumactl.sock')}`)}`,
    '  control_token: ${PUMA_TOKEN}',
    `  start: ${JSON.stringify(start)}`,
    `  restart: ${options.restart ?? 'auto'}`,
    ...(options.fullRestart ? [`  full_restart: ${JSON.stringify(options.fullRestart)}`] : []),
    ...(options.restartTimeout ? [`  restart_timeout: ${options.restartTimeout}`] : []),
    ...(options.envFile ? [`  env_files: [${JSON.stringify(options.envFile)}]`] : []),
    'health:',
    `  url: ${JSON.stringify(`http://127.0.0.1:${options.port}/${options.healthQuery ?? ''}`)}`,
    `  expect: ${JSON.stringify(options.healthExpect ?? 'release={release} ')}`,
    `  timeout: ${options.healthTimeout ?? '30s'}`,
    ...(install ? ['install:', `  command: ${JSON.stringify(install)}`] : []),
    ...(install && options.installTimeout ? [`  timeout: ${options.installTimeout}`] : []),
    ...(install && options.installCheck ? [`  check: ${JSON.stringify(options.installCheck)}`] : []),
    ...(install && options.installVendor ? [`  vendor: ${JSON.stringify(options.installVendor)}`] : []),
  ]
  await writeFile(ws.config, `${lines.join('\n')}\n`)
}

/** One GET to the app; rejects on a connection error. */
export function fetchApp(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const request = get({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 5000 }, (response) => {
      let body = ''
      response.on('data', (chunk: Buffer) => {
        body += chunk.toString('utf8')
      })
      response.on('end', () => resolve(body))
    })
    request.on('error', reject)
    request.on('timeout', () => request.destroy(new Error('timeout')))
  })
}

/** Answers from enough requests to reach every worker (the kernel spreads accepts between them). */
export async function answers(port: number, count = 20): Promise<string[]> {
  const bodies: string[] = []
  for (let i = 0; i < count; i++) bodies.push(await fetchApp(port))
  return bodies
}

/** Cluster `/stats` from the fixture's control app (its socket under shared/), as Puma writes it. */
export async function pumaStats(ws: Workspace): Promise<{
  started_at: string
  phase: number
  worker_status: { pid: number; phase: number; booted: boolean }[]
}> {
  const socket = join(ws.deployTo, 'shared/tmp/sockets/pumactl.sock')
  const { stdout } = await promisify(execFile)('curl', [
    '-s',
    '--unix-socket',
    socket,
    `http://x/stats?token=${PUMA_TOKEN}`,
  ])
  return JSON.parse(stdout)
}

export async function masterPid(ws: Workspace): Promise<number> {
  return Number((await readFile(join(ws.deployTo, 'shared/tmp/pids/puma.pid'), 'utf8')).trim())
}

/** Stops the Puma these tests started (the pid in its pidfile) and waits until it is gone. */
export async function stopPuma(ws: Workspace): Promise<void> {
  const pid = await masterPid(ws).catch(() => 0)
  if (!pid) return
  try {
    process.kill(pid, 'SIGTERM')
  } catch {
    return
  }
  await waitFor(
    () => {
      try {
        process.kill(pid, 0)
        return false
      } catch {
        return true
      }
    },
    { what: `Puma ${pid} to stop`, timeoutMs: 20_000 },
  )
}

/**
 * Stops a Puma that a test spawned itself, by its pid, and waits for its exit event (not kill -0, which
 * a zombie passes). Does nothing when it never started or has already exited.
 */
export async function stopSpawnedPuma(child: ChildProcess | undefined): Promise<void> {
  if (child?.pid === undefined || child.exitCode !== null || child.signalCode !== null) return
  process.kill(child.pid, 'SIGTERM')
  await waitFor(() => child.exitCode !== null || child.signalCode !== null, {
    what: `Puma ${child.pid} to stop`,
    timeoutMs: 20_000,
  })
}
