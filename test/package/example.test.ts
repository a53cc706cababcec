import { execFile } from 'node:child_process'
import { mkdtemp, readFile, readlink, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { expect } from 'chai'
import { cliEnv } from '../support/cli.js'
import { buildSea, installPackage } from '../support/package.js'

const run = promisify(execFile)
const script = fileURLToPath(new URL('../../examples/deploy-local.sh', import.meta.url))

/**
 * The README's main job, `npm run example`, run with the `deployer` users get: the npm package
 * installed from its tarball, and the single executable. (The checkout's bin/run.js loads the same
 * bundle as the package; the package test adds what packing and installing could break.)
 */
const commands: { name: string; command: () => Promise<string> }[] = [
  {
    name: 'the npm package installed into an empty prefix',
    command: async () => (await installPackage()).bin,
  },
  { name: 'the single executable', command: buildSea },
]

for (const { name, command } of commands) {
  describe(`the README's main job with ${name}: deploying the example app to a local target`, function () {
    this.timeout(300_000)
    let dir: string
    let deployer: string
    before(async () => {
      deployer = await command()
      dir = await mkdtemp(join(tmpdir(), 'deployer-example-test-'))
    })
    after(async () => {
      await rm(dir, { recursive: true, force: true })
    })

    it('builds the app with its vendored gem, releases it with Puma serving, rolls back and forward', async () => {
      const deployTo = join(dir, 'shop')
      const { stdout } = await run('bash', [script], {
        env: cliEnv({ DEPLOY_TO: deployTo, DEPLOYER: deployer }),
        maxBuffer: 16 * 1024 * 1024,
      })
      // Puma served each release in turn: 1, 2, back to 1, forward to 2.
      const served = [...stdout.matchAll(/hello from release (\d+) \(pid \d+, cwd .*\/releases\/(\d+)\)/g)]
      expect(served.map((match) => [match[1], match[2]])).to.deep.equal([
        ['1', '1'],
        ['2', '2'],
        ['1', '1'],
        ['2', '2'],
      ])
      expect(stdout).to.contain('stopped Puma')
      // A code change is a phased restart, although the start command sets the bind from the environment.
      expect(stdout).to.contain('release 2 is live (was 1), phased restart')
      expect(await readlink(join(deployTo, 'current'))).to.equal('releases/2')
      // The install ran for real: Bundler put the vendored gem into the release's own vendor/bundle.
      const bundleConfig = await readFile(join(deployTo, 'releases', '2', '.bundle', 'config'), 'utf8')
      expect(bundleConfig).to.contain('BUNDLE_PATH: "vendor/bundle"')
      expect(await readlink(join(deployTo, 'releases', '2', 'log'))).to.equal(join(deployTo, 'shared', 'log'))
    })
  })
}
