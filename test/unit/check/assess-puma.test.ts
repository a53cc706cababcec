import { expect } from 'chai'
import { assessPuma, type PumaFacts, type PumaSettings } from '../../../src/check/assess-puma.js'
import type { Severity } from '../../../src/check/findings.js'
import { D, expectFinding, master, pumaConfig, pumaFacts, SERVER, STOPPED, serverProbe } from './fixtures.js'

const SETTINGS: PumaSettings = { server: SERVER, deployTo: D }
const CONFIG_NAME = `${D}/current/config/puma.rb`

/** A stopped Puma whose config is `change`: the config alone is judged. */
function stoppedWith(change: Parameters<typeof pumaConfig>[0]): Partial<PumaFacts> {
  const config = pumaConfig(change)
  return { probe: serverProbe({ master: STOPPED, stats: null, workers: [], configs: [config] }), config }
}

/** A running Puma whose config is `change`. */
function runningWith(
  change: Parameters<typeof pumaConfig>[0],
  probe: Parameters<typeof serverProbe>[0] = {},
) {
  const config = pumaConfig(change)
  return { probe: serverProbe({ ...probe, configs: [config] }), config }
}

describe('assessPuma', () => {
  it('finds nothing to fix on a running cluster with directory, two workers and no preload', () => {
    const findings = assessPuma(pumaFacts(), SETTINGS)
    expect(findings.filter((finding) => finding.severity !== 'ok')).to.deep.equal([])
    expect(findings.map((finding) => finding.check)).to.deep.equal([
      'puma',
      'puma-directory',
      'puma-workers',
      'puma-preload',
      'puma-binds',
    ])
  })

  const table: {
    name: string
    facts: Partial<PumaFacts>
    settings?: Partial<PumaSettings>
    check: string
    severity: Severity
    message: RegExp
  }[] = [
    // The process
    {
      name: 'Puma not running is a warning: a release starts it',
      facts: stoppedWith({}),
      check: 'puma',
      severity: 'warning',
      message:
        /^Puma is not running \(no pid in \/srv\/shop\/shared\/tmp\/pids\/puma\.pid \(missing\)\); a release will start it/,
    },
    {
      name: 'Puma not running without server.start blocks',
      facts: stoppedWith({}),
      settings: { server: { ...SERVER, start: undefined } },
      check: 'puma',
      severity: 'blocking',
      message: /server\.start is not set, so a release could not start it/,
    },
    {
      name: 'a stale pidfile naming another process is reported as such',
      facts: { probe: serverProbe({ master: { ...STOPPED, pid: 77, alive: true } }) },
      check: 'puma',
      severity: 'warning',
      message: /pid 77 from .* is not Puma \(a stale pidfile\)/,
    },
    {
      name: 'a failed probe blocks: a release probes the same way',
      facts: { probe: null, probeError: 'reading the Puma server failed (exit 127): no ruby on PATH' },
      check: 'puma',
      severity: 'blocking',
      message: /^Could not read Puma's state: reading the Puma server failed \(exit 127\)/,
    },
    {
      name: 'unreadable stats warn: verification loses the fallback check',
      facts: { probe: serverProbe({ stats: null, statsError: 'HTTP 403: Invalid auth token' }) },
      check: 'puma-stats',
      severity: 'warning',
      message: /Cannot read Puma's stats from unix:\/\/.*: HTTP 403: Invalid auth token/,
    },
    {
      name: 'no control URL is info',
      facts: {},
      settings: { server: { ...SERVER, controlUrl: undefined } },
      check: 'puma-stats',
      severity: 'info',
      message: /server\.control_url is not set/,
    },
    {
      name: 'old workers still running warn (F13)',
      facts: {
        probe: serverProbe({
          stats: {
            mode: 'cluster',
            startedAt: 'x',
            phase: 3,
            workers: 2,
            bootedWorkers: 1,
            oldWorkers: 1,
            workerStatus: [],
          },
        }),
      },
      check: 'puma',
      severity: 'warning',
      message: /phased restart is in progress or stuck: 1 workers/,
    },
    {
      name: 'PUMA_SKIP_SIGUSR2 is info (F29)',
      facts: { probe: serverProbe({ master: { env: { skipUsr2: true } } }) },
      check: 'puma',
      severity: 'info',
      message: /PUMA_SKIP_SIGUSR2/,
    },
    // directory (F2, F3)
    {
      name: 'no directory warns: every release becomes a full restart',
      facts: runningWith({ directory: null }),
      check: 'puma-directory',
      severity: 'warning',
      message: /config\/puma\.rb does not set `directory`: .* full stop and start/,
    },
    {
      name: 'a directory elsewhere blocks: Puma keeps serving it',
      facts: runningWith({ directory: `${D}/releases/3` }),
      check: 'puma-directory',
      severity: 'blocking',
      message: /^`directory` is \/srv\/shop\/releases\/3, not \/srv\/shop\/current: Puma changes into it/,
    },
    {
      name: 'a directory spelled through the resolved deploy_to only warns',
      facts: { ...runningWith({ directory: '/data/shop/current' }), realDeployTo: '/data/shop' },
      check: 'puma-directory',
      severity: 'warning',
      message: /reaches \/srv\/shop\/current through a symlink/,
    },
    // workers and preload (F1, §1.3)
    {
      name: 'single mode warns: every release is a hot restart',
      facts: runningWith(
        { workers: 0 },
        {
          workers: [],
          stats: {
            mode: 'single',
            startedAt: 'x',
            phase: null,
            workers: null,
            bootedWorkers: null,
            oldWorkers: null,
            workerStatus: [],
          },
        },
      ),
      check: 'puma-workers',
      severity: 'warning',
      message: /single mode .* every release is a hot restart/,
    },
    {
      name: 'single mode in a stopped Puma’s config warns too',
      facts: stoppedWith({ workers: 0 }),
      check: 'puma-workers',
      severity: 'warning',
      message: /single mode/,
    },
    {
      name: 'one worker warns: a phased restart leaves none serving',
      facts: stoppedWith({ workers: 1 }),
      check: 'puma-workers',
      severity: 'warning',
      message: /one worker: a phased restart leaves no worker serving/,
    },
    {
      name: 'the running worker count wins over the config’s',
      facts: runningWith({ workers: 4 }),
      check: 'puma-workers',
      severity: 'ok',
      message: /^2 workers/,
    },
    {
      name: 'explicit preload_app! warns (F1, F14)',
      facts: runningWith({ preloadApp: true }),
      check: 'puma-preload',
      severity: 'warning',
      message: /sets `preload_app!`: Puma refuses phased restarts/,
    },
    {
      name: 'Puma 7’s default preload warns with the line that turns it off',
      facts: stoppedWith({ pumaVersion: '7.2.0', workers: 2, defaultPreload: true }),
      check: 'puma-preload',
      severity: 'warning',
      message: /Puma 7\.2\.0 turns `preload_app!` on by default/,
    },
    {
      name: 'a running Puma 8 with the default preload (2 workers, no prune_bundler) warns',
      facts: runningWith(
        { pumaVersion: '8.0.2', workers: 2, defaultPreload: true },
        { master: { pumaVersion: '8.0.2' } },
      ),
      check: 'puma-preload',
      severity: 'warning',
      message:
        /^Puma 8\.0\.2 turns `preload_app!` on by default with more than one worker and no `prune_bundler`/,
    },
    {
      name: 'Puma 8 with preload_app! false is ok',
      facts: runningWith(
        { pumaVersion: '8.0.2', preloadApp: false, defaultPreload: true },
        { master: { pumaVersion: '8.0.2' } },
      ),
      check: 'puma-preload',
      severity: 'ok',
      message: /is off: phased restarts are possible/,
    },
    {
      name: 'Puma 8 with prune_bundler has no default preload',
      facts: runningWith(
        { pumaVersion: '8.0.2', pruneBundler: true, pumaWild: true },
        { master: { pumaVersion: '8.0.2' } },
      ),
      check: 'puma-preload',
      severity: 'ok',
      message: /is off: phased restarts are possible/,
    },
    // binds written or not (puma/puma#3847)
    {
      name: 'no bind or port in the file warns: Puma 8 may listen on [::]:9292',
      facts: runningWith({ pumaVersion: '8.0.2', bindsInFile: false, binds: ['tcp://[::]:9292'] }),
      check: 'puma-binds',
      severity: 'warning',
      message:
        /sets no `bind` or `port`, so Puma listens on its default; Puma 8\.0\.2 reads it as tcp:\/\/\[::\]:9292\. Puma 8 listens on tcp:\/\/\[::\]:9292/,
    },
    {
      name: 'no bind in the file of a source config read before the first release warns too',
      facts: stoppedWith({ pumaVersion: '5.6.5', bindsInFile: false, binds: ['tcp://0.0.0.0:9292'] }),
      check: 'puma-binds',
      severity: 'warning',
      message: /sets no `bind` or `port`.*reads it as tcp:\/\/0\.0\.0\.0:9292/,
    },
    {
      name: 'WEB_CONCURRENCY on Puma 5 turns preload on in the running master',
      facts: runningWith({}, { master: { env: { webConcurrency: '3', skipUsr2: false } } }),
      check: 'puma-preload',
      severity: 'warning',
      message: /^WEB_CONCURRENCY=3 in Puma's environment turns `preload_app!` on in Puma 5\.6\.5/,
    },
    {
      name: 'preload_app! false wins over WEB_CONCURRENCY',
      facts: runningWith({ preloadApp: false }, { master: { env: { webConcurrency: '3' } } }),
      check: 'puma-preload',
      severity: 'ok',
      message: /is off/,
    },
    // prune_bundler (§3.3)
    {
      name: 'prune_bundler without puma-wild under bundle exec blocks (F10)',
      facts: runningWith({ pruneBundler: true, pumaWild: false }),
      check: 'puma-prune-bundler',
      severity: 'blocking',
      message: /has no bin\/puma-wild .* aborts at boot under `bundle exec` \(F10\)/,
    },
    {
      name: 'prune_bundler without puma-wild and without bundle exec warns',
      facts: runningWith({ pruneBundler: true, pumaWild: false }),
      settings: { server: { ...SERVER, start: 'puma -C config/puma.rb' } },
      check: 'puma-prune-bundler',
      severity: 'warning',
      message: /no bin\/puma-wild/,
    },
    {
      name: 'prune_bundler under preload warns: pruning is skipped',
      facts: runningWith({ pruneBundler: true, preloadApp: true }),
      check: 'puma-prune-bundler',
      severity: 'warning',
      message: /preload is on, so Puma skips pruning/,
    },
    {
      name: 'prune_bundler before Puma 8.0.1 notes the dropped BUNDLE_ variables (F9)',
      facts: runningWith({ pruneBundler: true, pumaWild: true }),
      check: 'puma-prune-bundler',
      severity: 'info',
      message: /keeps the running Puma version.*\(F5\).*BUNDLE_\* variables .*\(F9\)/,
    },
    // binds (F15)
    {
      name: 'binds that differ from the config warn',
      facts: runningWith({ binds: ['tcp://127.0.0.1:3000?backlog=2048'] }),
      check: 'puma-binds',
      severity: 'warning',
      message:
        /^Puma listens on tcp:\/\/127\.0\.0\.1:3000, but .* binds tcp:\/\/127\.0\.0\.1:3000\?backlog=2048/,
    },
    // config
    {
      name: 'a config Puma cannot read blocks',
      facts: runningWith({ ok: false, error: 'SyntaxError: unexpected end-of-input' }),
      check: 'puma-config',
      severity: 'blocking',
      message: new RegExp(`^Puma cannot read ${CONFIG_NAME}: SyntaxError`),
    },
    {
      name: 'the source’s config is named as such when nothing is deployed',
      facts: { ...stoppedWith({}), configOrigin: 'source' },
      check: 'puma-config',
      severity: 'info',
      message:
        /^Nothing is deployed yet: the Puma checks read the source's config\/puma\.rb with Puma 5\.6\.5 on this machine\.$/,
    },
    {
      name: 'a source config this machine cannot read warns',
      facts: {
        probe: serverProbe({ master: STOPPED }),
        config: null,
        configOrigin: 'source',
        configError: 'no ruby on PATH',
      },
      check: 'puma-config',
      severity: 'warning',
      message: /could not be read with Puma on this machine: no ruby on PATH/,
    },
    // Wiring of a Puma deployer will start
    {
      name: 'a config without pidfile warns when Puma must be started',
      facts: stoppedWith({ pidfile: null }),
      check: 'puma-pidfile',
      severity: 'warning',
      message: /sets no `pidfile`/,
    },
    {
      name: 'a pidfile elsewhere warns',
      facts: stoppedWith({ pidfile: '/tmp/puma.pid' }),
      check: 'puma-pidfile',
      severity: 'warning',
      message:
        /writes its pidfile to \/tmp\/puma\.pid, but server\.pidfile is \/srv\/shop\/shared\/tmp\/pids\/puma\.pid/,
    },
    {
      name: 'a control app elsewhere warns',
      facts: stoppedWith({ controlUrl: 'tcp://127.0.0.1:9293' }),
      check: 'puma-stats',
      severity: 'warning',
      message: /starts its control app at tcp:\/\/127\.0\.0\.1:9293, but server\.control_url is unix:/,
    },
    // health
    {
      name: 'a healthy current release is ok',
      facts: pumaFacts({ health: { status: 200, body: 'release=3 ok', expected: 'release=3' } }),
      settings: { health: { url: 'http://127.0.0.1:3000/up', expect: 'release={release}', timeout: 30 } },
      check: 'health',
      severity: 'ok',
      message: /^http:\/\/127\.0\.0\.1:3000\/up answers HTTP 200 with "release=3"\.$/,
    },
    {
      name: 'a health answer without the expected text warns',
      facts: pumaFacts({ health: { status: 200, body: 'release=2', expected: 'release=3' } }),
      settings: { health: { url: 'http://127.0.0.1:3000/up', expect: 'release={release}', timeout: 30 } },
      check: 'health',
      severity: 'warning',
      message: /answers HTTP 200 without "release=3"/,
    },
    {
      name: 'a health URL that does not answer warns',
      facts: pumaFacts({ health: { status: 0, body: 'Errno::ECONNREFUSED: Connection refused' } }),
      settings: { health: { url: 'http://127.0.0.1:3000/up', timeout: 30 } },
      check: 'health',
      severity: 'warning',
      message: /fails: Errno::ECONNREFUSED/,
    },
    {
      name: 'the health URL is not checked while Puma is stopped',
      facts: stoppedWith({}),
      settings: { health: { url: 'http://127.0.0.1:3000/up', timeout: 30 } },
      check: 'health',
      severity: 'info',
      message: /not checked: Puma is not running/,
    },
  ]

  for (const row of table) {
    it(row.name, () => {
      const findings = assessPuma(pumaFacts(row.facts), { ...SETTINGS, ...row.settings })
      expectFinding(findings, row)
    })
  }

  it('judges no preload in single mode, where phased restarts are impossible anyway', () => {
    const findings = assessPuma(pumaFacts(stoppedWith({ workers: 0, preloadApp: true })), SETTINGS)
    expect(findings.map((finding) => finding.check)).to.not.include('puma-preload')
  })

  it('takes a pidfile relative to the release in a shared dir for server.pidfile', () => {
    for (const pidfile of ['tmp/pids/puma.pid', `${D}/shared/tmp/pids/puma.pid`]) {
      const findings = assessPuma(pumaFacts(stoppedWith({ pidfile })), SETTINGS)
      expect(findings.map((finding) => finding.check)).to.not.include('puma-pidfile')
    }
  })

  it('says how to keep phased restarts under Puma 7+’s default preload: preload_app! false or prune_bundler', () => {
    const facts = pumaFacts(stoppedWith({ pumaVersion: '7.2.1', workers: 3, defaultPreload: true }))
    const preload = assessPuma(facts, SETTINGS).find((finding) => finding.check === 'puma-preload')
    expect(preload?.hint).to.contain('`preload_app! false`').and.contain('`prune_bundler`')
  })

  it('leaves an implicit bind alone when the start command binds, or when the probe predates the fact', () => {
    const implicit = stoppedWith({ bindsInFile: false, binds: ['tcp://0.0.0.0:9292'] })
    for (const start of ['bundle exec puma -b tcp://127.0.0.1:3000 -C config/puma.rb', 'puma --port=3000']) {
      const findings = assessPuma(pumaFacts(implicit), { ...SETTINGS, server: { ...SERVER, start } })
      expect(
        findings.map((finding) => finding.check),
        start,
      ).to.not.include('puma-binds')
    }
    const unknown = assessPuma(pumaFacts(stoppedWith({ binds: ['tcp://0.0.0.0:9292'] })), SETTINGS)
    expect(unknown.map((finding) => finding.check)).to.not.include('puma-binds')
    const written = assessPuma(pumaFacts(stoppedWith({ bindsInFile: true })), SETTINGS)
    expect(written.map((finding) => finding.check)).to.not.include('puma-binds')
  })

  it('compares binds only with a running Puma', () => {
    const findings = assessPuma(pumaFacts(stoppedWith({ binds: ['tcp://0.0.0.0:9'] })), SETTINGS)
    expect(findings.map((finding) => finding.check)).to.not.include('puma-binds')
  })

  it('uses the master’s facts for the preload rules', () => {
    const facts = pumaFacts(runningWith({ pumaVersion: '5.6.5', defaultPreload: true }, { master: master() }))
    // The config was read in an environment with WEB_CONCURRENCY; the running master has none.
    const preload = assessPuma(facts, SETTINGS).find((finding) => finding.check === 'puma-preload')
    expect(preload?.severity).to.equal('ok')
  })
})
