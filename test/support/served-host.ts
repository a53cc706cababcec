import { randomBytes } from 'node:crypto'
import { chmod, mkdir, readdir, readlink, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { expect } from 'chai'
import type { HostReleases } from '../../src/fleet/list.js'
import {
  type CliResult,
  parseJson,
  type ReleaseJson,
  type RunningCli,
  releaseJson,
  runCli,
  startCli,
} from './cli.js'
import { DEPLOY_USER, makeWorkspace, type Workspace } from './fixture.js'
import { type Load, startLoad } from './load.js'
import {
  answers,
  PUMA_TOKEN,
  type PumaAppOptions,
  type PumaConfigOptions,
  stopPuma,
  writePumaApp,
  writePumaConfig,
} from './puma-app.js'
import { findFreePort, startSshd, type TestSshd } from './sshd.js'
import { waitFor } from './wait.js'

/**
 * One host behind a real sshd with a Puma (two workers, `queue_requests false`) serving release 1:
 * what the fault suite breaks, and the readings it asserts on afterwards.
 */
export interface ServedHost {
  sshd: TestSshd
  ws: Workspace
  /** Puma's port on 127.0.0.1. */
  port: number
  /** Rewrites the app's source as `version` (options as writePumaApp takes them). */
  writeApp(version: string, options?: Omit<PumaAppOptions, 'port' | 'version'>): Promise<void>
  /**
   * Writes `public/asset.bin` of `bytes` random bytes (0 removes it): incompressible, and new content
   * each time, so the next upload carries it in many chunks (the upload failpoint needs a second one).
   */
  writeAsset(bytes: number): Promise<void>
  /** Rewrites deployer.yml; the defaults (install `true`) apply to what `options` leaves out. */
  configure(options?: Omit<PumaConfigOptions, 'port'>): Promise<void>
  /** `deployer release --json` to the end. */
  release(args?: string[], env?: NodeJS.ProcessEnv): Promise<{ result: CliResult; json: ReleaseJson }>
  /** `deployer release --json` in the background (with a failpoint in `env`, say). */
  startRelease(args?: string[], env?: NodeJS.ProcessEnv): RunningCli
  /**
   * Starts a release with DEPLOYER_FAILPOINT=`failpoint` and resolves once deployer waits there; the
   * run is SIGKILLed by `cleanUp()` if the test leaves it running.
   */
  holdRelease(failpoint: string, args?: string[]): Promise<RunningCli>
  /** Starts HTTP load on Puma and resolves once it gets answers; `cleanUp()` stops it. */
  startLoad(): Promise<Load>
  /** For afterEach: kills the runs `holdRelease` started that still run, stops the loads. */
  cleanUp(): Promise<void>
  /** Where `current` points, e.g. `releases/3`. */
  current(): Promise<string>
  /** Every entry of releases/, partial ones included, sorted. */
  releaseEntries(): Promise<string[]>
  /** `deployer releases --json`: each release's number and state (live, previous, failed...). */
  releaseStates(): Promise<Array<[number, string]>>
  /** Whether `.deployer/lock` exists. */
  lockHeld(): Promise<boolean>
  /** The release numbers Puma's answers name, over enough requests to reach both workers. */
  servedReleases(): Promise<Set<string>>
  /** Stops Puma and sshd (by pid) and removes the workspace. */
  stop(): Promise<void>
}

const DEFAULT_CONFIG: Omit<PumaConfigOptions, 'port'> = { install: 'true' }

/** Starts sshd, writes the app and its deployer.yml, and releases it once (release 1, Puma started). */
export async function startServedHost(
  options: {
    beforeFirstRelease?: (ws: Workspace) => Promise<void>
    /** The SSH user (default DEPLOY_USER) and its login shell. */
    user?: string
    shell?: string
    /** sshd_config settings (see SshdOptions.settings). */
    sshdSettings?: Record<string, string>
    /** deployer.yml options used from the first release on (`configure()` without options too). */
    config?: Omit<PumaConfigOptions, 'port'>
    /** Environment of every deployer run (for `${VAR}`s in `config`). */
    env?: NodeJS.ProcessEnv
  } = {},
): Promise<ServedHost> {
  const user = options.user ?? DEPLOY_USER
  const sshd = await startSshd({
    user,
    createUser: true,
    shell: options.shell,
    settings: options.sshdSettings,
  })
  const ws = await makeWorkspace(user)
  // Private to the deploy user, as on a real server: prune then proves that other users' processes (other
  // suites running side by side) cannot be using its releases.
  await chmod(join(ws.dir, 'srv'), 0o700)
  const port = await findFreePort()
  const env = { PUMA_TOKEN, ...options.env }
  const defaults = { ...DEFAULT_CONFIG, ...options.config }
  const held: RunningCli[] = []
  const loads: Load[] = []
  const host: ServedHost = {
    sshd,
    ws,
    port,
    writeApp: (version, appOptions = {}) =>
      writePumaApp(ws, { port, version, queueRequests: false, ...appOptions }),
    async writeAsset(bytes) {
      const path = join(ws.source, 'public', 'asset.bin')
      if (bytes === 0) return rm(path, { force: true })
      await mkdir(join(ws.source, 'public'), { recursive: true })
      await writeFile(path, randomBytes(bytes))
    },
    configure: (configOptions = defaults) =>
      writePumaConfig(ws, sshd, { port, ...DEFAULT_CONFIG, ...configOptions }),
    release: (args = [], extra = {}) => releaseJson(ws.config, args, { ...env, ...extra }),
    startRelease: (args = [], extra = {}) =>
      startCli(['release', '--json', '--config', ws.config, ...args], { env: { ...env, ...extra } }),
    async holdRelease(failpoint, args = []) {
      const cli = host.startRelease(args, { DEPLOYER_FAILPOINT: failpoint })
      held.push(cli)
      await waitFor(() => cli.stderrSoFar().includes(`failpoint ${failpoint} it\n`), {
        what: `deployer to reach the ${failpoint} failpoint`,
        timeoutMs: 30_000,
      })
      return cli
    },
    async startLoad() {
      const load = startLoad(port)
      loads.push(load)
      await load.warmUp()
      return load
    },
    async cleanUp() {
      for (const cli of held.splice(0)) if (cli.child.exitCode === null) cli.child.kill('SIGKILL')
      for (const load of loads.splice(0)) await load.stop()
    },
    current: () => readlink(join(ws.deployTo, 'current')),
    releaseEntries: async () => (await readdir(join(ws.deployTo, 'releases'))).sort(),
    async releaseStates() {
      const listed = parseJson<{ hosts: HostReleases[] }>(
        await runCli(['releases', '--json', '--config', ws.config], { env }),
      )
      return (listed.hosts[0]?.releases ?? []).map((entry) => [entry.number, entry.state])
    },
    lockHeld: () =>
      stat(join(ws.deployTo, '.deployer', 'lock')).then(
        () => true,
        () => false,
      ),
    servedReleases: async () =>
      new Set((await answers(port)).map((body) => /release=(\d+)/.exec(body)?.[1] ?? body)),
    async stop() {
      await host.cleanUp()
      await stopPuma(ws)
      await sshd.stop()
      await rm(ws.dir, { recursive: true, force: true })
    },
  }
  try {
    await host.writeApp('v1')
    await host.configure()
    await options.beforeFirstRelease?.(ws)
    const first = await host.release()
    expect(first.result.code, first.result.stderr).to.equal(0)
    expect(await host.servedReleases()).to.deep.equal(new Set(['1']))
    return host
  } catch (error) {
    await host.stop().catch(() => {})
    throw error
  }
}
