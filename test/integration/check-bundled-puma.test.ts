import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { expect } from 'chai'
import type { Finding, HostCheck } from '../../src/check/findings.js'
import type { CheckResult } from '../../src/check/run-check.js'
import { type CliResult, parseJson, runCli } from '../support/cli.js'
import type { Workspace } from '../support/fixture.js'
import { PUMA_TOKEN, writePumaApp, writePumaConfig } from '../support/puma-app.js'
import { usePumaWorkspace } from '../support/suite.js'

/** `deployer check` on apps that bundle Puma 7.2 and 8.0, whose defaults differ from 5.6's. */
describe('deployer check on apps that bundle Puma 7.2 and 8.0 (real sshd, real Puma)', function () {
  this.timeout(180_000)
  let ws: Workspace
  let port: number
  const suite = usePumaWorkspace({
    setup: async (env) => {
      ;({ ws, port } = env)
    },
  })

  const deployer = (...args: string[]): Promise<CliResult> =>
    runCli([...args, '--config', ws.config], { env: { PUMA_TOKEN } })
  const check = async (): Promise<HostCheck | undefined> =>
    parseJson<CheckResult>(await deployer('check', '--json')).hosts[0]
  const findingsOf = (host: HostCheck | undefined, check: string): Finding[] =>
    host?.findings.filter((finding) => finding.check === check) ?? []

  it('Puma 7.2.1 running with its default preload (2 workers, no preload_app! false): warns and says how to keep phased restarts', async () => {
    await writePumaApp(ws, { port, version: 'v1', bundledPuma: '7.2.1', preload: 'unset' })
    await writePumaConfig(ws, suite.sshd, { port, bundledPuma: '7.2.1' })
    const release = await deployer('release')
    expect(release.code, release.stderr).to.equal(0)
    const host = await check()
    const [preload] = findingsOf(host, 'puma-preload')
    expect(preload, JSON.stringify(host?.findings, null, 2)).to.deep.include({ severity: 'warning' })
    expect(preload?.message).to.contain('Puma 7.2.1 turns `preload_app!` on by default')
    expect(preload?.hint).to.contain('`preload_app! false`').and.contain('`prune_bundler`')
    // The file binds: no implicit-bind warning, and the running binds match the file's.
    expect(findingsOf(host, 'puma-binds').map((finding) => finding.severity)).to.deep.equal(['ok'])
  })

  it('Puma 8.0.2 before the first release: reads the source with the bundled Puma and warns about the implicit bind', async () => {
    await writePumaApp(ws, { port, version: 'v1', bundledPuma: '8.0.2' })
    // No bind or port: Puma 8 listens on [::]:9292 where the host has IPv6. Nothing is started here.
    await writeFile(
      join(ws.source, 'config/puma.rb'),
      `directory ${JSON.stringify(join(ws.deployTo, 'current'))}\nworkers 2\n`,
    )
    await writePumaConfig(ws, suite.sshd, { port, bundledPuma: '8.0.2' })
    const host = await check()
    const config = findingsOf(host, 'puma-config')
    expect(config.map((finding) => finding.message).join('\n')).to.contain('with Puma 8.0.2 on this machine')
    const binds = findingsOf(host, 'puma-binds')
    expect(
      binds.map((finding) => finding.severity),
      JSON.stringify(host?.findings, null, 2),
    ).to.deep.equal(['warning'])
    expect(binds[0]?.message).to.match(/sets no `bind` or `port`.*Puma 8 listens on tcp:\/\/\[::\]:9292/)
    expect(binds[0]?.hint).to.contain('bind "tcp://127.0.0.1:3000"')
    expect(findingsOf(host, 'puma-preload')[0]?.severity).to.equal('warning')
  })
})
