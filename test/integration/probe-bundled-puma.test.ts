import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { expect } from 'chai'
import { type PumaConfigFacts, probeServer } from '../../src/restart/server-probe.js'
import { LocalTransport } from '../../src/transport/local.js'
import { bundlePuma, PUMA_VERSIONS, type PumaVersion, pumaMajor } from '../support/bundled-puma.js'
import { useTempDir } from '../support/suite.js'

/** The control token: on the probe's stdin, and written in the configs whose evaluation fails. */
const TOKEN = 'probe-token-9c41e7aa'
/** A token only the config file knows (a file may name another token than deployer.yml). */
const FILE_TOKEN = 'file-token-03b5d2c8'

/**
 * How the server probe reads a release's puma.rb when the release bundles Puma: with that Puma, under
 * its own bundle, whatever `puma` the shell finds first (Debian's 5.6.5 here).
 */
describe('server probe: configs of releases that bundle Puma 5.6, 6.6, 7.2, 8.0 (real Bundler and Puma)', function () {
  this.timeout(240_000)
  const local = new LocalTransport()
  const tmp = useTempDir('deployer-probe-bundled-')
  const releases = new Map<PumaVersion, string>()

  before(async () => {
    for (const version of PUMA_VERSIONS) {
      const release = join(tmp.dir, 'releases', version)
      await mkdir(join(release, 'config'), { recursive: true })
      await bundlePuma(release, version)
      releases.set(version, release)
    }
  })

  /** Evaluates `pumaRb` as config/puma.rb of the release bundling `version`; returns the facts and raw output. */
  async function evaluate(
    version: PumaVersion,
    pumaRb: string,
  ): Promise<{ config: PumaConfigFacts; raw: string }> {
    await writeFile(join(releases.get(version) ?? '', 'config/puma.rb'), pumaRb)
    let raw = ''
    const probe = await probeServer(
      async (command, stdin) => {
        const result = await local.exec(command, { stdin })
        raw = result.stdout + result.stderr
        if (result.code !== 0) throw new Error(`the probe exited ${result.code}: ${result.stderr}`)
        return result.stdout
      },
      {
        deployTo: tmp.dir,
        pidfile: join(tmp.dir, 'no-puma.pid'),
        configs: [{ dir: `releases/${version}`, file: 'config/puma.rb' }],
      },
      TOKEN,
    )
    const config = probe.configs[0]
    if (!config) throw new Error('the probe evaluated no config')
    return { config, raw }
  }

  for (const version of PUMA_VERSIONS) {
    const seven = pumaMajor(version) >= 7
    it(`Puma ${version}: reads the file with the bundled Puma${seven ? ', clamped, with 7.0’s default preload told from a written one' : ''}`, async () => {
      const { config } = await evaluate(
        version,
        'workers 2\nbind "tcp://127.0.0.1:3123"\nworker_shutdown_timeout 7\n',
      )
      expect(config.error).to.equal(undefined)
      expect(config).to.deep.include({
        ok: true,
        pumaVersion: version,
        workers: 2,
        preloadApp: null,
        // 7.0+: on by default with 2+ workers and no prune_bundler; 5/6: only from WEB_CONCURRENCY.
        defaultPreload: seven,
        binds: ['tcp://127.0.0.1:3123'],
        bindsInFile: true,
        workerShutdownTimeout: 7,
      })
      const off = await evaluate(version, 'workers 2\npreload_app! false\nbind "tcp://127.0.0.1:3123"\n')
      expect(off.config).to.deep.include({ ok: true, preloadApp: false, defaultPreload: seven })
    })
  }

  for (const version of PUMA_VERSIONS.filter((v) => pumaMajor(v) >= 7)) {
    it(`Puma ${version}: a puma.rb using the 7.0 hook names (before_worker_boot, before_restart) loads`, async () => {
      const { config, raw } = await evaluate(
        version,
        'workers 2\nbefore_worker_boot { }\nbefore_restart { }\nbind "tcp://127.0.0.1:3123"\n',
      )
      expect(config.error).to.equal(undefined)
      expect(config.ok).to.equal(true)
      expect(raw).to.not.match(/deprecated/i)
    })
  }

  it('Puma 8.0.2: no bind in the file is reported, with the default bind this host gets', async () => {
    const { config } = await evaluate('8.0.2', 'workers 2\n')
    expect(config.bindsInFile).to.equal(false)
    // [::] where the host has a non-loopback IPv6 address, else rewritten to 0.0.0.0 at clamp.
    expect(config.binds).to.have.length(1)
    expect(config.binds[0]).to.match(/^tcp:\/\/(\[::\]|0\.0\.0\.0):9292$/)
  })

  it('a 7.0 hook name on Puma 5.6 fails with the name and line only: no options, no token, no inspect output', async () => {
    const { config, raw } = await evaluate(
      '5.6.5',
      [
        `activate_control_app "unix:///tmp/none.sock", { auth_token: ${JSON.stringify(TOKEN)} }`,
        'workers 2',
        'before_worker_boot { }',
        '',
      ].join('\n'),
    )
    expect(config.ok).to.equal(false)
    expect(config.pumaVersion).to.equal('5.6.5')
    expect(config.error).to.equal("NoMethodError: undefined method 'before_worker_boot' at config/puma.rb:3")
    expect(raw).to.not.contain(TOKEN)
  })

  const leaks = [
    {
      name: 'a NoMethodError on an object that holds the token',
      line: `Struct.new(:token).new(${JSON.stringify(TOKEN)}).frobnicate`,
      error: /^NoMethodError: undefined method 'frobnicate' at config\/puma\.rb:2$/,
    },
    {
      name: 'an exception whose message holds the token from stdin and an inspected object',
      line: `raise ArgumentError, "bad #{[${JSON.stringify(TOKEN)}].inspect} #{Object.new.inspect} #{Struct.new(:t).new(${JSON.stringify(TOKEN.toUpperCase())}).inspect}"`,
      error: /^ArgumentError: bad \["\[redacted\]"\] #<\.\.\.> #<\.\.\.>$/,
    },
    {
      name: 'a RuntimeError naming the control token the file set (not the one on stdin)',
      line: 'raise "token: #{@options[:control_auth_token]}"',
      error: /^token: \[redacted\]$/,
    },
  ]
  for (const version of ['5.6.5', '8.0.2'] as const) {
    for (const leak of leaks) {
      it(`Puma ${version}: ${leak.name} is reported without it`, async () => {
        const { config, raw } = await evaluate(
          version,
          `activate_control_app "unix:///tmp/none.sock", { auth_token: ${JSON.stringify(FILE_TOKEN)} }\n${leak.line}\n`,
        )
        expect(config.ok).to.equal(false)
        expect(config.error).to.match(leak.error)
        for (const secret of [TOKEN, TOKEN.toUpperCase(), FILE_TOKEN]) expect(raw).to.not.contain(secret)
      })
    }
  }
})
