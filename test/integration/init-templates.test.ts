import { type ChildProcess, execFile, spawn } from 'node:child_process'
import {
  access,
  cp,
  mkdir,
  mkdtemp,
  readFile,
  realpath,
  rename,
  rm,
  symlink,
  writeFile,
} from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { expect } from 'chai'
import { loadConfig } from '../../src/config/load.js'
import { probeServer, type ServerProbe } from '../../src/restart/server-probe.js'
import { LocalTransport } from '../../src/transport/local.js'
import { runCli } from '../support/cli.js'
import { fetchApp, stopSpawnedPuma } from '../support/puma-app.js'
import { findFreePort } from '../support/sshd.js'
import { waitFor } from '../support/wait.js'

const run = promisify(execFile)
const TOKEN = 'init-test-token-4f2a'
const SYSTEMD_ANALYZE = '/usr/bin/systemd-analyze'

/**
 * Loads config/puma.rb from `dir` with Puma's own Configuration class and prints what the hooks and
 * options came to. ARGV[0], when given, poses as that Puma version (defining before_restart if this Puma
 * lacks it), to see which hook names the file picks there.
 */
const LOAD_RB = `
require "json"
require "puma"
require "puma/configuration"
if (version = ARGV[0])
  Puma::Const.send(:remove_const, :PUMA_VERSION)
  Puma::Const.const_set(:PUMA_VERSION, version)
  unless Puma::DSL.method_defined?(:before_restart)
    Puma::DSL.define_method(:before_restart) { |&block| (@options[:before_restart] ||= []) << block }
  end
end
config = Puma::Configuration.new({ config_files: ["config/puma.rb"] })
options = config.load
hooks = options.all_of(:on_restart) + options.all_of(:before_restart)
ENV["BUNDLE_GEMFILE"] = "/resolved/releases/1/Gemfile"
hooks.each { |hook| hook.call(nil) }
pinned = ENV["BUNDLE_GEMFILE"]
ENV.delete("BUNDLE_GEMFILE")
hooks.each { |hook| hook.call(nil) }
puts JSON.generate(
  "workers" => options[:workers], "preload" => options[:preload_app], "token" => options[:control_auth_token],
  "onRestart" => options.all_of(:on_restart).size, "beforeRestart" => options.all_of(:before_restart).size,
  "pinned" => pinned, "setWithout" => ENV.key?("BUNDLE_GEMFILE"), "queueRequests" => options[:queue_requests]
)
`

interface Loaded {
  workers: number
  preload: boolean
  token: string
  onRestart: number
  beforeRestart: number
  pinned: string
  setWithout: boolean
  queueRequests: boolean
}

describe('files written by deployer init, checked with real Puma 5.6 and systemd-analyze', function () {
  this.timeout(90_000)
  const local = new LocalTransport()
  let dir: string
  let app: string
  let deployTo: string
  let port: number
  let puma: ChildProcess | undefined
  let pumaOutput = ''

  before(async () => {
    // realpath: /proc shows resolved paths, and tmpdir() may itself lie behind a symlink.
    dir = await realpath(await mkdtemp(join(tmpdir(), 'deployer-init-it-')))
    app = join(dir, 'app')
    deployTo = join(dir, 'srv')
    port = await findFreePort()
    await mkdir(app)
    const result = await runCli([
      'init',
      '--all',
      '--app',
      'shop',
      '--deploy-to',
      deployTo,
      '--port',
      String(port),
      '--dir',
      app,
    ])
    expect(result.code, result.stderr).to.equal(0)
    await writeFile(
      join(app, 'config.ru'),
      'run ->(env) { [200, { "content-type" => "text/plain" }, [File.basename(Dir.pwd)]] }\n',
    )
  })

  after(async () => {
    await stopSpawnedPuma(puma)
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  async function loadPumaRb(env: NodeJS.ProcessEnv, version?: string): Promise<Loaded> {
    const { stdout } = await run('ruby', ['-e', LOAD_RB, ...(version ? [version] : [])], {
      cwd: app,
      env: { PATH: process.env.PATH, ...env },
    })
    return JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as Loaded
  }

  /** waitFor, with what Puma printed in the error when it times out. */
  async function waitForPuma(condition: () => Promise<boolean>, what: string): Promise<void> {
    await waitFor(condition, { what, timeoutMs: 30_000, intervalMs: 200 }).catch((error: Error) => {
      throw new Error(`${error.message}\nPuma printed:\n${pumaOutput.slice(-2000)}`)
    })
  }

  async function probe(configDir?: string): Promise<ServerProbe> {
    return probeServer(
      async (command, stdin) => (await local.exec(command, { stdin })).stdout,
      {
        deployTo,
        pidfile: join(deployTo, 'shared/tmp/pids/puma.pid'),
        controlUrl: `unix://${join(deployTo, 'shared/tmp/sockets/pumactl.sock')}`,
        configs: configDir ? [{ dir: configDir, file: 'config/puma.rb' }] : [],
      },
      TOKEN,
    )
  }

  it("reads as a phased-restart config through deployer's own probe, matching deployer.yml", async () => {
    const [config] = (await probe(app)).configs
    const deployerYml = await loadConfig('deployer.yml', { cwd: app, env: { PUMA_CONTROL_TOKEN: TOKEN } })
    expect(config?.error).to.equal(undefined)
    expect(config).to.deep.include({
      ok: true,
      pumaVersion: '5.6.5',
      workers: 2,
      preloadApp: false,
      pruneBundler: false,
      directory: join(deployTo, 'current'),
      binds: [`tcp://127.0.0.1:${port}`],
      pidfile: join(deployTo, deployerYml.server?.pidfile ?? ''),
      controlUrl: deployerYml.server?.controlUrl,
      stateFile: join(deployTo, 'shared/tmp/pids/puma.state'),
      workerShutdownTimeout: 30,
    })
  })

  it('keeps preload off when WEB_CONCURRENCY would turn it on, and takes the token from the environment', async () => {
    const loaded = await loadPumaRb({ WEB_CONCURRENCY: '3', PUMA_CONTROL_TOKEN: TOKEN })
    expect(loaded).to.include({ workers: 3, preload: false, token: TOKEN, queueRequests: false })
    // Without the token Puma makes up its own, and the file still loads: deployer evaluates it that way.
    const without = await loadPumaRb({})
    expect(without.token).to.match(/^[0-9a-f]{32}$/)
    expect(without.workers).to.equal(2)
  })

  const hookCases = [
    { puma: undefined, name: 'on_restart on this Puma (5.6)', onRestart: 1, beforeRestart: 0 },
    { puma: '6.6.1', name: 'on_restart on Puma 6', onRestart: 1, beforeRestart: 0 },
    { puma: '7.0.0', name: 'before_restart on Puma 7', onRestart: 0, beforeRestart: 1 },
    { puma: '8.0.2', name: 'before_restart on Puma 8', onRestart: 0, beforeRestart: 1 },
  ]
  for (const { puma: version, name, onRestart, beforeRestart } of hookCases) {
    it(`pins BUNDLE_GEMFILE to current in ${name}`, async () => {
      const loaded = await loadPumaRb({}, version)
      expect(loaded).to.include({ onRestart, beforeRestart })
      expect(loaded.pinned).to.equal(join(deployTo, 'current/Gemfile'))
      expect(loaded.setWithout, 'sets no BUNDLE_GEMFILE when Puma runs without Bundler').to.equal(false)
    })
  }

  it('boots like systemd starts it, serves through the control app, and a phased restart reaches the new release', async () => {
    const releases = join(deployTo, 'releases')
    for (const sub of ['shared/tmp/pids', 'shared/tmp/sockets', 'releases']) {
      await mkdir(join(deployTo, sub), { recursive: true })
    }
    await cp(app, join(releases, '1'), { recursive: true })
    await cp(app, join(releases, '2'), { recursive: true })
    await symlink('releases/1', join(deployTo, 'current'))
    // As under systemd: the working directory resolved, no PWD, the token from the environment file.
    puma = spawn('puma', ['-C', 'config/puma.rb'], {
      cwd: join(releases, '1'),
      env: { PATH: process.env.PATH, PUMA_CONTROL_TOKEN: TOKEN },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    puma.stdout?.on('data', (chunk: Buffer) => {
      pumaOutput += chunk.toString('utf8')
    })
    puma.stderr?.on('data', (chunk: Buffer) => {
      pumaOutput += chunk.toString('utf8')
    })
    const booted = (probed: ServerProbe, release: string, phase: number) =>
      probed.stats?.phase === phase &&
      probed.stats.oldWorkers === 0 &&
      probed.stats.bootedWorkers === 2 &&
      probed.workers.length === 2 &&
      probed.workers.every((worker) => worker.cwd === join(releases, release))
    await waitForPuma(async () => booted(await probe(), '1', 0), 'Puma to boot two workers')
    expect(await fetchApp(port)).to.equal('1')
    expect(pumaOutput).to.not.match(/deprecat/i)

    await symlink('releases/2', join(deployTo, 'current.new'))
    await rename(join(deployTo, 'current.new'), join(deployTo, 'current'))
    process.kill(puma.pid!, 'SIGUSR1')
    await waitForPuma(async () => booted(await probe(), '2', 1), 'a phased restart onto release 2')
    expect((await probe()).master.cwd).to.equal(join(releases, '2'))
    expect(await fetchApp(port)).to.equal('2')
  })

  it('writes systemd units that systemd-analyze verify accepts without a warning', async function () {
    try {
      await access(SYSTEMD_ANALYZE)
    } catch {
      this.skip() // systemd-analyze is not installed here, so the units cannot be verified.
    }
    const units = ['shop-puma.service', 'shop-puma.socket'].map((unit) => join(app, 'config/systemd', unit))
    const result = await run(SYSTEMD_ANALYZE, ['verify', ...units]).catch(
      (error: { code: number; stdout: string; stderr: string }) => error,
    )
    expect(result.stderr).to.equal('')
    expect('code' in result ? result.code : 0).to.equal(0)
    const service = await readFile(units[0] ?? '', 'utf8')
    expect(service).to.match(/^Type=notify$/m)
    expect(service).to.match(/^ExecReload=\/bin\/kill -USR1 \$MAINPID$/m)
    expect(service).to.match(new RegExp(`^WorkingDirectory=${deployTo}/current$`, 'm'))
    expect(service).to.match(/^Restart=always$/m)
    const socket = await readFile(units[1] ?? '', 'utf8')
    expect(socket).to.match(new RegExp(`^ListenStream=127\\.0\\.0\\.1:${port}$`, 'm'))
  })
})
