import { chmod, readFile, readlink, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { expect } from 'chai'
import { ExitCode } from '../../src/errors.js'
import { parseJson, type ReleaseJson, runCli } from '../support/cli.js'
import { listDir, makeWorkspace, type Workspace, writeApp, writeConfig } from '../support/fixture.js'
import { writeLoginJunk } from '../support/login-junk.js'
import { recordCase } from '../support/reliability.js'
import { ensureUser, startSshd, type TestSshd } from '../support/sshd.js'

const GROUP = 'login shell and login output'

/** Each login shell a deploy user may have. */
const SHELLS = [
  { user: 'deployer-sh-bash', shell: '/bin/bash' },
  { user: 'deployer-sh-zsh', shell: '/usr/bin/zsh' },
  { user: 'deployer-sh-fish', shell: '/usr/bin/fish' },
  { user: 'deployer-sh-tcsh', shell: '/usr/bin/tcsh' },
  { user: 'deployer-sh-csh', shell: '/usr/bin/csh' },
] as const

/** A user with `shell` as its login shell and login files that print junk, allowed to log in. */
async function prepareUser(sshd: TestSshd, user: string, shell: string): Promise<void> {
  await ensureUser(user, shell)
  await sshd.authorize(user)
  await writeLoginJunk(user, shell)
}

/**
 * Every remote command reaches /bin/sh through the user's login shell (sshd runs `$SHELL -c CMD`): a
 * full release, a second one, a rollback and a prune as a user whose login shell is each of bash, zsh,
 * fish, tcsh and csh, with startup files and ~/.ssh/rc printing junk; and a restricted shell that cannot
 * run /bin/sh, reported by `deployer check` with the fix.
 */
describe('any login shell, with login output on stdout and stderr', function () {
  this.timeout(300_000)
  let sshd: TestSshd
  const workspaces: Workspace[] = []

  before(async () => {
    sshd = await startSshd({ user: SHELLS[0].user, createUser: true })
  })
  after(async () => {
    await sshd?.stop()
    for (const ws of workspaces) await rm(ws.dir, { recursive: true, force: true })
  })

  /** A workspace deploying as `user`, with an install that a zsh or csh would reject if it parsed it. */
  async function workspaceFor(user: string): Promise<Workspace> {
    const ws = await makeWorkspace(user)
    // The shells deploy side by side as different users: keep each deploy_to private, as on a real
    // server, so prune can prove the others' processes never use its releases.
    await chmod(join(ws.dir, 'srv'), 0o700)
    workspaces.push(ws)
    await writeApp(ws.source, 'v1')
    // An unmatched glob (zsh: "no matches found"), $(...) and a multi-line `if` (csh: syntax errors).
    const install = [
      'for f in *.nomatch; do echo "$f" > glob.txt; done',
      'if [ -f config.ru ]; then',
      '  echo "installed $(cat app/version.rb | cut -d\\" -f2)" > installed.txt',
      'fi',
    ].join('\n')
    await writeConfig(ws, { ...sshd, user }, { install })
    return ws
  }
  const cli = (ws: Workspace, ...args: string[]) => runCli([...args, '--json', '--config', ws.config])

  /** Release, second release, rollback and prune as `user`, asserting on the host after each. */
  async function lifecycle(user: string, shell: string): Promise<void> {
    {
      await prepareUser(sshd, user, shell)
      const ws = await workspaceFor(user)

      const first = await cli(ws, 'release')
      expect(first.code, `${shell}: ${first.stderr}`).to.equal(0)
      expect(parseJson<ReleaseJson>(first).release, 'login output did not leak into the state').to.equal(1)
      await writeApp(ws.source, 'v2')
      const second = await cli(ws, 'release')
      expect(second.code, `${shell}: ${second.stderr}`).to.equal(0)
      expect(await readlink(join(ws.deployTo, 'current'))).to.equal('releases/2')
      expect(await readFile(join(ws.deployTo, 'releases/2/installed.txt'), 'utf8')).to.equal('installed v2\n')
      expect(await readFile(join(ws.deployTo, 'releases/2/glob.txt'), 'utf8')).to.equal('*.nomatch\n')
      expect(await readFile(join(ws.deployTo, 'releases/2/app/version.rb'), 'utf8')).to.contain('v2')

      const back = await cli(ws, 'rollback')
      expect(back.code, `${shell}: ${back.stderr}`).to.equal(0)
      expect(await readlink(join(ws.deployTo, 'current'))).to.equal('releases/1')

      const pruned = await cli(ws, 'prune', '--keep', '1')
      expect(pruned.code, `${shell}: ${pruned.stderr}`).to.equal(0)
      expect(await listDir(join(ws.deployTo, 'releases')), shell).to.deep.equal(['1'])
      const history = (await readFile(join(ws.deployTo, '.deployer/history.jsonl'), 'utf8'))
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { event: string; deleted?: number[] })
      expect(history.filter((event) => event.event === 'prune').map((event) => event.deleted)).to.deep.equal([
        [2],
      ])
      const everything = [first, second, back, pruned]
        .map((result) => result.stdout + result.stderr)
        .join('\n')
      expect(everything, 'login output shown as if deployer or the host said it').to.not.contain('LOGIN-JUNK')

      await recordCase({
        kind: 'fault',
        group: GROUP,
        name: `login shell ${shell.split('/').pop()}, startup file and ~/.ssh/rc printing on stdout and stderr`,
        expected:
          'release, second release, rollback and prune all succeed; the install runs under /bin/sh; login output never reaches what deployer parses or shows',
        observed: `release 1 and 2 exit 0 (install wrote "installed v2", unmatched glob kept literally), rollback exit 0 to releases/1, prune exit 0 left releases/ = 1 and recorded deleted [2]; no junk in any output`,
      })
    }
  }

  // The shells run side by side: each is a different user with its own deploy_to on the one sshd.
  it(`releases, rolls back and prunes as a user whose login shell is each of ${SHELLS.map((entry) => entry.shell.split('/').pop()).join(', ')}`, async () => {
    await Promise.all(SHELLS.map(({ user, shell }) => lifecycle(user, shell)))
  })

  it('reports a restricted login shell (rbash) in `deployer check` and refuses to release, naming the fix', async () => {
    const user = 'deployer-sh-rbash'
    await prepareUser(sshd, user, '/usr/bin/rbash')
    const ws = await workspaceFor(user)

    const check = await runCli(['check', '--config', ws.config])
    expect(check.code, check.stdout).to.equal(ExitCode.connection)
    const report = check.stdout + check.stderr
    expect(report).to.contain('login shell (/usr/bin/rbash) of deployer-sh-rbash did not run /bin/sh')
    expect(report).to.contain('chsh -s /bin/bash deployer-sh-rbash')

    const release = await cli(ws, 'release')
    expect(release.code, release.stderr).to.equal(ExitCode.connection)
    const json = parseJson<ReleaseJson>(release)
    expect(json.error?.message).to.contain('/usr/bin/rbash').and.contain('restricted')
    expect(json.error?.hint).to.contain('chsh -s /bin/bash deployer-sh-rbash')
    expect(await listDir(ws.deployTo), 'nothing written on the host').to.deep.equal([])

    await recordCase({
      kind: 'fault',
      group: GROUP,
      name: 'login shell rbash (cannot run /bin/sh by path)',
      expected: '`check` and `release` exit 4 naming the shell and `chsh -s /bin/bash USER`; nothing written',
      observed: `check exit ${check.code}, release exit ${release.code}: "${json.error?.message.split('\n')[0]}"; deploy_to left empty`,
    })
  })
})
