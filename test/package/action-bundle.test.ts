import { execFile } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { expect } from 'chai'
import { ACTION_DIST } from '../support/action.js'
import { ROOT } from '../support/package.js'

const run = promisify(execFile)

/**
 * The action runs dist-action/ as committed (no install on the runner), so the committed files must be
 * exactly what the sources and package-lock.json build today. esbuild's output is deterministic, so
 * this rebuilds them and compares bytes. The action's behaviour is tested on that bundle in
 * test/integration/action.test.ts.
 */
describe('the GitHub Action bundle committed in dist-action/', function () {
  this.timeout(120_000)
  let fresh: string
  before(async () => {
    fresh = await mkdtemp(join(tmpdir(), 'deployer-action-bundle-'))
    await run(process.execPath, [join(ROOT, 'scripts', 'bundle.mjs'), '--action', fresh], { cwd: ROOT })
  })
  after(async () => {
    await rm(fresh, { recursive: true, force: true })
  })

  it('is what the sources build now (else run `npm run build:action` and commit dist-action/)', async () => {
    const names = (await readdir(fresh)).sort()
    expect(names).to.deep.equal(['deployer.cjs', 'main.cjs'])
    expect((await readdir(ACTION_DIST)).sort(), 'files in dist-action/').to.deep.equal(names)
    for (const name of names) {
      const [committed, built] = await Promise.all([
        readFile(join(ACTION_DIST, name)),
        readFile(join(fresh, name)),
      ])
      expect(
        committed.equals(built),
        `dist-action/${name} is stale: run \`npm run build:action\` and commit dist-action/`,
      ).to.equal(true)
    }
  })
})
