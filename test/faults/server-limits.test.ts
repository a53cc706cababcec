import { chown, mkdir, readFile, readlink, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { expect } from 'chai'
import { parseJson, type ReleaseJson, runCli } from '../support/cli.js'
import { DEPLOY_USER, listDir, makeWorkspace, userIds, type Workspace, writeApp } from '../support/fixture.js'
import { PUMA_TOKEN } from '../support/puma-app.js'
import { recordCase } from '../support/reliability.js'
import { type ServedHost, startServedHost } from '../support/served-host.js'
import { startSshd, type TestSshd } from '../support/sshd.js'

const GROUP = 'server limits'

/** The `prune` events of a deploy_to's history: what deployer recorded as deleted. */
async function prunedInHistory(deployTo: string): Promise<number[][]> {
  const lines = (await readFile(join(deployTo, '.deployer/history.jsonl'), 'utf8')).trim().split('\n')
  return lines
    .map((line) => JSON.parse(line) as { event: string; deleted?: number[] })
    .filter((event) => event.event === 'prune')
    .map((event) => event.deleted ?? [])
}

describe('an sshd that allows one session per connection (MaxSessions 1)', function () {
  this.timeout(300_000)
  let host: ServedHost

  before(async () => {
    host = await startServedHost({ sshdSettings: { MaxSessions: '1' } })
  })
  after(async () => {
    await host?.stop()
  })

  it('releases with a verified restart and prunes, recording only what it deleted', async () => {
    const numbers: number[] = []
    for (const version of ['v2', 'v3']) {
      await host.writeApp(version)
      const { result, json } = await host.release()
      expect(result.code, result.stderr).to.equal(0)
      expect(await host.servedReleases()).to.deep.equal(new Set([String(json.release)]))
      numbers.push(json.release)
    }
    const pruned = await runCli(['prune', '--keep', '1', '--json', '--config', host.ws.config], {
      env: { PUMA_TOKEN },
    })
    expect(pruned.code, pruned.stderr).to.equal(0)
    const entries = await host.releaseEntries()
    // Release 1 stays: the Puma master booted from it (a later re-exec would need it).
    expect(entries).to.deep.equal(['1', String(numbers.at(-1))])
    expect(await host.current()).to.equal(`releases/${numbers.at(-1)}`)
    // Whatever history says was deleted is gone, and everything gone is in the history.
    const recorded = (await prunedInHistory(host.ws.deployTo)).flat().sort((a, b) => a - b)
    const gone = [1, ...numbers].filter((number) => !entries.includes(String(number)))
    expect(recorded).to.deep.equal(gone)
    expect(await host.lockHeld()).to.equal(false)
    await recordCase({
      kind: 'fault',
      group: GROUP,
      name: 'sshd with MaxSessions 1 (one channel per connection)',
      expected:
        'releases (phased restart, verified) and prune succeed; channels queue instead of failing; history records exactly what prune deleted',
      observed: `releases ${numbers.join(', ')} exit 0, each served by every worker; prune --keep 1 exit 0 left releases/ = ${entries.join(' ')}; history records deleted [${recorded.join(', ')}]`,
    })
  })
})

describe('a fleet of host entries behind one sshd that throttles handshakes (MaxStartups 1:100:1)', function () {
  this.timeout(300_000)
  const FLEET = 4
  let sshd: TestSshd
  let ws: Workspace
  const deployToOf = (index: number) => join(ws.dir, 'srv', `app${index}`)

  before(async () => {
    sshd = await startSshd({ user: DEPLOY_USER, createUser: true, settings: { MaxStartups: '1:100:1' } })
    ws = await makeWorkspace(DEPLOY_USER)
    const { uid, gid } = await userIds(DEPLOY_USER)
    for (let index = 1; index <= FLEET; index++) {
      await mkdir(deployToOf(index))
      await chown(deployToOf(index), uid, gid)
    }
    await writeApp(ws.source, 'v1')
    const address = `${sshd.user}@127.0.0.1:${sshd.port}`
    await writeFile(
      ws.config,
      [
        'app: itest',
        `source: ${JSON.stringify(ws.source)}`,
        'exclude: [.git, log, tmp]',
        `deploy_to: ${JSON.stringify(deployToOf(1))}`,
        'hosts:',
        ...Array.from(
          { length: FLEET },
          (_, i) =>
            `  - { name: web${i + 1}, ssh: ${JSON.stringify(address)}, deploy_to: ${JSON.stringify(deployToOf(i + 1))} }`,
        ),
        'ssh:',
        `  identity: ${JSON.stringify(sshd.clientKeyPath)}`,
        `  known_hosts: ${JSON.stringify(sshd.knownHostsPath)}`,
        '',
      ].join('\n'),
    )
  })
  after(async () => {
    await sshd?.stop()
    if (ws) await rm(ws.dir, { recursive: true, force: true })
  })

  it('releases to every host: handshakes the server drops before its banner are retried', async () => {
    const results: number[] = []
    for (const version of ['v1', 'v2']) {
      await writeApp(ws.source, version)
      const result = await runCli(['release', '--json', '--config', ws.config])
      expect(result.code, result.stderr).to.equal(0)
      const json = parseJson<ReleaseJson>(result)
      expect(json.hosts.map((entry) => entry.status)).to.deep.equal(Array(FLEET).fill('released'))
      results.push(json.release)
    }
    for (let index = 1; index <= FLEET; index++) {
      expect(await readlink(join(deployToOf(index), 'current'))).to.equal('releases/2')
      expect(await readFile(join(deployToOf(index), 'current/app/version.rb'), 'utf8')).to.contain('v2')
      expect(await listDir(join(deployToOf(index), 'releases'))).to.deep.equal(['1', '2'])
    }
    const drops = (await readFile(sshd.logPath, 'utf8')).match(/past MaxStartups/g)?.length ?? 0
    expect(drops, 'sshd dropped connections (the case is real)').to.be.greaterThan(0)
    await recordCase({
      kind: 'fault',
      group: GROUP,
      name: `${FLEET} host entries behind one sshd with MaxStartups 1:100:1`,
      expected: 'every host released; connections dropped before the banner are retried with backoff',
      observed: `releases ${results.join(', ')} exit 0 on all ${FLEET} hosts, current releases/2 everywhere; sshd dropped ${drops} connections past MaxStartups`,
    })
  })
})
