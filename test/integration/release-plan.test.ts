import { readFile, writeFile } from 'node:fs/promises'
import { expect } from 'chai'
import type { ReleasePlan } from '../../src/plan/release-plan.js'
import { type ReleaseJson, releaseJson } from '../support/cli.js'
import type { Workspace } from '../support/fixture.js'
import { PUMA_TOKEN, writePumaApp, writePumaConfig } from '../support/puma-app.js'
import { usePumaWorkspace } from '../support/suite.js'

/**
 * `release --dry-run --json` returns the plan; the run that follows executes it: the same number, waves,
 * steps on each host (the keys of its timings), reuse, nothing pruned beyond the plan's list and, where the dry run could predict
 * it, the same restart.
 */
describe('the release plan: what --dry-run says is what the run does (real Puma, real sshd)', function () {
  this.timeout(240_000)
  let ws: Workspace
  let port: number
  usePumaWorkspace({
    setup: async (env) => {
      ;({ ws, port } = env)
      await writePumaApp(ws, { port, version: 'v1' })
      await writePumaConfig(ws, env.sshd, { port })
      const config = await readFile(ws.config, 'utf8')
      await writeFile(ws.config, config.replace('keep_releases: 10', 'keep_releases: 2'))
    },
  })

  const release = async (...args: string[]): Promise<ReleaseJson> => {
    const { result, json } = await releaseJson(ws.config, args, { PUMA_TOKEN })
    expect(result.code, result.stderr).to.equal(0)
    return json
  }

  /** Compares a dry run's plan with the run made right after it. */
  const expectRunFollowed = (planned: ReleasePlan, run: ReleaseJson) => {
    expect(run.plan, 'the run carries its plan').to.not.equal(undefined)
    const executed = run.plan as ReleasePlan
    const { hosts: plannedHosts, ...plannedRest } = planned
    const { hosts: executedHosts, ...executedRest } = executed
    expect(executedRest).to.deep.equal(plannedRest)
    expect(run.release).to.equal(planned.release)
    plannedHosts.forEach((host, index) => {
      const done = run.hosts[index]
      const executedHost = executedHosts[index]
      expect(done?.status).to.equal('released')
      expect(Object.keys(done?.timings ?? {}).filter((phase) => phase !== 'inspect')).to.deep.equal(
        host.steps,
      )
      expect(executedHost?.steps).to.deep.equal(host.steps)
      expect(done?.upload?.from).to.equal(host.reuseFrom)
      // Prune removes at most what the plan listed: a release Puma booted from is kept.
      expect(host.prune).to.include.members(done?.pruned ?? [])
      if (host.restart?.when === 'predicted') expect(done?.restart?.kind).to.equal(host.restart.decision.kind)
    })
  }

  it('predicts phased for a code change and hot for a puma.rb change, and the runs do that, pruning what it listed', async () => {
    const first = await release()
    expect(first.plan?.hosts[0]?.restart).to.deep.equal({ when: 'after-upload' })
    await writePumaApp(ws, { port, version: 'v2' })
    await release()

    await writePumaApp(ws, { port, version: 'v3' })
    const codeChange = (await release('--dry-run')).plan as ReleasePlan
    expect(codeChange.release).to.equal(3)
    expect(codeChange.hosts[0]).to.deep.include({ current: 2, reuseFrom: 2, prune: [1] })
    expect(codeChange.hosts[0]?.restart).to.deep.include({ when: 'predicted' })
    if (codeChange.hosts[0]?.restart?.when === 'predicted')
      expect(codeChange.hosts[0].restart.decision.kind).to.equal('phased')
    expectRunFollowed(codeChange, await release())

    await writePumaApp(ws, { port, version: 'v4', threads: 3 })
    const configChange = (await release('--dry-run')).plan as ReleasePlan
    if (configChange.hosts[0]?.restart?.when !== 'predicted') expect.fail('the dry run predicts the restart')
    expect(configChange.hosts[0].restart.decision.kind).to.equal('hot')
    expectRunFollowed(configChange, await release())
  })
})
