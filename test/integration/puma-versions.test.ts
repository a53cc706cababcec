import { execFile } from 'node:child_process'
import { access, readFile, readlink, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { expect } from 'chai'
import { ExitCode } from '../../src/errors.js'
import { PUMA_VERSIONS, prebuiltBundle, pumaMajor } from '../support/bundled-puma.js'
import { type ReleaseJson, releaseJson, runCli } from '../support/cli.js'
import { DEPLOY_USER, makeWorkspace, type Workspace } from '../support/fixture.js'
import {
  answers,
  masterPid,
  PUMA_TOKEN,
  type PumaAppOptions,
  stopPuma,
  writePumaApp,
  writePumaConfig,
} from '../support/puma-app.js'
import { findFreePort } from '../support/sshd.js'
import { usePumaWorkspace, useSshd } from '../support/suite.js'

const run = promisify(execFile)

interface Stats {
  started_at: string
  phase: number
  workers: number
  booted_workers: number
  worker_status: { pid: number; booted: boolean }[]
}

/**
 * The restarts deployer chooses, run against every Puma version an app may bundle: Debian's 5.6.5 and
 * the newest 6.x, 7.x and 8.x, each resolved through the app's own Gemfile and started with
 * `bundle exec puma`. One sshd for the file and one app per version, whose releases build on each other
 * (the tests of a version run in order).
 */
describe('every Puma an app bundles: 5.6, 6.6, 7.2, 8.0 (real Puma clusters behind a real sshd)', function () {
  this.timeout(240_000)
  // Compiling the gems dominates a cold run: do it once, up front, outside the tests' own timings.
  const suite = useSshd(undefined, () => Promise.all(PUMA_VERSIONS.map((version) => prebuiltBundle(version))))

  for (const version of PUMA_VERSIONS) {
    describe(`Puma ${version}`, () => {
      let ws: Workspace
      let port: number
      // 7.0 renamed the worker hooks; a release written for 7+ uses the new names (puma/puma#3438).
      const hook = pumaMajor(version) >= 7 ? 'before_worker_boot' : 'on_worker_boot'
      const app = (options: Partial<PumaAppOptions>) =>
        writePumaApp(ws, {
          port,
          version: 'v1',
          bundledPuma: version,
          // The hook's mark shows up in every answer: proof that workers ran it.
          extraConfig: [`${hook} { ENV["FROM_ENV_FILE"] = ${JSON.stringify(hook)} }`],
          ...options,
        })
      const release = () => releaseJson(ws.config, [], { PUMA_TOKEN })
      const releaseOk = async () => {
        const outcome = await release()
        expect(outcome.result.code, outcome.result.stderr).to.equal(0)
        return outcome.json
      }
      const restartOf = (json: ReleaseJson) => json.hosts[0]?.restart
      const stats = () => readStats(ws)
      const releaseDir = (n: number) => join(ws.deployTo, 'releases', String(n))
      const pumaLog = () => readFile(join(ws.deployTo, 'shared/log/puma.log'), 'utf8').catch(() => '')

      usePumaWorkspace({
        scope: 'all',
        sshd: () => suite.sshd,
        setup: async (env) => {
          ;({ ws, port } = env)
          await app({})
          await writePumaConfig(ws, env.sshd, { port, bundledPuma: version })
        },
      })

      it('starts the bundled Puma, and a code change is a phased restart: same master, every worker in the new release', async () => {
        expect(restartOf(await releaseOk())?.kind).to.equal('start')
        const before = await stats()
        expect(before.workers).to.equal(2)
        const pid = await masterPid(ws)
        const banner = await readFile(join(ws.deployTo, 'shared/log/puma.deployer.log'), 'utf8')
        expect(banner, 'the master runs the bundled Puma').to.contain(`Puma version: ${version}`)

        await app({ version: 'v2' })
        const json = await releaseOk()
        expect(restartOf(json)?.kind, JSON.stringify(restartOf(json))).to.equal('phased')
        expect(await masterPid(ws)).to.equal(pid)
        const after = await stats()
        expect(after.started_at).to.equal(before.started_at)
        const oldPids = new Set(before.worker_status.map((worker) => worker.pid))
        expect(after.worker_status.map((worker) => oldPids.has(worker.pid))).to.deep.equal([false, false])
        for (const body of await answers(port))
          expect(body)
            .to.contain(`version=v2 `)
            .and.contain(`cwd=${releaseDir(2)} `)
            .and.contain(`from_env=${hook}`)
        for (const worker of after.worker_status)
          expect(await readlink(`/proc/${worker.pid}/cwd`)).to.equal(releaseDir(2))
        expect(await pumaLog()).to.not.match(/deprecated/i)
      })

      it('a puma.rb change is a hot restart (USR2): same master pid, new started_at, the new release serving', async () => {
        const pid = await masterPid(ws)
        const before = await stats()
        await app({ version: 'v3', threads: 3 })
        const json = await releaseOk()
        expect(restartOf(json)?.kind, JSON.stringify(restartOf(json))).to.equal('hot')
        expect(await masterPid(ws)).to.equal(pid)
        expect((await stats()).started_at).to.not.equal(before.started_at)
        for (const body of await answers(port))
          expect(body)
            .to.contain('version=v3 ')
            .and.contain(`cwd=${releaseDir(3)} `)
      })

      it("a config.ru that raises is rolled back: the old release serves again with its own config's worker count", async () => {
        // The failed release also asks for 3 workers: recovery must verify against the restored release's
        // config (2 workers), not the failed one's.
        await app({ version: 'v4', brokenBoot: true, workers: 3 })
        const { result, json } = await release()
        expect(result.code, result.stderr).to.equal(ExitCode.verify)
        expect(json.hosts[0]?.status, result.stderr).to.equal('rolled-back')
        expect(await readlink(join(ws.deployTo, 'current'))).to.equal('releases/3')
        for (const body of await answers(port))
          expect(body)
            .to.contain('version=v3 ')
            .and.contain(`cwd=${releaseDir(3)} `)
        const restored = await stats()
        expect(restored.workers).to.equal(2)
        expect(restored.worker_status.map((worker) => worker.booted)).to.deep.equal([true, true])
      })

      it('prune never deletes the release the master booted from, and a later hot restart still works', async () => {
        const pruned = await runCli(['prune', '--keep', '1', '--config', ws.config], { env: { PUMA_TOKEN } })
        expect(pruned.code, pruned.stderr).to.equal(0)
        // `bundle exec` in release 1 loaded Puma's extension from releases/1/vendor/bundle (or, for Debian's
        // Puma, started there): the master keeps using that release across USR1 and USR2.
        await access(releaseDir(1))
        expect(pruned.stdout).to.match(/kept 1: in use by pid \d+/)
        await app({ version: 'v5', threads: 2 })
        const json = await releaseOk()
        expect(restartOf(json)?.kind).to.equal('hot')
        for (const body of await answers(port))
          expect(body)
            .to.contain('version=v5 ')
            .and.contain(`cwd=${releaseDir(5)} `)
      })
    })
  }

  for (const version of PUMA_VERSIONS) {
    it(`Puma ${version}: the config/puma.rb that \`deployer init --puma\` writes boots, restarts phased and hot, and Puma warns about nothing`, async () => {
      const ws = await makeWorkspace(DEPLOY_USER)
      try {
        const port = await findFreePort()
        await writePumaApp(ws, { port, version: 'v1', bundledPuma: version })
        const init = await runCli([
          'init',
          '--puma',
          '--force',
          '--app',
          'itest',
          '--deploy-to',
          ws.deployTo,
          '--port',
          String(port),
          '--dir',
          ws.source,
        ])
        expect(init.code, init.stderr).to.equal(0)
        // init also wrote a deployer.yml; the test's own one points at the test sshd.
        const envFile = join(ws.dir, 'app.env')
        await writeFile(envFile, `PUMA_CONTROL_TOKEN=${PUMA_TOKEN}\n`)
        await writePumaConfig(ws, suite.sshd, { port, bundledPuma: version, envFile })
        const template = await readFile(join(ws.source, 'config/puma.rb'), 'utf8')
        const kinds: (string | undefined)[] = []
        for (const [app, pumaRb] of [
          ['v1', template],
          ['v2', template],
          ['v2', `${template}\nthreads 2, 2\n`],
        ] as const) {
          await writePumaApp(ws, { port, version: app, bundledPuma: version })
          await writeFile(join(ws.source, 'config/puma.rb'), pumaRb)
          const outcome = await releaseJson(ws.config, [], { PUMA_TOKEN })
          expect(outcome.result.code, outcome.result.stderr).to.equal(0)
          kinds.push(outcome.json.hosts[0]?.restart?.kind)
        }
        expect(kinds).to.deep.equal(['start', 'phased', 'hot'])
        for (const body of await answers(port, 6))
          expect(body).to.contain(`cwd=${join(ws.deployTo, 'releases/3')} `)
        // Puma's own output (the template sets no stdout_redirect): deployer's start log.
        const log = await readFile(join(ws.deployTo, 'shared/log/puma.deployer.log'), 'utf8')
        expect(log).to.contain(`Puma version: ${version}`)
        expect(log).to.not.match(/deprecated|warning/i)
      } finally {
        await stopPuma(ws)
        await rm(ws.dir, { recursive: true, force: true })
      }
    })
  }
})

async function readStats(ws: Workspace): Promise<Stats> {
  const socket = join(ws.deployTo, 'shared/tmp/sockets/pumactl.sock')
  const { stdout } = await run('curl', ['-s', '--unix-socket', socket, `http://x/stats?token=${PUMA_TOKEN}`])
  return JSON.parse(stdout) as Stats
}
