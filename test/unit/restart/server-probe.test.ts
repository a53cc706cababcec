import { expect } from 'chai'
import {
  normalizeStats,
  parseServerProbe,
  probeServer,
  serverProbeCommand,
} from '../../../src/restart/server-probe.js'

const D = '/srv/shop'
const MARK = 'deployer-server-probe/1'

/** A report as the probe prints it, with the parts a test cares about replaced. */
function report(parts: Record<string, unknown> = {}): string {
  return JSON.stringify({
    probe: MARK,
    master: {
      pidfile: `${D}/shared/tmp/pids/puma.pid`,
      pid: 4100,
      alive: true,
      isPuma: true,
      running: true,
      environReadable: true,
      env: { pwd: `${D}/current`, webConcurrency: null, skipUsr2: false, bundleGemfile: null },
      proctitle: 'puma 5.6.5 (tcp://127.0.0.1:3000) [1]',
      pumaVersion: '5.6.5',
      binds: ['tcp://127.0.0.1:3000'],
      tag: '1',
      cwd: `${D}/releases/1`,
      exe: '/usr/bin/ruby3.1',
      rubyVersion: '3.1.2',
    },
    workers: [
      {
        pid: 4107,
        ppid: 4100,
        index: 0,
        masterPid: 4100,
        cwd: `${D}/releases/1`,
        cmdline: 'puma: cluster worker 0: 4100 [1]',
        tag: '1',
      },
      {
        pid: 4109,
        ppid: 4100,
        index: 1,
        masterPid: 4100,
        cwd: `${D}/releases/1`,
        cmdline: 'puma: cluster worker 1: 4100 [1]',
        tag: '1',
      },
    ],
    stats: {
      started_at: '2026-11-24T17:01:21Z',
      workers: 2,
      phase: 0,
      booted_workers: 2,
      old_workers: 0,
      worker_status: [
        {
          started_at: '2026-11-24T17:01:21Z',
          pid: 4107,
          index: 0,
          phase: 0,
          booted: true,
          last_checkin: '2026-11-24T17:01:26Z',
          last_status: { backlog: 0, running: 0, pool_capacity: 5, max_threads: 5, requests_count: 3 },
        },
        {
          started_at: '2026-11-24T17:01:21Z',
          pid: 4109,
          index: 1,
          phase: 0,
          booted: true,
          last_checkin: '2026-11-24T17:01:26Z',
          last_status: {},
        },
      ],
    },
    statsError: null,
    configs: [
      {
        dir: 'releases/1',
        file: 'config/puma.rb',
        envSource: 'master',
        ok: true,
        pumaVersion: '5.6.5',
        workers: 2,
        preloadApp: null,
        defaultPreload: false,
        pruneBundler: false,
        directory: `${D}/current`,
        binds: ['tcp://127.0.0.1:3000'],
        pidfile: `${D}/shared/tmp/pids/puma.pid`,
        controlUrl: `unix://${D}/shared/tmp/sockets/pumactl.sock`,
        stateFile: null,
        stdoutRedirect: `${D}/shared/log/puma.log`,
        workerShutdownTimeout: 30,
        workerBootTimeout: 60,
        forkWorker: null,
      },
    ],
    currentPath: `${D}/releases/1`,
    ...parts,
  })
}

describe('parseServerProbe', () => {
  it('reads a running cluster: master, workers, camelCased stats and config facts', () => {
    const probe = parseServerProbe(`${report()}\n`)
    expect(probe.master).to.include({
      pid: 4100,
      running: true,
      cwd: `${D}/releases/1`,
      pumaVersion: '5.6.5',
      rubyVersion: '3.1.2',
      tag: '1',
    })
    expect(probe.master.env).to.deep.equal({ pwd: `${D}/current`, skipUsr2: false })
    expect(probe.workers.map((w) => [w.index, w.pid, w.cwd])).to.deep.equal([
      [0, 4107, `${D}/releases/1`],
      [1, 4109, `${D}/releases/1`],
    ])
    expect(probe.stats).to.include({
      mode: 'cluster',
      phase: 0,
      workers: 2,
      bootedWorkers: 2,
      oldWorkers: 0,
      startedAt: '2026-11-24T17:01:21Z',
    })
    expect(probe.stats?.workerStatus[0]).to.deep.equal({
      index: 0,
      pid: 4107,
      phase: 0,
      booted: true,
      startedAt: '2026-11-24T17:01:21Z',
      lastCheckin: '2026-11-24T17:01:26Z',
      lastStatus: { backlog: 0, running: 0, poolCapacity: 5, maxThreads: 5, requestsCount: 3 },
    })
    expect(probe.stats?.workerStatus[1]?.lastStatus).to.deep.equal({})
    expect(probe.stats?.versions).to.equal(undefined)
    expect(probe.statsError).to.equal(null)
    expect(probe.configs[0]).to.include({
      ok: true,
      envSource: 'master',
      workers: 2,
      preloadApp: null,
      defaultPreload: false,
      directory: `${D}/current`,
    })
    expect(probe.configs[0]?.binds).to.deep.equal(['tcp://127.0.0.1:3000'])
    expect(probe.currentPath).to.equal(`${D}/releases/1`)
  })

  it('reports a stale pidfile naming a dead pid as not running, with no workers', () => {
    const probe = parseServerProbe(
      report({
        master: {
          pidfile: `${D}/p`,
          pid: 999999,
          alive: false,
          isPuma: false,
          running: false,
          environReadable: false,
          env: {},
        },
        workers: [],
        stats: null,
        statsError: `control socket ${D}/shared/tmp/sockets/pumactl.sock does not exist`,
      }),
    )
    expect(probe.master).to.include({ pid: 999999, alive: false, isPuma: false, running: false })
    expect(probe.master.cwd).to.equal(undefined)
    expect(probe.workers).to.deep.equal([])
    expect(probe.stats).to.equal(null)
    expect(probe.statsError).to.contain('does not exist')
  })

  it('reports a pidfile naming an unrelated live process as not running', () => {
    const probe = parseServerProbe(
      report({
        master: { pidfile: `${D}/p`, pid: 1, alive: true, isPuma: false, running: false, env: {} },
        workers: [],
      }),
    )
    expect(probe.master).to.include({ alive: true, isPuma: false, running: false })
  })

  it('never trusts running without a live Puma proctitle', () => {
    const probe = parseServerProbe(report({ master: { pid: 7, alive: true, isPuma: false, running: true } }))
    expect(probe.master.running).to.equal(false)
  })

  it('reports a missing pidfile with its reason', () => {
    const probe = parseServerProbe(
      report({ master: { pidfile: `${D}/p`, pid: null, pidfileError: 'missing', alive: false } }),
    )
    expect(probe.master).to.include({ pid: null, pidfileError: 'missing', running: false })
  })

  it('reads single-mode stats: no workers fields, the pool numbers instead', () => {
    const probe = parseServerProbe(
      report({
        workers: [],
        stats: {
          started_at: '2026-11-24T17:01:53Z',
          backlog: 0,
          running: 0,
          pool_capacity: 5,
          max_threads: 5,
          requests_count: 0,
        },
      }),
    )
    expect(probe.stats).to.deep.equal({
      mode: 'single',
      startedAt: '2026-11-24T17:01:53Z',
      phase: null,
      workers: null,
      bootedWorkers: null,
      oldWorkers: null,
      workerStatus: [],
      pool: { backlog: 0, running: 0, poolCapacity: 5, maxThreads: 5, requestsCount: 0 },
    })
  })

  it('keeps the reason when the stats could not be read', () => {
    const probe = parseServerProbe(report({ stats: null, statsError: 'HTTP 403: Invalid auth token' }))
    expect(probe.stats).to.equal(null)
    expect(probe.statsError).to.equal('HTTP 403: Invalid auth token')
  })

  it('reports a config that failed to load with its message and no facts', () => {
    const probe = parseServerProbe(
      report({
        configs: [
          {
            dir: 'releases/2',
            file: 'config/puma.rb',
            envSource: 'probe',
            ok: false,
            pumaVersion: '5.6.5',
            error: 'SyntaxError: config/puma.rb:3: syntax error, unexpected end-of-input',
          },
        ],
      }),
    )
    expect(probe.configs[0]).to.include({
      ok: false,
      envSource: 'probe',
      workers: null,
      preloadApp: null,
      directory: null,
    })
    expect(probe.configs[0]?.error).to.match(/^SyntaxError/)
    expect(probe.configs[0]?.binds).to.deep.equal([])
  })

  it('keeps whether Puma has puma-wild only when the probe could tell', () => {
    const base = {
      dir: 'current',
      file: 'config/puma.rb',
      envSource: 'master',
      ok: true,
      pumaVersion: '5.6.5',
    }
    const probe = parseServerProbe(
      report({ configs: [{ ...base, pumaWild: false }, { ...base, pumaWild: true }, base] }),
    )
    expect(probe.configs.map((config) => config.pumaWild)).to.deep.equal([false, true, undefined])
    expect(probe.configs[2]).to.not.have.property('pumaWild')
  })

  it('finds the report after noise a login shell printed', () => {
    const probe = parseServerProbe(`pyenv: warning\n{not json\n${report()}\n`)
    expect(probe.master.pid).to.equal(4100)
  })

  it('tolerates a report with only a master', () => {
    const probe = parseServerProbe(JSON.stringify({ probe: MARK, master: {} }))
    expect(probe.master).to.deep.include({
      pid: null,
      alive: false,
      running: false,
      environReadable: false,
      env: {},
    })
    expect(probe.workers).to.deep.equal([])
    expect(probe.stats).to.equal(null)
    expect(probe.statsError).to.equal(null)
    expect(probe.configs).to.deep.equal([])
  })

  const bad: [string, string, RegExp][] = [
    ['empty output', '', /did not print its JSON report \(its output was empty\)/],
    ['an error message', 'ruby: command not found\n', /it printed: ruby: command not found/],
    ['broken JSON', '{"probe": ', /did not print its JSON report/],
    ['JSON from something else', '{"status":"ok"}', /did not print its JSON report/],
    ['a report without a master', JSON.stringify({ probe: MARK }), /did not print its JSON report/],
  ]
  for (const [name, output, message] of bad) {
    it(`throws a clear error on ${name}`, () => {
      expect(() => parseServerProbe(output)).to.throw(message)
    })
  }
})

describe('normalizeStats', () => {
  it('keeps Puma 6+ versions', () => {
    const stats = normalizeStats({
      started_at: 'T',
      workers: 0,
      phase: 0,
      booted_workers: 0,
      old_workers: 0,
      worker_status: [],
      versions: { puma: '6.6.1', ruby: { engine: 'ruby', version: '3.3.0', patchlevel: 0 } },
    })
    expect(stats.versions).to.deep.equal({
      puma: '6.6.1',
      ruby: { engine: 'ruby', version: '3.3.0', patchlevel: 0 },
    })
    expect(stats.mode).to.equal('cluster')
  })

  it('keeps a null worker pid (fork_worker, briefly) as null', () => {
    const stats = normalizeStats({
      phase: 1,
      worker_status: [{ index: 1, pid: null, phase: 1, booted: false, last_status: {} }],
    })
    expect(stats.workerStatus[0]).to.include({ index: 1, pid: null, booted: false })
  })
})

describe('serverProbeCommand', () => {
  const options = {
    deployTo: "/srv/it's",
    pidfile: "/srv/it's/shared/tmp/pids/$(reboot).pid",
    controlUrl: 'unix:///srv/shop/shared/tmp/sockets/pumactl.sock',
    configs: [{ dir: 'releases/3', file: 'config/puma.rb' }],
  }

  it('starts with set -u and no set -e', () => {
    const command = serverProbeCommand(options)
    expect(command.split('\n')[0]).to.equal('set -u')
    expect(command).not.to.match(/set -e/)
  })

  it('quotes every value it puts on the command line', () => {
    const command = serverProbeCommand(options)
    expect(command).to.contain(`pidfile='/srv/it'\\''s/shared/tmp/pids/$(reboot).pid'`)
    expect(command).to.contain(` '/srv/it'\\''s' `)
    expect(command).to.contain(`'[{"dir":"releases/3","file":"config/puma.rb"}]'`)
    expect(command).to.contain(' unix:///srv/shop/shared/tmp/sockets/pumactl.sock ')
  })

  it('passes an empty control URL when there is none', () => {
    expect(serverProbeCommand({ ...options, controlUrl: undefined })).to.match(/"\$pidfile" '' '\[/)
  })

  it('runs Ruby without RubyGems and ends the interpreter options before its arguments', () => {
    expect(serverProbeCommand(options)).to.match(
      /^exec "\$ruby_bin" --disable-gems -e '.*' -- "\$pidfile" /ms,
    )
  })

  it('falls back to the master executable only when it is a ruby', () => {
    const command = serverProbeCommand(options)
    expect(command).to.contain('readlink "/proc/$pid/exe"')
    expect(command).to.contain('case ${ruby_bin##*/} in *ruby*)')
  })
})

describe('probeServer', () => {
  it('sends the token on stdin only, and parses the answer', async () => {
    const calls: [string, string][] = []
    const probe = await probeServer(
      async (command, stdin) => {
        calls.push([command, stdin])
        return report()
      },
      { deployTo: D, pidfile: `${D}/p`, configs: [] },
      'sekrit-token',
    )
    expect(probe.master.pid).to.equal(4100)
    expect(calls).to.have.length(1)
    expect(calls[0]?.[1]).to.equal('sekrit-token')
    expect(calls[0]?.[0]).not.to.contain('sekrit-token')
  })

  it('sends an empty stdin without a token', async () => {
    let input: string | undefined
    await probeServer(
      async (_command, stdin) => {
        input = stdin
        return report()
      },
      { deployTo: D, pidfile: `${D}/p`, configs: [] },
    )
    expect(input).to.equal('')
  })
})
