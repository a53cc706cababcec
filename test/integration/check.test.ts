import { execFile } from 'node:child_process'
import { access, appendFile, chown, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { expect } from 'chai'
import type { Finding, HostCheck, Severity } from '../../src/check/findings.js'
import type { CheckResult } from '../../src/check/run-check.js'
import { ExitCode } from '../../src/errors.js'
import { type CliResult, parseJson, runCli } from '../support/cli.js'
import {
  DEPLOY_USER,
  makeWorkspace,
  snapshotTree,
  type Workspace,
  writeApp,
  writeConfig,
} from '../support/fixture.js'
import { masterPid, PUMA_TOKEN, stopPuma, writePumaApp, writePumaConfig } from '../support/puma-app.js'
import { findFreePort, startSshd, type TestSshd } from '../support/sshd.js'

const run = promisify(execFile)

describe('deployer check (real sshd, real Puma 5.6)', function () {
  this.timeout(180_000)
  let sshd: TestSshd
  let ws: Workspace
  let port: number

  const deployer = (...args: string[]): Promise<CliResult> =>
    runCli([...args, '--config', ws.config], { env: { PUMA_TOKEN } })
  const check = async (...args: string[]): Promise<{ result: CliResult; json: CheckResult }> => {
    const result = await deployer('check', '--json', ...args)
    return { result, json: parseJson<CheckResult>(result) }
  }
  const releaseOk = async (...args: string[]) => {
    const result = await deployer('release', ...args)
    expect(result.code, result.stderr).to.equal(0)
  }
  /** The one finding of `host` for `check` with `severity`; fails with every finding when there is none. */
  const findingOf = (host: HostCheck | undefined, check: string, severity: Severity): Finding => {
    const found = host?.findings.find((finding) => finding.check === check && finding.severity === severity)
    expect(found, `${check}/${severity} in ${JSON.stringify(host?.findings, null, 2)}`).to.not.equal(
      undefined,
    )
    return found as Finding
  }

  before(async () => {
    sshd = await startSshd({ user: DEPLOY_USER, createUser: true })
  })
  after(async () => {
    await sshd?.stop()
  })
  beforeEach(async () => {
    ws = await makeWorkspace(DEPLOY_USER)
    port = await findFreePort()
  })
  afterEach(async () => {
    // Only the Puma this test started, by the pid in its own pidfile.
    await stopPuma(ws)
    await rm(ws.dir, { recursive: true, force: true })
  })

  describe('a healthy host', () => {
    it('passes with exit 0 and changes nothing on the host or in Puma', async () => {
      await writePumaApp(ws, { port, version: 'v1' })
      await writePumaConfig(ws, sshd, { port })
      await releaseOk()
      const pid = await masterPid(ws)
      const before = await snapshotTree(ws.deployTo)

      const { result, json } = await check()
      expect(result.code, result.stderr).to.equal(ExitCode.ok)
      expect(json.ok).to.equal(true)
      expect(json.source.bytes).to.be.greaterThan(0)
      const host = json.hosts[0]
      expect(host).to.include({ host: 'it', reachable: true, status: 'ok' })
      const notOk = host?.findings.filter((finding) => finding.severity !== 'ok')
      expect(notOk, JSON.stringify(notOk, null, 2)).to.deep.equal([])
      expect(findingOf(host, 'ssh', 'ok').message).to.contain('host key verified')
      expect(findingOf(host, 'deploy-to', 'ok').message).to.contain(`is writable by ${DEPLOY_USER}`)
      expect(findingOf(host, 'disk', 'ok').message).to.match(/free on the .* filesystem of/)
      expect(findingOf(host, 'tool', 'ok').message).to.match(/tar \(GNU [\d.]+\).*ruby/)
      expect(findingOf(host, 'puma', 'ok').message)
        .to.contain(`pid ${pid} `)
        .and.contain('2 of 2 workers booted')
      expect(findingOf(host, 'puma-directory', 'ok').message).to.contain(join(ws.deployTo, 'current'))
      expect(findingOf(host, 'puma-binds', 'ok').message).to.contain(`tcp://127.0.0.1:${port}`)
      expect(findingOf(host, 'health', 'ok').message).to.contain('release=1 ')

      expect(await masterPid(ws)).to.equal(pid)
      expect(await snapshotTree(ws.deployTo)).to.deep.equal(before)
    })

    it('renders a readable report on stdout and progress on stderr without --json', async () => {
      await writeApp(ws.source, 'v1')
      await writeConfig(ws, sshd, { install: 'bundle install' })
      const result = await deployer('check')
      expect(result.code, result.stderr).to.equal(ExitCode.ok)
      expect(result.stdout).to.match(new RegExp(`^it \\(${ws.deployTo}\\): ready$`, 'm'))
      expect(result.stdout).to.match(
        /^ {2}ok {8}deploy-to +deploy_to .* does not exist yet|^ {2}ok {8}deploy-to +deploy_to .* is writable/m,
      )
      expect(result.stdout).to.match(/^1 host checked: 1 ready; 0 warnings\.$/m)
      expect(result.stderr).to.match(/^it +connect +ok/m)
      expect(() => JSON.parse(result.stdout)).to.throw()
    })

    it('accepts a deploy_to that does not exist yet under a writable parent, and does not create it', async () => {
      await writeApp(ws.source, 'v1')
      await writeConfig(ws, sshd)
      await rm(ws.deployTo, { recursive: true })
      const { result, json } = await check()
      expect(result.code, result.stderr).to.equal(ExitCode.ok)
      expect(findingOf(json.hosts[0], 'deploy-to', 'ok').message).to.equal(
        `deploy_to ${ws.deployTo} does not exist yet; the first release creates it (${join(ws.dir, 'srv')} is writable by ${DEPLOY_USER}).`,
      )
      let exists = true
      await access(ws.deployTo).catch(() => {
        exists = false
      })
      expect(exists, 'check created deploy_to').to.equal(false)
    })
  })

  describe('blocking problems', () => {
    it('blocks on a deploy_to the SSH user cannot write', async () => {
      await writeApp(ws.source, 'v1')
      await writeConfig(ws, sshd)
      await chown(ws.deployTo, 0, 0)
      const { result, json } = await check()
      expect(result.code).to.equal(ExitCode.failure)
      expect(json.ok).to.equal(false)
      expect(json.hosts[0]).to.include({ status: 'blocking', reachable: true })
      const finding = findingOf(json.hosts[0], 'deploy-to', 'blocking')
      expect(finding.message).to.equal(`deploy_to ${ws.deployTo} is not writable by ${DEPLOY_USER}.`)
      expect(finding.hint).to.contain(`chown ${DEPLOY_USER} ${ws.deployTo}`)
      expect(result.stderr).to.contain('1 of 1 hosts cannot take a release: it.')
    })

    it('blocks on an install program the host does not have', async () => {
      await writeApp(ws.source, 'v1')
      await writeConfig(ws, sshd, { install: 'RAILS_ENV=production deployer-no-such-bundler install' })
      const { result, json } = await check()
      expect(result.code).to.equal(ExitCode.failure)
      const finding = findingOf(json.hosts[0], 'tool', 'blocking')
      expect(finding.message).to.equal(
        `install.command needs deployer-no-such-bundler, but the non-interactive SSH shell of ${DEPLOY_USER} does not find it on its PATH.`,
      )
      // The tools the host has are still reported.
      expect(findingOf(json.hosts[0], 'tool', 'ok').message).to.match(/^Found sh, tar \(GNU/)
    })

    it('refuses a host whose key does not match known_hosts, with the host key exit code', async () => {
      await writeApp(ws.source, 'v1')
      const other = join(ws.dir, 'impostor')
      await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other])
      const key = (await readFile(`${other}.pub`, 'utf8')).split(' ').slice(0, 2).join(' ')
      const knownHosts = join(ws.dir, 'known_hosts_wrong')
      await writeFile(knownHosts, `[127.0.0.1]:${sshd.port} ${key}\n`)
      await writeConfig(ws, sshd, { knownHosts })
      const { result, json } = await check()
      expect(result.code).to.equal(ExitCode.hostKey)
      expect(json.hosts[0]).to.include({ reachable: false, exitCode: ExitCode.hostKey })
      const finding = findingOf(json.hosts[0], 'ssh', 'blocking')
      expect(finding.message).to.match(/^The host key of \[127\.0\.0\.1\]:\d+ has changed/)
      expect(finding.hint).to.contain('ssh-keygen -R')
      expect(json.hosts[0]?.findings).to.have.length(1)
    })

    it('reports an unreachable host with the connection exit code, and still checks the others', async () => {
      await writeApp(ws.source, 'v1')
      await writeConfig(ws, sshd)
      const down = await findFreePort()
      // A second host, first in the list: nothing listens on its port.
      const config = (await readFile(ws.config, 'utf8')).replace(
        /^hosts:\n/m,
        `hosts:\n  - { name: down, ssh: ${JSON.stringify(`${DEPLOY_USER}@127.0.0.1:${down}`)} }\n`,
      )
      await writeFile(ws.config, config)
      const { result, json } = await check()
      expect(result.code).to.equal(ExitCode.connection)
      const [unreachable, healthy] = json.hosts
      expect(unreachable).to.include({ host: 'down', reachable: false, status: 'blocking' })
      expect(unreachable?.exitCode).to.equal(ExitCode.connection)
      expect(findingOf(unreachable, 'ssh', 'blocking').message).to.equal(
        `Nothing is listening on 127.0.0.1:${down} (connection refused).`,
      )
      expect(healthy).to.include({ host: 'it', reachable: true, status: 'ok' })
    })

    it('blocks on a Puma directory that is not the current path', async () => {
      await writePumaApp(ws, { port, version: 'v1' })
      // The last `directory` wins: Puma would change into this directory on every start.
      await appendFile(join(ws.source, 'config/puma.rb'), `directory ${JSON.stringify(ws.dir)}\n`)
      await writePumaConfig(ws, sshd, { port })
      await releaseOk('--restart', 'none')
      const { result, json } = await check()
      expect(result.code).to.equal(ExitCode.failure)
      const finding = findingOf(json.hosts[0], 'puma-directory', 'blocking')
      expect(finding.message).to.contain(`\`directory\` is ${ws.dir}, not ${join(ws.deployTo, 'current')}`)
      expect(finding.hint).to.contain(`directory "${join(ws.deployTo, 'current')}"`)
      // Not running is only a warning: a release starts it.
      expect(findingOf(json.hosts[0], 'puma', 'warning').message).to.match(/^Puma is not running/)
    })
  })

  describe('Puma settings that defeat zero downtime (warnings: deployer restarts harder instead)', () => {
    it('warns about preload_app! in a running Puma', async () => {
      await writePumaApp(ws, { port, version: 'v1', preload: true })
      await writePumaConfig(ws, sshd, { port })
      await releaseOk()
      const { result, json } = await check()
      expect(result.code, result.stderr).to.equal(ExitCode.ok)
      expect(json.hosts[0]?.status).to.equal('warning')
      expect(findingOf(json.hosts[0], 'puma', 'ok').message).to.contain(`pid ${await masterPid(ws)} `)
      expect(findingOf(json.hosts[0], 'puma-preload', 'warning').message).to.match(
        /current\/config\/puma\.rb sets `preload_app!`: Puma refuses phased restarts/,
      )
    })

    it('warns about a config without directory in a running Puma', async () => {
      await writePumaApp(ws, { port, version: 'v1', noDirectory: true })
      await writePumaConfig(ws, sshd, { port })
      await releaseOk()
      const { result, json } = await check()
      expect(result.code, result.stderr).to.equal(ExitCode.ok)
      const finding = findingOf(json.hosts[0], 'puma-directory', 'warning')
      expect(finding.message).to.contain('does not set `directory`')
      expect(finding.hint).to.contain(`directory "${join(ws.deployTo, 'current')}"`)
    })

    it('warns about a Puma running in single mode', async () => {
      await writePumaApp(ws, { port, version: 'v1', workers: 0 })
      await writePumaConfig(ws, sshd, { port })
      await releaseOk()
      const { json } = await check()
      expect(findingOf(json.hosts[0], 'puma', 'ok').message).to.contain('(single mode)')
      expect(findingOf(json.hosts[0], 'puma-workers', 'warning').message).to.match(
        /^Puma runs in single mode/,
      )
    })

    it('warns when the running Puma listens elsewhere than its config says', async () => {
      await writePumaApp(ws, { port, version: 'v1' })
      await writePumaConfig(ws, sshd, { port })
      await releaseOk()
      const moved = await findFreePort()
      const config = join(ws.deployTo, 'releases/1/config/puma.rb')
      await writeFile(config, (await readFile(config, 'utf8')).replace(`:${port}"`, `:${moved}"`))
      const { json } = await check()
      expect(findingOf(json.hosts[0], 'puma-binds', 'warning').message).to.contain(
        `Puma listens on tcp://127.0.0.1:${port}, but ${join(ws.deployTo, 'current/config/puma.rb')} binds tcp://127.0.0.1:${moved}`,
      )
    })

    it('reads the source’s config when nothing is deployed yet: one worker', async () => {
      await writePumaApp(ws, { port, version: 'v1', workers: 1 })
      await writePumaConfig(ws, sshd, { port })
      const { result, json } = await check()
      expect(result.code, result.stderr).to.equal(ExitCode.ok)
      const host = json.hosts[0]
      expect(findingOf(host, 'puma-config', 'info').message).to.match(
        /^Nothing is deployed yet: the Puma checks read the source's config\/puma\.rb with Puma 5\.6\.5/,
      )
      expect(findingOf(host, 'puma-workers', 'warning').message).to.match(/one worker/)
      expect(findingOf(host, 'puma', 'warning').message).to.contain('a release will start it')
      expect(findingOf(host, 'health', 'info').message).to.contain('not checked')
    })
  })
})
