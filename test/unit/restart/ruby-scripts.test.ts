import { execFile } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { expect } from 'chai'
import * as scripts from '../../../src/restart/ruby-scripts.js'
import { PROBE_MARK } from '../../../src/restart/server-probe.js'

const run = promisify(execFile)
const rubyDir = join(process.cwd(), 'src/restart/ruby')
const files = readdirSync(rubyDir).filter((name) => name.endsWith('.rb'))

/*
 * The Ruby that runs on hosts lives in src/restart/ruby/*.rb; src/restart/ruby-scripts.ts carries it into
 * the bundle, the single executable and the tsx-run sources. These tests keep the two the same and the
 * Ruby free of syntax errors and warnings.
 */
describe('the Ruby run on hosts (src/restart/ruby)', () => {
  it('holds the probe, the config evaluator and the health check', () => {
    expect(files.sort()).to.deep.equal(['config-facts.rb', 'health-check.rb', 'server-probe.rb'])
  })

  for (const name of files) {
    it(`${name} passes ruby -wc without a warning`, async () => {
      const { stdout, stderr } = await run('ruby', ['-wc', join(rubyDir, name)])
      expect(stdout.trim()).to.equal('Syntax OK')
      expect(stderr).to.equal('')
    })

    it(`${name} is carried unchanged by ruby-scripts.ts`, () => {
      const constant = `${name.replace(/\.rb$/, '').replace(/-/g, '_').toUpperCase()}_RB`
      expect((scripts as Record<string, string>)[constant]).to.equal(
        readFileSync(join(rubyDir, name), 'utf8'),
      )
    })
  }

  it('ruby-scripts.ts is what scripts/ruby-scripts.mjs generates (run `npm run build` when this fails)', async () => {
    await run(process.execPath, ['scripts/ruby-scripts.mjs', '--check'])
  })

  it('tags the probe report with the mark parseServerProbe looks for', () => {
    expect(scripts.SERVER_PROBE_RB).to.contain(`"probe" => "${PROBE_MARK}"`)
  })
})
