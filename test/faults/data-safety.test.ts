import { type ChildProcess, execFile, spawn } from 'node:child_process'
import {
  appendFile,
  chmod,
  chown,
  lstat,
  mkdir,
  readFile,
  readlink,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { expect } from 'chai'
import { releaseJson, runCli } from '../support/cli.js'
import { DEPLOY_USER, ensureUser, listDir, writeApp } from '../support/fixture.js'
import { recordCase } from '../support/reliability.js'
import { useSshdWorkspace } from '../support/suite.js'
import { waitFor } from '../support/wait.js'

const run = promisify(execFile)

/** A second user on the host: the one Puma or Sidekiq runs as while deploying as the SSH user. */
const OTHER_USER = 'deployer-other'
const TEAM_GROUP = 'deployer-team'

/**
 * What a real server holds besides deployer's own releases: other people's files in releases/, other
 * users' processes and files, a torn history. Each case deploys as the unprivileged SSH user and asserts
 * what is on the host afterwards.
 */
describe('data safety on a real server: foreign files, other users, torn state', function () {
  this.timeout(180_000)
  const setup = useSshdWorkspace({ keep: 2 })
  const started: ChildProcess[] = []

  // deploy_to's parent is 0750 for a team group holding the SSH user and the app's user, as on a
  // server where deploy_to is shared with www-data: processes of everyone else cannot be in a release.
  beforeEach(async () => {
    await ensureUser(OTHER_USER)
    await run('groupadd', ['-f', TEAM_GROUP])
    await run('usermod', ['-a', '-G', TEAM_GROUP, DEPLOY_USER])
    await run('usermod', ['-a', '-G', TEAM_GROUP, OTHER_USER])
    await run('chgrp', [TEAM_GROUP, setup.ws.dir])
    await chmod(setup.ws.dir, 0o750)
  })

  afterEach(async () => {
    for (const child of started.splice(0)) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL')
        await new Promise((resolve) => child.once('exit', resolve))
      }
    }
  })

  const release = async (version: string) => {
    await writeApp(setup.ws.source, version)
    const { result, json } = await releaseJson(setup.ws.config, [])
    expect(result.code, result.stderr).to.equal(0)
    return { result, json }
  }
  const releases = () => join(setup.ws.deployTo, 'releases')

  it('never counts, prunes or rolls back to foreign entries of releases/, and reports them', async () => {
    await release('v1')
    const dir = releases()
    await writeFile(join(dir, '7'), 'a file named like a release\n')
    await symlink('/etc', join(dir, '8'))
    await mkdir(join(dir, 'tmp'))
    await writeFile(join(dir, '3~'), 'editor backup\n')
    await writeFile(join(dir, '.4.swp'), 'vim swap\n')
    const foreign = ['.4.swp', '3~', '7', '8', 'tmp']

    const second = await release('v2')
    expect(second.json.release, 'the foreign 7 and 8 are skipped by numbering').to.equal(9)
    const third = await release('v3')
    expect(third.json.release).to.equal(10)
    expect(third.json.hosts[0]?.pruned, 'keep 2 prunes the real releases only').to.deep.equal([1])
    const pruned = await runCli(['prune', '--keep', '1', '--config', setup.ws.config])
    expect(pruned.code, pruned.stderr).to.equal(0)
    expect(await listDir(dir)).to.deep.equal([...foreign, '10'].sort())
    expect(await readlink(join(dir, '8'))).to.equal('/etc')
    expect(await readFile(join(dir, '7'), 'utf8')).to.contain('a file named like a release')

    const rollback = await runCli(['rollback', '--json', '--config', setup.ws.config])
    expect(rollback.code, 'no real release to go back to').to.not.equal(0)
    expect(await readlink(join(setup.ws.deployTo, 'current'))).to.equal('releases/10')
    const rollTo = await runCli(['rollback', '--to', '8', '--json', '--config', setup.ws.config])
    expect(rollTo.code, rollTo.stdout).to.not.equal(0)
    expect(await readlink(join(setup.ws.deployTo, 'current'))).to.equal('releases/10')

    const listed = await runCli(['releases', '--json', '--config', setup.ws.config])
    const hosts = JSON.parse(listed.stdout).hosts as { foreign: { name: string; type: string }[] }[]
    expect(
      Object.fromEntries(hosts[0]?.foreign.map((entry) => [entry.name, entry.type]) ?? []),
    ).to.deep.equal({
      '.4.swp': 'file',
      '3~': 'file',
      '7': 'file',
      '8': 'symlink',
      tmp: 'dir',
    })
    const check = await runCli(['check', '--json', '--config', setup.ws.config])
    expect(check.stdout).to.contain('Foreign entries in').and.contain('8 (symlink)')
    await recordCase({
      kind: 'input',
      group: 'foreign entries',
      name: 'releases/ holds a file 7, a symlink 8 -> /etc, tmp/, 3~ and .4.swp',
      expected:
        'never counted, kept, pruned or rolled back to; numbering skips 7 and 8; reported by `releases` and `check`',
      observed: `releases 9 and 10 published, prune removed 1 and 9 only; every foreign entry intact; rollback and rollback --to 8 refused (exit ${rollback.code}, ${rollTo.code}), current stays releases/10; releases --json and check list all 5 with their type`,
    })
  })

  it('keeps an old release while another user runs a process in it, and says why', async () => {
    const other = await ensureUser(OTHER_USER)
    await release('v1')
    const old = join(releases(), '1')
    const sleeper = spawn(
      'setpriv',
      [`--reuid=${other.uid}`, `--regid=${other.gid}`, '--init-groups', 'sleep', '600'],
      {
        cwd: old,
        stdio: 'ignore',
      },
    )
    started.push(sleeper)
    await waitFor(async () => (await readlink(`/proc/${sleeper.pid}/cwd`).catch(() => '')) === old, {
      timeoutMs: 20_000,
      what: 'the other user’s process in release 1',
    })

    await release('v2')
    const prune = await runCli(['prune', '--keep', '1', '--config', setup.ws.config])
    expect(prune.code, prune.stderr).to.equal(0)
    expect(`${prune.stdout}${prune.stderr}`, `${prune.stdout}${prune.stderr}`)
      .to.contain('not proven unused')
      .and.contain(OTHER_USER)
    expect(await listDir(releases())).to.deep.equal(['1', '2'])

    sleeper.kill('SIGKILL')
    await new Promise((resolve) => sleeper.once('exit', resolve))
    const after = await runCli(['prune', '--keep', '1', '--config', setup.ws.config])
    expect(after.code, after.stderr).to.equal(0)
    expect(await listDir(releases())).to.deep.equal(['2'])
    await recordCase({
      kind: 'fault',
      group: 'other users',
      name: `a process of another user (${OTHER_USER}) has its cwd in an old release; deploying as deployer-test`,
      expected:
        'prune keeps every release it cannot prove unused and says why; deletes it once the process is gone',
      observed: `prune --keep 1 kept release 1 ("not proven unused", naming ${OTHER_USER}'s process); after the process ended prune removed 1`,
    })
  })

  it('skips a release it cannot fully delete (another user’s files) and reports it', async () => {
    const other = await ensureUser(OTHER_USER)
    await release('v1')
    const owned = join(releases(), '1', 'cache')
    await mkdir(owned)
    await writeFile(join(owned, 'report.pdf'), 'made by the app user\n')
    await chown(join(owned, 'report.pdf'), other.uid, other.gid)
    await chown(owned, other.uid, other.gid)

    await release('v2')
    const prune = await runCli(['prune', '--keep', '1', '--config', setup.ws.config])
    expect(prune.code, prune.stderr).to.equal(0)
    expect(`${prune.stdout}${prune.stderr}`).to.contain('could not be fully deleted')
    expect(await listDir(releases())).to.deep.equal(['.1.deleting', '2'])
    const third = await release('v3')
    expect(third.result.stderr).to.contain('could not remove')
    expect(await listDir(releases())).to.deep.equal(['.1.deleting', '2', '3'])
    expect(await readFile(join(releases(), '.1.deleting', 'cache', 'report.pdf'), 'utf8')).to.contain(
      'app user',
    )
    const check = await runCli(['check', '--json', '--config', setup.ws.config])
    expect(check.stdout).to.contain('Half-deleted release')
    await recordCase({
      kind: 'fault',
      group: 'other users',
      name: 'a release holds a directory of another user’s files, so it cannot be fully deleted',
      expected: 'prune and prepare skip it with a warning; later releases succeed; check reports it',
      observed:
        'prune --keep 1 exit 0, left releases/.1.deleting with a warning; release 3 exit 0 warning it could not remove it; the other user’s file intact; check reports "Half-deleted release"',
    })
  })

  it('starts a new history line after a torn one, so the next events are kept', async () => {
    await release('v1')
    const history = join(setup.ws.deployTo, '.deployer', 'history.jsonl')
    await appendFile(history, '{"event":"release","release":5,"prev')
    await release('v2')
    const lines = (await readFile(history, 'utf8')).split('\n')
    expect(lines.at(-1)).to.equal('')
    expect(lines.filter((line) => line.includes('"release":2'))).to.not.deep.equal([])
    const rollback = await runCli(['rollback', '--json', '--config', setup.ws.config])
    expect(rollback.code, rollback.stderr).to.equal(0)
    expect(await readlink(join(setup.ws.deployTo, 'current'))).to.equal('releases/1')
    expect((await lstat(join(releases(), '2'))).isDirectory()).to.equal(true)
    await recordCase({
      kind: 'fault',
      group: 'torn state',
      name: 'history.jsonl ends in a torn line (a full disk or a killed run mid-append)',
      expected: 'the next event starts a line of its own and is read back; rollback is not misled',
      observed:
        'release 2 exit 0, its event on a line of its own; rollback went to release 1 as the history says',
    })
  })

  it('uploads a file edited in place on the server instead of linking it, and reports the release', async () => {
    await release('v1')
    const hotfixed = join(releases(), '1', 'bin', 'start')
    const before = await stat(hotfixed)
    await appendFile(hotfixed, 'echo hotfix\n')
    expect((await stat(hotfixed)).ino, 'edited in place').to.equal(before.ino)

    const second = await release('v1')
    expect(second.result.stderr).to.contain('release 1 was modified after publishing (bin/start)')
    const copy = join(releases(), '2', 'bin', 'start')
    expect(await readFile(copy, 'utf8'), 'the source content, not the hotfix').to.equal(
      '#!/bin/sh\necho start\n',
    )
    expect((await stat(copy)).ino).to.not.equal(before.ino)
    expect(
      (await stat(join(releases(), '2', 'app', 'version.rb'))).ino,
      'unchanged files still linked',
    ).to.equal((await stat(join(releases(), '1', 'app', 'version.rb'))).ino)
    expect(second.json.hosts[0]?.upload?.linkedFiles).to.be.greaterThan(0)
    const listed = await runCli(['releases', '--json', '--config', setup.ws.config])
    const hosts = JSON.parse(listed.stdout).hosts as { releases: { number: number; modified?: string[] }[] }[]
    expect(hosts[0]?.releases.map((entry) => [entry.number, entry.modified ?? []])).to.deep.equal([
      [1, ['bin/start']],
      [2, []],
    ])
    const check = await runCli(['check', '--json', '--config', setup.ws.config])
    expect(check.stdout).to.contain('Release 1 was modified after publishing: bin/start')
    await recordCase({
      kind: 'fault',
      group: 'torn state',
      name: 'a file of the live release edited in place on the server (a hotfix), then the same source released',
      expected:
        'the edited file is uploaded, not hard-linked (the hotfix does not leak, the manifest stays true); releases and check report the modified release',
      observed: `release 2 exit 0 warning "release 1 was modified after publishing (bin/start)"; releases/2/bin/start has the source content on a new inode, ${second.json.hosts[0]?.upload?.linkedFiles} other files linked; releases --json and check name bin/start`,
    })
  })
})
