import { execFile } from 'node:child_process'
import { chmod, chown, mkdir, readFile, readlink, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { expect } from 'chai'
import { parseHistory } from '../../src/release/history.js'
import { releaseJson } from '../support/cli.js'
import {
  DEPLOY_USER,
  makeWorkspace,
  userIds,
  type Workspace,
  writeApp,
  writeConfig,
} from '../support/fixture.js'
import { recordCase } from '../support/reliability.js'
import { startSshd, type TestSshd } from '../support/sshd.js'

const run = promisify(execFile)

const SECOND_USER = 'deployer-team2'
const TEAM_GROUP = 'deployer-team'

async function protectedHardlinks(): Promise<boolean> {
  return (await readFile('/proc/sys/fs/protected_hardlinks', 'utf8').catch(() => '0')).trim() === '1'
}

/**
 * Two SSH users of one team deploy the same deploy_to in turn, as its setgid group directories allow.
 * With fs.protected_hardlinks=1 neither may hard-link the other's files: each repeat release copies
 * them instead and says why, and every release and its history line land.
 */
describe('team deploys: two SSH users in one group, fs.protected_hardlinks=1', function () {
  this.timeout(180_000)
  let first: TestSshd
  let second: TestSshd
  let ws: Workspace

  before(async function () {
    if (!(await protectedHardlinks())) this.skip()
    first = await startSshd({ user: DEPLOY_USER, createUser: true })
    second = await startSshd({ user: SECOND_USER, createUser: true })
    await run('groupadd', ['-f', TEAM_GROUP])
    for (const user of [DEPLOY_USER, SECOND_USER]) await run('usermod', ['-a', '-G', TEAM_GROUP, user])
  })
  after(async () => {
    await first?.stop()
    await second?.stop()
    if (ws) await rm(ws.dir, { recursive: true, force: true })
  })

  it('releases alternately, copying where links are refused, with every release and history line', async () => {
    ws = await makeWorkspace(DEPLOY_USER)
    // The team's layout, as an admin sets it up: deploy_to and deployer's directories group-writable, setgid.
    const { gid } = await userIds(DEPLOY_USER)
    const team = Number((await run('getent', ['group', TEAM_GROUP])).stdout.split(':')[2])
    for (const dir of ['', 'releases', 'shared', '.deployer']) {
      const path = join(ws.deployTo, dir)
      await mkdir(path, { recursive: true })
      await chown(path, (await stat(ws.deployTo)).uid, team)
      await chmod(path, 0o2775)
    }
    expect(gid).to.not.equal(team)
    const releaseAs = async (sshd: TestSshd, version: string) => {
      await writeApp(ws.source, version)
      await writeConfig(ws, sshd, { install: 'true' })
      const { result, json } = await releaseJson(ws.config, [])
      expect(result.code, `${sshd.user}: ${result.stderr}`).to.equal(0)
      return { result, json }
    }
    const inode = async (release: number, path: string) =>
      (await stat(join(ws.deployTo, 'releases', String(release), path))).ino
    const owner = async (release: number, path: string) =>
      (await stat(join(ws.deployTo, 'releases', String(release), path))).uid

    const one = await releaseAs(first, 'v1')
    const two = await releaseAs(second, 'v2')
    const three = await releaseAs(first, 'v3')
    expect([one.json.release, two.json.release, three.json.release]).to.deep.equal([1, 2, 3])

    const copied =
      two.json.hosts[0]?.warnings?.find((warning) => warning.includes('instead of hard-linking')) ?? ''
    expect(copied).to.match(
      /^copied the \d+ unchanged files? of release 1 instead of hard-linking (it|them): \d+ links? (was|were) refused \(Operation not permitted\)/,
    )
    expect(copied).to.contain('fs.protected_hardlinks=1')
    expect(two.result.stderr).to.contain('instead of hard-linking')
    expect(three.json.hosts[0]?.warnings?.join('\n')).to.contain('of release 2 instead of hard-linking')
    // The host: bin/start (unchanged in every version) is each user's own copy, with the source's content.
    const { uid: secondUid } = await userIds(SECOND_USER)
    expect(await owner(2, 'bin/start')).to.equal(secondUid)
    expect(await inode(2, 'bin/start')).to.not.equal(await inode(1, 'bin/start'))
    expect(await inode(3, 'bin/start')).to.not.equal(await inode(2, 'bin/start'))
    expect(await readFile(join(ws.deployTo, 'releases', '2', 'bin', 'start'), 'utf8')).to.equal(
      '#!/bin/sh\necho start\n',
    )
    expect(await readFile(join(ws.deployTo, 'releases', '3', 'app', 'version.rb'), 'utf8')).to.contain('v3')
    expect(await readlink(join(ws.deployTo, 'current'))).to.equal('releases/3')
    const history = parseHistory(await readFile(join(ws.deployTo, '.deployer', 'history.jsonl'), 'utf8'))
    expect(history.filter((event) => event.event === 'release').map((event) => event.release)).to.deep.equal([
      1, 2, 3,
    ])
    // Each release was built by the user who released it (`by` in the history is the local user).
    const { uid: firstUid } = await userIds(DEPLOY_USER)
    const owners = await Promise.all([1, 2, 3].map((release) => owner(release, '.')))
    expect(owners).to.deep.equal([firstUid, secondUid, firstUid])
    expect(two.json.hosts[0]?.warnings?.join('\n')).to.not.contain('history')
    await recordCase({
      kind: 'fault',
      group: 'other users',
      name: `two SSH users (${DEPLOY_USER}, ${SECOND_USER}) of one group release the same setgid deploy_to in turn, fs.protected_hardlinks=1`,
      expected:
        'every release succeeds; where the kernel refuses a link to the other user’s files the reuse copies them and says why; every release in the history',
      observed: `releases 1, 2, 3 exit 0 as ${DEPLOY_USER}, ${SECOND_USER}, ${DEPLOY_USER}; releases 2 and 3 warned "${copied.split(':')[0]}: … refused (Operation not permitted)"; their unchanged files are each user's own copies with the source's content; current releases/3; history holds all 3 releases; each release directory owned by the user who released it`,
    })
  })
})
