import { type ChildProcess, spawn } from 'node:child_process'
import { mkdir, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { expect } from 'chai'
import { effectivePreload } from '../../src/restart/preload.js'
import { probeServer, type ServerProbe, type ServerProbeOptions } from '../../src/restart/server-probe.js'
import { LocalTransport } from '../../src/transport/local.js'
import { SshTransport } from '../../src/transport/ssh.js'
import type { Transport } from '../../src/transport/transport.js'
import { stopSpawnedPuma } from '../support/puma-app.js'
import { findFreePort } from '../support/sshd.js'
import { useSshd, useTempDir } from '../support/suite.js'
import { waitFor } from '../support/wait.js'

const TOKEN = 'secret-token'
/** Put in the master's environment: it must never come back in a probe's output. */
const SECRET = 'probe-secret-env-value-5d1f0c'

describe('server probe (real Puma 5.6, locally and over a real sshd)', function () {
  this.timeout(120_000)
  const local = new LocalTransport()
  let dir: string
  let deployTo: string
  let current: string
  let release1: string
  let pidfile: string
  let port: number
  let puma: ChildProcess | undefined

  const options = (extra: Partial<ServerProbeOptions> = {}): ServerProbeOptions => ({
    deployTo,
    pidfile,
    controlUrl: `unix://${join(deployTo, 'shared/tmp/sockets/pumactl.sock')}`,
    configs: [{ dir: 'releases/1', file: 'config/puma.rb' }],
    ...extra,
  })

  /** One probe through `transport`, keeping the raw output to check what it discloses. */
  async function probe(
    transport: Transport,
    probeOptions = options(),
    token: string | undefined = TOKEN,
  ): Promise<{ probe: ServerProbe; raw: string }> {
    let raw = ''
    const result = await probeServer(
      async (command, stdin) => {
        const run = await transport.exec(command, { stdin })
        if (run.code !== 0) throw new Error(`the probe exited ${run.code}: ${run.stderr}`)
        raw = run.stdout
        return run.stdout
      },
      probeOptions,
      token,
    )
    return { probe: result, raw }
  }

  // Registered before the directory's hooks: mocha runs after hooks in order, and Puma must stop before
  // its directory goes.
  after(async () => {
    await stopSpawnedPuma(puma)
  })
  const tmp = useTempDir('deployer-probe-')
  const suite = useSshd({})

  before(async () => {
    dir = tmp.dir
    deployTo = join(dir, 'app')
    current = join(deployTo, 'current')
    release1 = join(deployTo, 'releases', '1')
    pidfile = join(deployTo, 'shared/tmp/pids/puma.pid')
    port = await findFreePort()
    for (const sub of ['releases/1/config', 'shared/tmp/pids', 'shared/tmp/sockets', 'shared/log']) {
      await mkdir(join(deployTo, sub), { recursive: true })
    }
    await writeFile(join(release1, 'RELEASE'), '1\n')
    await writeFile(
      join(release1, 'config.ru'),
      'run ->(env) { [200, { "content-type" => "text/plain" }, [File.read("RELEASE")]] }\n',
    )
    await writeFile(
      join(release1, 'config/puma.rb'),
      [
        `directory ${JSON.stringify(current)}`,
        'workers 2',
        `bind "tcp://127.0.0.1:${port}"`,
        `pidfile ${JSON.stringify(pidfile)}`,
        `activate_control_app "unix://${join(deployTo, 'shared/tmp/sockets/pumactl.sock')}", { auth_token: ${JSON.stringify(TOKEN)} }`,
        `stdout_redirect ${JSON.stringify(join(deployTo, 'shared/log/puma.log'))}, ${JSON.stringify(join(deployTo, 'shared/log/puma.log'))}, true`,
        'worker_shutdown_timeout 5',
        '',
      ].join('\n'),
    )
    // Configs the running Puma never reads, for what the probe makes of them.
    const extra: Record<string, string> = {
      'preload.rb': 'workers 2\npreload_app!\n',
      'no-preload.rb': 'workers 2\npreload_app! false\nprune_bundler\n',
      'from-env.rb': 'workers Integer(ENV.fetch("PROBE_WORKERS", "1"))\nputs "a config that prints"\n',
      'broken.rb': 'workers 2\nif true\n',
    }
    for (const [name, text] of Object.entries(extra)) await writeFile(join(release1, 'config', name), text)
    await symlink('releases/1', current)

    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PWD: current,
      DEPLOYER_PROBE_SECRET: SECRET,
      PROBE_WORKERS: '3',
    }
    // WEB_CONCURRENCY > 1 would turn preload on in Puma 5.6 (and USR1 into a hot restart).
    delete env.WEB_CONCURRENCY
    puma = spawn('puma', ['-C', 'config/puma.rb'], { cwd: current, env, detached: true, stdio: 'ignore' })
    puma.unref()
    await waitFor(async () => (await probe(local)).probe.stats?.bootedWorkers === 2, {
      what: 'Puma to boot two workers',
      timeoutMs: 30_000,
      intervalMs: 200,
    })
  })

  /** What every probe of the running cluster must show, however it travelled. */
  function expectRunningCluster({ probe: result, raw }: { probe: ServerProbe; raw: string }): void {
    const { master } = result
    expect(master).to.include({ pid: puma!.pid, alive: true, isPuma: true, running: true, cwd: release1 })
    expect(master.pumaVersion).to.equal('5.6.5')
    expect(master.rubyVersion).to.match(/^3\.1\./)
    expect(master.binds).to.deep.equal([`tcp://127.0.0.1:${port}`])
    expect(master.environReadable).to.equal(true)
    expect(master.env).to.deep.equal({ pwd: current, skipUsr2: false })

    expect(result.workers).to.have.length(2)
    expect(result.workers.map((w) => w.index)).to.deep.equal([0, 1])
    for (const worker of result.workers)
      expect(worker).to.include({ ppid: master.pid, masterPid: master.pid, cwd: release1 })

    expect(result.statsError).to.equal(null)
    expect(result.stats).to.include({
      mode: 'cluster',
      phase: 0,
      workers: 2,
      bootedWorkers: 2,
      oldWorkers: 0,
    })
    expect(new Set(result.stats?.workerStatus.map((w) => w.pid))).to.deep.equal(
      new Set(result.workers.map((w) => w.pid)),
    )
    expect(result.currentPath).to.equal(release1)

    const config = result.configs[0]!
    expect(config).to.include({
      ok: true,
      envSource: 'master',
      pumaVersion: '5.6.5',
      workers: 2,
      preloadApp: null,
      defaultPreload: false,
      pruneBundler: false,
      directory: current,
      pidfile,
      controlUrl: `unix://${join(deployTo, 'shared/tmp/sockets/pumactl.sock')}`,
      stdoutRedirect: join(deployTo, 'shared/log/puma.log'),
      workerShutdownTimeout: 5,
      forkWorker: null,
    })
    expect(config.binds).to.deep.equal([`tcp://127.0.0.1:${port}`])
    expect(effectivePreload(config.pumaVersion!, config, master.env)).to.equal(false)

    expect(raw).not.to.contain(TOKEN)
    expect(raw).not.to.contain(SECRET)
    expect(raw).not.to.match(/PATH=|HOME=/)
  }

  it('reads the master, its workers, the stats and the config of a running cluster', async () => {
    expectRunningCluster(await probe(local))
  })

  it('reads the same over SSH', async () => {
    const ssh = new SshTransport(suite.sshd.hostConfig({ deployTo }))
    try {
      expectRunningCluster(await probe(ssh))
    } finally {
      await ssh.close()
    }
  })

  it('evaluates configs in the master environment, and tells explicit preload from the default', async () => {
    const configs = ['preload.rb', 'no-preload.rb', 'from-env.rb', 'broken.rb', 'missing.rb'].map((file) => ({
      dir: 'releases/1',
      file: `config/${file}`,
    }))
    const { probe: result, raw } = await probe(
      local,
      options({ configs: [...configs, { dir: 'releases/9', file: 'config/puma.rb' }] }),
    )
    const [preload, noPreload, fromEnv, broken, missing, noDir] = result.configs
    expect(preload).to.include({ ok: true, workers: 2, preloadApp: true, defaultPreload: false })
    expect(noPreload).to.include({ ok: true, preloadApp: false, pruneBundler: true })
    // PROBE_WORKERS=3 is only in the master's environment; output the config printed is kept out.
    expect(fromEnv).to.include({ ok: true, envSource: 'master', workers: 3, preloadApp: null })
    expect(effectivePreload('5.6.5', fromEnv!, result.master.env)).to.equal(false)
    expect(broken).to.include({ ok: false })
    expect(broken?.error).to.match(/^SyntaxError: config\/broken\.rb:\d+: syntax error/)
    expect(missing).to.include({ ok: false, error: `config/missing.rb does not exist in ${release1}` })
    expect(noDir).to.include({ ok: false, error: `directory ${join(deployTo, 'releases/9')} does not exist` })
    expect(raw).not.to.contain('a config that prints')
    expect(raw).not.to.contain(SECRET)
  })

  it('reports a pidfile naming a dead pid, or an unrelated process, as not running', async () => {
    const gone = spawn('true')
    await new Promise((resolve) => gone.once('exit', resolve))
    const stale = join(dir, 'stale.pid')
    await writeFile(stale, `${gone.pid}\n`)
    const dead = (await probe(local, options({ pidfile: stale, controlUrl: undefined, configs: [] }))).probe
    expect(dead.master).to.include({ pid: gone.pid, alive: false, running: false })
    expect(dead.workers).to.deep.equal([])
    expect(dead.stats).to.equal(null)
    expect(dead.statsError).to.equal(null)

    await writeFile(stale, `${process.pid}\n`)
    const fromEnv = { dir: 'releases/1', file: 'config/from-env.rb' }
    const unrelated = (await probe(local, options({ pidfile: stale, configs: [fromEnv] }))).probe
    expect(unrelated.master).to.include({ pid: process.pid, alive: true, isPuma: false, running: false })
    // Nothing else about a process that is not Puma: its command line could hold secrets.
    expect(unrelated.master.proctitle).to.equal(undefined)
    expect(unrelated.master.cwd).to.equal(undefined)
    expect(unrelated.workers).to.deep.equal([])
    // Without a master, configs are read in the probe's own environment, which has no PROBE_WORKERS.
    expect(unrelated.configs[0]).to.include({ ok: true, envSource: 'probe', workers: 1 })
  })

  it('turns a wrong token into statsError', async () => {
    const { probe: result } = await probe(local, options(), 'not-the-token')
    expect(result.stats).to.equal(null)
    expect(result.statsError).to.equal('HTTP 403: Invalid auth token')
    expect(result.master.running).to.equal(true)
  })

  it('sees a phased restart (USR1): same master and started_at, phase 1, every worker new', async () => {
    const before = (await probe(local)).probe
    const oldPids = new Set(before.workers.map((w) => w.pid))
    process.kill(puma!.pid!, 'SIGUSR1')
    let after: ServerProbe | undefined
    await waitFor(
      async () => {
        after = (await probe(local)).probe
        const stats = after.stats
        return (
          stats?.phase === 1 &&
          stats.oldWorkers === 0 &&
          stats.bootedWorkers === 2 &&
          after.workers.length === 2 &&
          after.workers.every((w) => !oldPids.has(w.pid))
        )
      },
      { what: 'the phased restart to finish', timeoutMs: 30_000, intervalMs: 200 },
    )
    expect(after!.master.pid).to.equal(before.master.pid)
    expect(after!.stats?.startedAt).to.equal(before.stats?.startedAt)
    expect(after!.stats?.workerStatus.every((w) => w.phase === 1 && !oldPids.has(w.pid!))).to.equal(true)
    for (const worker of after!.workers) expect(worker.cwd).to.equal(release1)
  })
})
