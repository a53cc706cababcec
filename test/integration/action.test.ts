import { readdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:net'
import { join } from 'node:path'
import { expect } from 'chai'
import { ExitCode } from '../../src/errors.js'
import { type ActionRun, makeRunner, type Runner, startAction } from '../support/action.js'
import { DEPLOY_USER, makeWorkspace, type Workspace, writeApp, writeConfig } from '../support/fixture.js'
import { PUMA_TOKEN, stopPuma, writePumaApp, writePumaConfig } from '../support/puma-app.js'
import { findFreePort, startSshd, type TestSshd } from '../support/sshd.js'
import { waitFor } from '../support/wait.js'

describe('the GitHub Action entry point, as a runner starts it, over a real sshd', function () {
  this.timeout(180_000)
  let sshd: TestSshd
  let ws: Workspace
  let runner: Runner
  let privateKey: string
  let knownHosts: string

  /**
   * Points the config's ssh.identity and ssh.known_hosts at files that do not exist, so only the
   * files the action writes from its inputs can make a connection work.
   */
  async function withoutLocalSshFiles(): Promise<void> {
    const text = await readFile(ws.config, 'utf8')
    const rewritten = text
      .replace(/^ {2}identity: .*$/m, '  identity: "/nonexistent/id_ed25519"')
      .replace(/^ {2}known_hosts: .*$/m, '  known_hosts: "/nonexistent/known_hosts"')
    expect(rewritten.match(/\/nonexistent\//g), 'the fixture config changed shape').to.have.length(2)
    await writeFile(ws.config, rewritten)
  }

  const secrets = (inputs: Record<string, string> = {}) => ({
    SSH_PRIVATE_KEY: privateKey,
    KNOWN_HOSTS: knownHosts,
    ...inputs,
  })
  // The workspace is where actions/checkout would have put the repository; the config is inside it.
  const runAction = (inputs: Record<string, string>, env: NodeJS.ProcessEnv = {}) =>
    startAction(runner, ws.dir, inputs, env).done

  /** Fails when any line of the private key (beyond its BEGIN/END lines) shows up in what the step wrote. */
  function expectNoKeyIn(run: ActionRun): void {
    const secretLines = privateKey
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '' && !line.startsWith('-----'))
    expect(secretLines.length).to.be.greaterThan(0)
    for (const [where, text] of Object.entries({
      stdout: run.stdout,
      stderr: run.stderr,
      outputs: run.outputText,
      summary: run.summary,
    })) {
      for (const line of secretLines)
        expect(text.includes(line), `a key line appears in ${where}`).to.equal(false)
    }
  }

  const runnerTempEntries = () => readdir(runner.temp)

  before(async () => {
    sshd = await startSshd({ user: DEPLOY_USER, createUser: true })
    privateKey = await readFile(sshd.clientKeyPath, 'utf8')
    knownHosts = await readFile(sshd.knownHostsPath, 'utf8')
  })
  after(async () => {
    await sshd?.stop()
  })
  beforeEach(async () => {
    ws = await makeWorkspace(DEPLOY_USER)
    runner = await makeRunner()
    await writeApp(ws.source, 'v1')
    await writeConfig(ws, sshd, { install: 'test -f config.ru' })
    await withoutLocalSshFiles()
  })
  afterEach(async () => {
    await stopPuma(ws)
    await rm(ws.dir, { recursive: true, force: true })
    await rm(runner.dir, { recursive: true, force: true })
  })

  it('releases twice: outputs with the release and Puma’s restarts, a summary row per host, no key left or printed', async () => {
    const port = await findFreePort()
    await writePumaApp(ws, { port, version: 'v1' })
    await writePumaConfig(ws, sshd, { port })
    await withoutLocalSshFiles()

    const first = await runAction(secrets({ CONFIG: 'deployer.yml' }), { PUMA_TOKEN })
    expect(first.code, first.stderr).to.equal(0)
    // Workflow commands are off while deployer (and what the hosts print through it) runs.
    const stop = /^::stop-commands::(deployer-[0-9a-f-]{36})$/m.exec(first.stdout)
    expect(stop, first.stdout).to.not.equal(null)
    expect(first.stdout.indexOf(`\n::${stop?.[1]}::\n`)).to.be.greaterThan(stop?.index ?? 0)
    expect(first.outputs.release).to.equal('1')
    expect(first.outputs['rolled-back']).to.equal('false')
    expect(JSON.parse(first.outputs.restarts ?? '')).to.deep.equal({ it: 'start' })
    expect(JSON.parse(first.outputs.result ?? '')).to.include({ ok: true, app: 'itest', release: 1 })
    expect(first.summary).to.match(/^### deployer release: itest release 1\n\nSucceeded\./)
    expect(first.summary).to.match(
      /^\| it \| none → 1 \| start \| Puma is not running \| released \| no \| inspect /m,
    )
    expect(await runnerTempEntries()).to.deep.equal([])
    expectNoKeyIn(first)

    await writePumaApp(ws, { port, version: 'v2' })
    const second = await runAction(secrets(), { PUMA_TOKEN })
    expect(second.code, second.stderr).to.equal(0)
    expect(second.outputs.release).to.equal('2')
    expect(JSON.parse(second.outputs.restarts ?? '')).to.deep.equal({ it: 'phased' })
    expect(second.summary).to.match(/^\| it \| 1 → 2 \| phased \| [^|]+ \| released \| no \| inspect /m)
    expect(await readlink(join(ws.deployTo, 'current'))).to.equal('releases/2')
    expect(await runnerTempEntries()).to.deep.equal([])
    expectNoKeyIn(second)
  })

  it('reports a release that failed verification and was rolled back: rolled-back=true, its row, exit 8', async () => {
    const port = await findFreePort()
    await writePumaApp(ws, { port, version: 'v1' })
    await writePumaConfig(ws, sshd, { port })
    await withoutLocalSshFiles()
    expect((await runAction(secrets(), { PUMA_TOKEN })).code).to.equal(0)

    await writePumaApp(ws, { port, version: 'v2', brokenBoot: true })
    const run = await runAction(secrets(), { PUMA_TOKEN })
    expect(run.code).to.equal(ExitCode.verify)
    expect(run.outputs.release).to.equal('2')
    expect(run.outputs['rolled-back']).to.equal('true')
    expect(run.summary).to.contain('**Failed** with exit code 8.')
    expect(run.summary).to.match(
      /^\| it \| 1 → 2 \| phased \| [^|]+ \| rolled-back \| yes, to 1[^|]* \| inspect /m,
    )
    expect(run.summary).to.contain('**Error on it:**')
    expect(run.summary).to.contain('keeps failing to boot')
    expect(await readlink(join(ws.deployTo, 'current'))).to.equal('releases/1')
    expect(await runnerTempEntries()).to.deep.equal([])
    expectNoKeyIn(run)
  })

  it('keeps the key in a 0600 file in a 0700 directory under RUNNER_TEMP only while deployer runs', async () => {
    // The install step waits for the test to look at the key file: the host is this machine.
    const gate = join(ws.dir, 'gate')
    await writeConfig(ws, sshd, { install: `while [ ! -e ${gate} ]; do sleep 0.1; done` })
    await withoutLocalSshFiles()
    const running = startAction(runner, ws.dir, secrets())
    let keyFile = ''
    await waitFor(
      async () => {
        const [dir] = await runnerTempEntries()
        const files = dir ? await readdir(join(runner.temp, dir)) : []
        if (dir && files.includes('id_deploy')) keyFile = join(runner.temp, dir, 'id_deploy')
        return keyFile !== '' && (await readdir(join(ws.deployTo, 'releases'))).includes('.1.partial')
      },
      { what: 'the key file and the partial release', timeoutMs: 30_000 },
    )
    expect((await stat(keyFile)).mode & 0o777).to.equal(0o600)
    expect((await stat(join(keyFile, '..'))).mode & 0o777).to.equal(0o700)
    expect(await readFile(keyFile, 'utf8')).to.equal(`${privateKey.trim()}\n`)
    expect((await stat(join(keyFile, '..', 'known_hosts'))).mode & 0o777).to.equal(0o600)

    await writeFile(gate, '')
    const run = await running.done
    expect(run.code, run.stderr).to.equal(0)
    expect(await runnerTempEntries()).to.deep.equal([])
  })

  it('refuses to run without known-hosts: a clear error, exit 2, a summary, and no connection attempted', async () => {
    // The host points at a listener of ours, which counts every connection made to it.
    let connections = 0
    const listener: Server = createServer((socket) => {
      connections++
      socket.destroy()
    })
    const port = await new Promise<number>((resolve) => {
      listener.listen(0, '127.0.0.1', () => resolve((listener.address() as { port: number }).port))
    })
    try {
      await writeConfig(ws, sshd, { port })
      await withoutLocalSshFiles()
      const run = await runAction(secrets({ KNOWN_HOSTS: '' }))
      expect(run.code).to.equal(ExitCode.usage)
      expect(run.stdout).to.match(
        /^::error title=deployer release::The known-hosts input is empty, and 127\.0\.0\.1 must be reached over SSH/m,
      )
      expect(run.summary).to.contain('**Failed** with exit code 2.')
      expect(run.summary).to.contain(`ssh-keyscan -p ${port} 127.0.0.1 >> known_hosts`)
      expect(run.summary).to.contain('ssh-keygen -lf')
      expect(run.outputs['rolled-back']).to.equal('false')
      expect(JSON.parse(run.outputs.result ?? '').ok).to.equal(false)
      expect(connections).to.equal(0)
      expect(await runnerTempEntries()).to.deep.equal([])
      expectNoKeyIn(run)
    } finally {
      listener.close()
    }
  })

  it('writes the error to the summary and exits with deployer’s code when the install fails on the host', async () => {
    await writeConfig(ws, sshd, { install: 'echo "bundle: cannot reach rubygems.org" >&2; exit 3' })
    await withoutLocalSshFiles()
    const run = await runAction(secrets())
    expect(run.code).to.equal(ExitCode.install)
    expect(run.summary).to.contain('**Failed** with exit code 7.')
    // A build that fails stops the release before it has a result: --json then holds the error alone.
    expect(run.summary).to.contain('**Error:**\n\n```\nHost it: install (')
    expect(run.summary).to.contain('    bundle: cannot reach rubygems.org\n```')
    expect(run.summary).to.contain('**Hint:** Fix the install')
    expect(run.stdout).to.match(/^::error title=deployer release::.*cannot reach rubygems\.org/m)
    expect(run.outputs['rolled-back']).to.equal('false')
    expect(JSON.parse(run.outputs.result ?? '').ok).to.equal(false)
    expect(await readdir(join(ws.deployTo, 'releases'))).to.deep.equal([])
    expect(await runnerTempEntries()).to.deep.equal([])
    expectNoKeyIn(run)
  })

  it('checks host keys strictly even when the config says accept-new', async () => {
    await writeConfig(ws, sshd, { hostKey: 'accept-new' })
    await withoutLocalSshFiles()
    // A valid known_hosts line, but for another host: 127.0.0.1 itself is unknown.
    const elsewhere = knownHosts.replace(/^\[127\.0\.0\.1\]/gm, '[127.0.0.2]')
    expect(elsewhere).to.not.equal(knownHosts)
    const run = await runAction(secrets({ KNOWN_HOSTS: elsewhere }))
    expect(run.code).to.equal(ExitCode.hostKey)
    expect(run.summary).to.contain('**Failed** with exit code 5.')
    expect(run.summary).to.contain('**Hint:**')
    expect(JSON.parse(run.outputs.result ?? '').error.exitCode).to.equal(ExitCode.hostKey)
    expect(await readdir(join(ws.deployTo))).to.not.include('releases')
    expect(await runnerTempEntries()).to.deep.equal([])
  })

  it('rolls back with args passed through: the target release and rolled-back=true', async () => {
    expect((await runAction(secrets())).code).to.equal(0)
    await writeApp(ws.source, 'v2')
    expect((await runAction(secrets())).code).to.equal(0)
    const run = await runAction(secrets({ COMMAND: 'rollback', ARGS: '--to 1 --host it' }))
    expect(run.code, run.stderr).to.equal(0)
    expect(run.outputs.release).to.equal('1')
    expect(run.outputs['rolled-back']).to.equal('true')
    expect(run.summary).to.match(/^\| it \| 2 → 1 \| — \| — \| yes \|$/m)
    expect(await readlink(join(ws.deployTo, 'current'))).to.equal('releases/1')
  })
})
