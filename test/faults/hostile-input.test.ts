import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chown, mkdir, readFile, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { createServer, type Socket } from 'node:net'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import { expect } from 'chai'
import { ExitCode } from '../../src/errors.js'
import type { HostReleases } from '../../src/fleet/list.js'
import { fingerprint } from '../../src/transport/known-hosts.js'
import { quote } from '../../src/transport/quote.js'
import { SshTransport } from '../../src/transport/ssh.js'
import { type CliResult, parseJson, type ReleaseJson, runCli } from '../support/cli.js'
import { DEPLOY_USER, listDir, snapshotTree, userIds, writeApp, writeConfig } from '../support/fixture.js'
import { recordCase } from '../support/reliability.js'
import { useSshdWorkspace } from '../support/suite.js'

const run = promisify(execFile)

/*
 * Bad and hostile input, through the built CLI against the test sshd: each input is refused with a
 * clear error and the documented exit code, or handled exactly, and nothing outside deploy_to changes.
 * Every case is recorded for docs/reliability.md once its assertions passed.
 */

/** A port that accepts TCP and drops it at once, counting connections: the proof that none was made. */
interface CountingListener {
  port: number
  connections(): number
  close(): Promise<void>
}

async function countingListener(): Promise<CountingListener> {
  let connections = 0
  const server = createServer((socket: Socket) => {
    connections++
    socket.destroy()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as { port: number }).port,
    connections: () => connections,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  }
}

/** The first line of the error deployer printed (`Error: ...`), without the prefix. */
function errorLine(result: CliResult): string {
  return (
    result.stderr
      .split('\n')
      .find((line) => line.startsWith('Error: '))
      ?.slice('Error: '.length) ?? ''
  )
}

/** What must survive an upload: type, permission bits, content or link target; not inodes or times. */
async function contentTree(root: string, leaveOut: (path: string) => boolean): Promise<Map<string, string>> {
  const tree = new Map<string, string>()
  for (const [path, identity] of await snapshotTree(root)) {
    if (path === '.' || leaveOut(path)) continue
    const match = /^ino=\d+ mode=(\d+) size=\d+ mtime=[\d.]+( -> [\s\S]*| sha256=[0-9a-f]+)?$/.exec(identity)
    expect(match, `${path}: ${identity}`).to.not.equal(null)
    tree.set(path, `${match?.[1]}${match?.[2] ?? ''}`)
  }
  return tree
}

/** Every regular file below `root` whose bytes contain `needle`. */
async function filesContaining(root: string, needle: string): Promise<string[]> {
  const found: string[] = []
  for (const [path, identity] of await snapshotTree(root)) {
    if (!identity.includes('sha256=')) continue
    if ((await readFile(join(root, path))).includes(needle)) found.push(path)
  }
  return found
}

/** `text` as a Markdown code span for the report, with doubled backticks when it holds one itself. */
const codeSpan = (text: string) => (text.includes('`') ? `\`\` ${text} \`\`` : `\`${text}\``)

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  )

describe('hostile input', function () {
  this.timeout(120_000)
  const setup = useSshdWorkspace()

  const deployer = (args: readonly string[], env: NodeJS.ProcessEnv = {}) =>
    runCli([...args, '--config', setup.ws.config], { env })
  const current = () => readlink(join(setup.ws.deployTo, 'current'))
  /** Scratch paths and the sshd port as placeholders, so recorded observations read the same every run. */
  const tidy = (text: string) =>
    text.replaceAll(setup.ws.dir, '<tmp>').replaceAll(String(setup.sshd.port), '<port>')

  async function releaseOk(...args: string[]): Promise<ReleaseJson> {
    const result = await deployer(['release', '--json', ...args])
    expect(result.code, `release failed:\n${result.stderr}`).to.equal(ExitCode.ok)
    return parseJson<ReleaseJson>(result)
  }

  /** A directory the deploy user may write: a canary there would be created if a command ran. */
  async function deployUserDir(path: string): Promise<string> {
    await mkdir(path, { recursive: true })
    const { uid, gid } = await userIds(DEPLOY_USER)
    await chown(path, uid, gid)
    return path
  }

  /** Proves that the deploy user, over the test sshd, can create files in `dir`, so absent canaries mean something. */
  async function proveWritable(dir: string): Promise<void> {
    const transport = new SshTransport(setup.sshd.hostConfig({ deployTo: setup.ws.deployTo }))
    try {
      const probe = quote(join(dir, 'probe'))
      expect((await transport.exec(`touch ${probe} && rm ${probe}`)).code).to.equal(0)
    } finally {
      await transport.close()
    }
  }

  async function editConfig(edit: (text: string) => string): Promise<void> {
    await writeFile(setup.ws.config, edit(await readFile(setup.ws.config, 'utf8')))
  }

  describe('values that reach the remote shell', () => {
    it('releases, repeats, lists, rolls back and prunes a deploy_to full of shell syntax, running none of it', async () => {
      const srv = join(setup.ws.dir, 'srv')
      const canaries = await deployUserDir(join(srv, 'canaries'))
      await proveWritable(canaries)
      const canary = (n: number) => join(canaries, `c${n}`)
      // Owned by the deploy user: a stray rm -rf or a redirection could change it.
      const sibling = await deployUserDir(join(srv, 'sibling'))
      await writeFile(join(sibling, 'keep.txt'), 'keep\n')
      const first = `-x it's "a" $(touch ${canary(1)}) \`touch ${canary(2)}\` ; touch ${canary(3)} && touch ${canary(4)}`
      const deployTo = join(srv, `${first} | * ? ~ $HOME \\ end`)
      const sharedDirs = [`pids $(touch ${canary(5)})`, '-rf']
      const sharedFile = `.env '"; touch ${canary(6)}`
      await mkdir(dirname(join(setup.ws.source, sharedFile)), { recursive: true })
      await writeFile(join(setup.ws.source, sharedFile), 'SECRET_KEY_BASE=x\n')
      await writeConfig({ ...setup.ws, deployTo }, setup.sshd, {
        shared: { dirs: sharedDirs, files: [sharedFile] },
        install: 'printf %s "$DEPLOYER_DEPLOY_TO" > .deploy-to',
      })
      // The app name allows letters, digits, ., _ and -: all of them. The shared file's path holds a
      // canary under /tmp: `tmp` must not be excluded here.
      await editConfig((text) =>
        text
          .replace('app: itest', 'app: Shop.v2_blue-1')
          .replace('exclude: [.git, log, tmp]', 'exclude: [.git, log]'),
      )
      const siblingBefore = await snapshotTree(sibling)
      const srvBefore = await listDir(srv)
      const at = (...parts: string[]) => join(deployTo, ...parts)

      const one = await releaseOk()
      expect(one.hosts[0]).to.include({ status: 'released', deployTo })
      expect(await readlink(at('current'))).to.equal('releases/1')
      expect(await readFile(at('current', '.deploy-to'), 'utf8')).to.equal(deployTo)
      expect(await readlink(at('releases', '1', '-rf'))).to.equal(at('shared', '-rf'))
      expect(await readlink(at('releases', '1', sharedFile))).to.equal(at('shared', sharedFile))
      expect(await readFile(at('shared', sharedFile), 'utf8')).to.equal('SECRET_KEY_BASE=x\n')

      await writeApp(setup.ws.source, 'v2')
      const two = await releaseOk()
      expect(two.hosts[0]?.upload?.from).to.equal(1)
      expect(two.hosts[0]?.upload?.linkedFiles).to.be.greaterThan(0)
      const inode = async (release: string) => (await stat(at('releases', release, 'bin', 'start'))).ino
      expect(await inode('2')).to.equal(await inode('1'))
      expect(await readFile(at('current', 'app', 'version.rb'), 'utf8')).to.contain('v2')

      const listed = await deployer(['releases', '--json'])
      expect(listed.code, listed.stderr).to.equal(ExitCode.ok)
      const host = parseJson<{ hosts: HostReleases[] }>(listed).hosts[0]
      expect(host?.deployTo).to.equal(deployTo)
      expect(host?.releases.map((entry) => [entry.number, entry.current])).to.deep.equal([
        [1, false],
        [2, true],
      ])

      const back = await deployer(['rollback'])
      expect(back.code, back.stderr).to.equal(ExitCode.ok)
      expect(back.stdout).to.contain('Undo with: deployer rollback --to 2')
      expect(await readlink(at('current'))).to.equal('releases/1')

      const pruned = await deployer(['prune', '--keep', '1'])
      expect(pruned.code, pruned.stderr).to.equal(ExitCode.ok)
      expect(await listDir(at('releases'))).to.deep.equal(['1'])
      expect(await readlink(at('current'))).to.equal('releases/1')

      const ran = await Promise.all([1, 2, 3, 4, 5, 6].map((n) => exists(canary(n))))
      expect(ran).to.deep.equal([false, false, false, false, false, false])
      expect(await listDir(canaries)).to.deep.equal([])
      expect(await snapshotTree(sibling)).to.deep.equal(siblingBefore)
      expect(await listDir(srv)).to.deep.equal([...srvBefore, first.split('/')[0]].sort())

      const group = 'remote shell quoting'
      const expected = 'works on the literal path; no canary created; a sibling of deploy_to unchanged'
      const untouched = '6 canaries absent; sibling directory unchanged'
      const observations: [name: string, observed: string][] = [
        [
          'release into a deploy_to with spaces, quotes, $(), backticks, ;, &&, |, *, ?, ~, $HOME, \\ and a leading -',
          `exit 0; current -> releases/1 under the literal path; the install read DEPLOYER_DEPLOY_TO back byte for byte; ${untouched}`,
        ],
        [
          'repeat release into that deploy_to (delta upload, hard links)',
          `exit 0; ${two.hosts[0]?.upload?.linkedFiles} files hard-linked from release 1 (same inode), ${two.hosts[0]?.upload?.sentEntries} entries sent; ${untouched}`,
        ],
        [
          'releases on that deploy_to',
          `exit 0; --json lists releases 1 and 2 (current) under the literal path`,
        ],
        [
          'rollback on that deploy_to',
          `exit 0; current -> releases/1; the undo command printed; ${untouched}`,
        ],
        ['prune --keep 1 on that deploy_to', `exit 0; releases/ holds only 1 (current); ${untouched}`],
        [
          'shared.dirs `pids $(touch …)` and `-rf`, shared.files `.env \'"; touch …`',
          'linked into each release as symlinks to deploy_to/shared/<literal name>; the .env seeded from the release; no canary',
        ],
        ['app name using every allowed character (Shop.v2_blue-1)', 'accepted; released like any other'],
      ]
      for (const [name, observed] of observations) {
        await recordCase({ kind: 'input', group, name, expected, observed })
      }
    })
  })

  describe('a source tree', () => {
    it('refuses a source that cannot be released, before anything changes on a new or a deployed host', async () => {
      const source = setup.ws.source
      const latin1 = Buffer.concat([Buffer.from(`${source}/caf`), Buffer.from([0xe9])])
      const refusals: {
        name: string
        args?: string[]
        make: () => Promise<unknown>
        undo: () => Promise<unknown>
        error: string
      }[] = [
        {
          name: 'a symlink app/up -> ../../outside (relative, out of the source)',
          make: () => symlink('../../outside', join(source, 'app', 'up')),
          undo: () => rm(join(source, 'app', 'up')),
          error: `The source ${source} has symlinks that point outside it:`,
        },
        {
          name: 'a symlink to /etc/passwd (absolute)',
          make: () => symlink('/etc/passwd', join(source, 'passwd')),
          undo: () => rm(join(source, 'passwd')),
          error: `The source ${source} has symlinks that point outside it:`,
        },
        {
          name: 'a file name that is not UTF-8 (Latin-1 café)',
          make: () => writeFile(latin1, 'x'),
          undo: () => rm(latin1),
          error: `The source ${source} has names that are not valid UTF-8 (the bytes that are not are shown as \uFFFD):`,
        },
        {
          name: 'an exclude pattern that leaves nothing (exclude: ["*"])',
          make: () => editConfig((text) => text.replace('exclude: [.git, log, tmp]', 'exclude: ["*"]')),
          undo: () => editConfig((text) => text.replace('exclude: ["*"]', 'exclude: [.git, log, tmp]')),
          error: `The source ${source} has no file to upload once \`exclude:\` is applied: its release would be an empty app.`,
        },
        {
          name: '--source that does not exist',
          args: ['--source', join(setup.ws.dir, 'no-such-build')],
          make: async () => {},
          undo: async () => {},
          error: `The source ${join(setup.ws.dir, 'no-such-build')} does not exist.`,
        },
        {
          name: '--source that is a file',
          args: ['--source', join(source, 'config.ru')],
          make: async () => {},
          undo: async () => {},
          error: `The source ${join(source, 'config.ru')} is not a directory.`,
        },
      ]
      const refuse = async (refusal: (typeof refusals)[number]) => {
        await refusal.make()
        const result = await deployer(['release', ...(refusal.args ?? [])])
        await refusal.undo()
        expect(result.code, result.stderr).to.equal(ExitCode.config)
        expect(errorLine(result)).to.equal(refusal.error)
        return result
      }

      for (const refusal of refusals) await refuse(refusal)
      expect(await listDir(setup.ws.deployTo), 'a new host').to.deep.equal([])

      await releaseOk()
      const before = await snapshotTree(setup.ws.deployTo)
      for (const refusal of refusals) {
        const result = await refuse(refusal)
        expect(await snapshotTree(setup.ws.deployTo), refusal.name).to.deep.equal(before)
        await recordCase({
          kind: 'input',
          group: 'source tree',
          name: refusal.name,
          expected: 'exit 3 before any host changes',
          observed: `exit 3, ${codeSpan(tidy(errorLine(result)))}; a new host's deploy_to stays empty, a deployed one keeps every inode and mtime`,
        })
      }
    })

    it('uploads file names with newlines, tabs, quotes, $(), backslashes, unicode and a leading - exactly, also on a repeat release', async () => {
      const names = [
        'new\nline.rb',
        'tab\there.rb',
        "it's.rb",
        'say "hi".rb',
        ' leading and trailing space ',
        'back\\slash\\',
        'ünïcødé-日本語-🚀.rb',
        '-rf',
        '--help',
        '$(touch hostile-canary)',
        '`touch hostile-canary`',
        '; touch hostile-canary && echo |',
        '*',
        '?',
        '.hidden',
        'x'.repeat(200),
      ]
      const odd = join(setup.ws.source, 'dir "with" $(quotes)\n', '-n')
      await mkdir(odd, { recursive: true })
      for (const name of names)
        await writeFile(join(setup.ws.source, name), `content of ${JSON.stringify(name)}\n`)
      await writeFile(join(odd, '-e'), '')
      await symlink("../../it's.rb", join(odd, "link to it's"))
      const deep = join(
        setup.ws.source,
        ...Array.from({ length: 6 }, (_, level) => `${'d'.repeat(50)}${level}`),
      )
      await mkdir(deep, { recursive: true })
      await writeFile(join(deep, 'deep file.rb'), 'deep\n')
      await mkdir(join(setup.ws.source, 'read-only dir'))
      await writeFile(join(setup.ws.source, 'read-only dir', 'inside.rb'), 'ro\n')
      await run('chmod', ['0555', join(setup.ws.source, 'read-only dir')])
      await run('mkfifo', [join(setup.ws.source, 'fifo "x"')])
      const fromSource = (path: string) => path === 'log' || path.startsWith('log/') || path === 'fifo "x"'
      const fromDeployer = (path: string) =>
        path === 'RELEASE' || path === 'REVISION' || path === '.deployer' || path.startsWith('.deployer/')
      const release = (n: number) => join(setup.ws.deployTo, 'releases', String(n))

      const one = await deployer(['release', '--json'])
      expect(one.code, one.stderr).to.equal(ExitCode.ok)
      expect(one.stderr).to.contain('left out 1 special files (sockets, FIFOs): fifo "x"')
      expect(await contentTree(release(1), fromDeployer)).to.deep.equal(
        await contentTree(setup.ws.source, fromSource),
      )

      await writeApp(setup.ws.source, 'v2')
      const two = await releaseOk()
      expect(await contentTree(release(2), fromDeployer)).to.deep.equal(
        await contentTree(setup.ws.source, fromSource),
      )
      const inode = async (n: number, name: string) => (await stat(join(release(n), name))).ino
      for (const name of [...names, 'read-only dir/inside.rb']) {
        expect(await inode(2, name), JSON.stringify(name)).to.equal(await inode(1, name))
      }

      const home = (await run('getent', ['passwd', DEPLOY_USER])).stdout.split(':')[5] as string
      expect(await exists(join(home, 'hostile-canary'))).to.equal(false)
      const everywhere = [...(await snapshotTree(setup.ws.dir)).keys()]
      expect(everywhere.filter((path) => path.split('/').at(-1) === 'hostile-canary')).to.deep.equal([])

      const group = 'source tree'
      const entries = (await contentTree(setup.ws.source, fromSource)).size
      await recordCase({
        kind: 'input',
        group,
        name: 'file names with a newline, a tab, quotes, spaces, backslashes, unicode, $(), backticks, ;, *, a leading - and a 200-byte name; a 300-byte path; a read-only dir',
        expected: 'uploaded exactly (names, modes, contents, links); nothing in a name runs',
        observed: `exit 0; all ${entries} entries of the published release match the source (type, mode, content or link target); no hostile-canary anywhere`,
      })
      await recordCase({
        kind: 'input',
        group,
        name: 'the same names on a repeat release',
        expected: 'unchanged files hard-linked, the release still exact',
        observed: `exit 0; ${two.hosts[0]?.upload?.linkedFiles} files hard-linked (same inodes for every odd name), the release matches the source`,
      })
      await recordCase({
        kind: 'input',
        group,
        name: 'a FIFO in the source',
        expected: 'left out with a warning',
        observed:
          'exit 0; `left out 1 special files (sockets, FIFOs): fifo "x"` on stderr; not in the release',
      })
    })
  })

  describe('host keys', () => {
    /** A known_hosts line for the test sshd's address with a key it does not have. */
    async function impostorLine(): Promise<string> {
      const key = join(setup.ws.dir, 'impostor')
      await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key])
      const [type, blob] = (await readFile(`${key}.pub`, 'utf8')).split(' ')
      return `[127.0.0.1]:${setup.sshd.port} ${type} ${blob}\n`
    }
    const realFingerprint = () =>
      fingerprint(Buffer.from(setup.sshd.hostPublicKey.split(' ')[1] as string, 'base64'))

    it('refuses a host whose key changed, under strict and accept-new, before any command runs on it', async () => {
      await releaseOk()
      const before = await snapshotTree(setup.ws.deployTo)
      const knownHosts = join(setup.ws.dir, 'known_hosts')
      const recorded = await impostorLine()
      await writeFile(knownHosts, recorded)
      for (const hostKey of ['strict', 'accept-new'] as const) {
        await writeConfig(setup.ws, setup.sshd, { knownHosts, hostKey })
        await writeApp(setup.ws.source, 'v2')
        const result = await deployer(['release'])
        expect(result.code, result.stderr).to.equal(ExitCode.hostKey)
        expect(errorLine(result)).to.contain(
          `Host it: the host key of [127.0.0.1]:${setup.sshd.port} has changed`,
        )
        expect(result.stderr).to.contain(realFingerprint())
        expect(await readFile(knownHosts, 'utf8')).to.equal(recorded)
        // Inodes and mtimes included: not even the lock's mkdir ran.
        expect(await snapshotTree(setup.ws.deployTo)).to.deep.equal(before)
        await recordCase({
          kind: 'input',
          group: 'host keys',
          name: `known_hosts records another key for the host (host_key: ${hostKey})`,
          expected: 'exit 5 with the fingerprint; no command runs on the host',
          observed: `exit 5, \`${tidy(errorLine(result)).slice(0, 90)}…\` naming the offered ${realFingerprint().slice(0, 14)}…; deploy_to unchanged to the inode and mtime; known_hosts unchanged`,
        })
      }
    })

    it('refuses a host missing from known_hosts under strict, showing the fingerprint to check', async () => {
      const knownHosts = join(setup.ws.dir, 'known_hosts')
      await writeFile(knownHosts, `# nothing about this host\n`)
      await writeConfig(setup.ws, setup.sshd, { knownHosts, hostKey: 'strict' })
      const result = await deployer(['release'])
      expect(result.code, result.stderr).to.equal(ExitCode.hostKey)
      expect(errorLine(result)).to.contain(`Host it: [127.0.0.1]:${setup.sshd.port} is not in ${knownHosts}`)
      expect(result.stderr)
        .to.contain(realFingerprint())
        .and.contain(`ssh-keyscan -p ${setup.sshd.port} 127.0.0.1`)
      expect(await readFile(knownHosts, 'utf8')).to.equal('# nothing about this host\n')
      expect(await listDir(setup.ws.deployTo)).to.deep.equal([])
      await recordCase({
        kind: 'input',
        group: 'host keys',
        name: 'a host missing from known_hosts (host_key: strict)',
        expected: 'exit 5 with the fingerprint and how to check it; nothing recorded or created',
        observed: `exit 5, \`${tidy(errorLine(result)).slice(0, 70)}…\` with the fingerprint and an ssh-keyscan hint; known_hosts and deploy_to unchanged`,
      })
    })
  })

  describe('rollback --to', () => {
    it('refuses a release that does not exist, is current, or is no release number, leaving current alone', async () => {
      await releaseOk()
      await writeApp(setup.ws.source, 'v2')
      await releaseOk()
      // The lock is taken and freed, which changes .deployer's own mtime and nothing else.
      const state = async () => {
        const tree = await snapshotTree(setup.ws.deployTo)
        tree.delete('.deployer')
        return tree
      }
      const before = await state()
      for (const [to, message] of [
        ['9', 'Host it: release 9 does not exist (releases: 1, 2).'],
        ['2', 'Host it: release 2 is already current.'],
        ['0', 'Expected an integer greater than or equal to 1 but received: 0'],
        ['-1', 'Expected an integer greater than or equal to 1 but received: -1'],
        ['2;touch x', 'Expected an integer but received: 2;touch x'],
      ] as const) {
        const result = await deployer(['rollback', '--to', to])
        expect(result.code, result.stderr).to.equal(ExitCode.usage)
        expect(result.stderr).to.contain(message)
        expect(await current()).to.equal('releases/2')
        expect(await state()).to.deep.equal(before)
        await recordCase({
          kind: 'input',
          group: 'rollback --to',
          name: `rollback --to ${to}`,
          expected: 'exit 2 with a clear message; current unchanged',
          observed: `exit 2, \`${message}\`; current still releases/2; releases and history unchanged`,
        })
      }
    })
  })

  describe('secrets from the environment', () => {
    /** Output of every run, to be searched for the secret at the end. */
    let outputs: CliResult[]
    const secret = `s3cr3t-${randomBytes(8).toString('hex')}`
    const env = { DEPLOY_SECRET: secret }
    async function cli(args: readonly string[], code: number): Promise<CliResult> {
      const result = await deployer(args, env)
      expect(result.code, `${args.join(' ')}:\n${result.stderr}`).to.equal(code)
      outputs.push(result)
      return result
    }
    /** Where the secret showed: the outputs that hold it, and the files under the workspace (deploy_to too). */
    async function leaks(): Promise<string[]> {
      const shown = outputs
        .filter((result) => `${result.stdout}${result.stderr}`.includes(secret))
        .map((result) => `output: ${result.stderr.slice(0, 200)}`)
      return [...shown, ...(await filesContaining(setup.ws.dir, secret))]
    }
    beforeEach(() => {
      outputs = []
    })

    it('never shows a ${VAR} secret of install.command, nor writes it on the host', async () => {
      await writeConfig(setup.ws, setup.sshd, {
        install: "test -n '${DEPLOY_SECRET}' && echo installed > .installed",
      })
      await cli(['release'], ExitCode.ok)
      const plan = await cli(['release', '--dry-run'], ExitCode.ok)
      expect(plan.stdout).to.contain("install: test -n '${DEPLOY_SECRET}' && echo installed > .installed")
      await cli(['release', '--dry-run', '--json'], ExitCode.ok)
      await writeApp(setup.ws.source, 'v2')
      await cli(['release', '--json'], ExitCode.ok)
      expect(await readFile(join(setup.ws.deployTo, 'current', '.installed'), 'utf8')).to.equal('installed\n')
      await cli(['releases'], ExitCode.ok)
      await cli(['releases', '--json'], ExitCode.ok)
      await cli(['rollback', '--json'], ExitCode.ok)
      await cli(['rollback', '--to', '2'], ExitCode.ok)
      const checked = await deployer(['check', '--json'], env)
      const checkedPlain = await deployer(['check'], env)
      expect(checkedPlain.code).to.equal(checked.code)
      outputs.push(checked, checkedPlain)
      // The install fails only because the secret reached it: its message must still not show it.
      await editConfig((text) =>
        text.replace(
          "test -n '${DEPLOY_SECRET}' && echo installed > .installed",
          "test -z '${DEPLOY_SECRET}'",
        ),
      )
      await writeApp(setup.ws.source, 'v3')
      const failed = await cli(['release'], ExitCode.install)
      expect(errorLine(failed)).to.equal(
        "Host it: install (`test -z '${DEPLOY_SECRET}'`) in release 3 failed (exit 1).",
      )
      await cli(['release', '--json'], ExitCode.install)
      expect(await leaks()).to.deep.equal([])
      await recordCase({
        kind: 'input',
        group: 'secrets',
        name: '${VAR} in install.command: release, --dry-run, --json, releases, rollback, check, a failed install',
        expected: 'the value never in stdout, stderr, --json or any file deployer writes on the host',
        observed: `${outputs.length} runs (exit 0, and 7 for the failed install whose message shows \`test -z '\${DEPLOY_SECRET}'\`); the value in no output and in no file under deploy_to (history, manifests, fingerprints) or the workspace`,
      })
    })

    it('never shows a ${VAR} secret of control_token or health.url, and refuses rollback --to the release that failed', async () => {
      await releaseOk()
      await mkdir(join(setup.ws.source, 'config'), { recursive: true })
      await writeFile(join(setup.ws.source, 'config', 'puma.rb'), 'workers 0\n')
      // A start command that starts nothing: release 2 fails verification, goes back to 1 and is marked failed.
      await editConfig((text) =>
        [
          text.trimEnd(),
          'server:',
          '  start: "true"',
          '  control_url: unix://shared/tmp/sockets/pumactl.sock',
          '  control_token: ${DEPLOY_SECRET}',
          // Nothing ever starts: without it each start would be waited for as long as a real boot may take.
          '  restart_timeout: 5s',
          'health:',
          '  url: http://127.0.0.1:9/up?token=${DEPLOY_SECRET}',
          '  timeout: 2s',
          '',
        ].join('\n'),
      )
      const failed = await cli(['release', '--json'], ExitCode.verify)
      // Puma cannot be brought back either (the same start command): the host ends failed, on release 1.
      expect(parseJson<ReleaseJson>(failed).hosts[0]).to.include({ status: 'failed', release: 2 })
      expect(await current()).to.equal('releases/1')
      const listed = await cli(['releases', '--json'], ExitCode.ok)
      const states = parseJson<{ hosts: HostReleases[] }>(listed).hosts[0]?.releases.map(
        (entry) => entry.state,
      )
      expect(states).to.deep.equal(['live', 'failed'])
      const refused = await cli(['rollback', '--to', '2'], ExitCode.usage)
      expect(errorLine(refused)).to.equal('Host it: release 2 is marked failed and will not be made current.')
      await cli(['rollback', '--to', '2', '--json'], ExitCode.usage)
      expect(await current()).to.equal('releases/1')
      for (const args of [['check'], ['check', '--json']]) {
        const result = await deployer(args, env)
        expect(result.stdout).to.contain('http://127.0.0.1:9/up?token=${DEPLOY_SECRET}')
        outputs.push(result)
      }
      expect(await leaks()).to.deep.equal([])
      await recordCase({
        kind: 'input',
        group: 'rollback --to',
        name: 'rollback --to a release that failed verification',
        expected: 'exit 2 with a clear message; current unchanged',
        observed: `exit 2 (also with --json), \`${errorLine(refused)}\`; current still releases/1`,
      })
      await recordCase({
        kind: 'input',
        group: 'secrets',
        name: '${VAR} in server.control_token and health.url: a release that fails verification, releases, rollback, check',
        expected: 'the value never in stdout, stderr, --json or any file deployer writes on the host',
        observed: `${outputs.length} runs (exit 8 for the failed release, 2 for the refused rollback); check shows the URL as written; the value in no output and in no file under deploy_to or the workspace`,
      })
    })

    it('never shows a ${VAR} secret in the problems of an invalid config, for any command', async () => {
      const variants: [string, (text: string) => string, string][] = [
        [
          'deploy_to',
          (text) => text.replace(/^deploy_to: .*$/m, 'deploy_to: ${DEPLOY_SECRET}'),
          'deploy_to: "${DEPLOY_SECRET}" (expanded) must be an absolute path',
        ],
        [
          'a host',
          (text) => text.replace(/^ {2}- \{ name: it, ssh: .*$/m, '  - "${DEPLOY_SECRET}:99999"'),
          'hosts[0]: "${DEPLOY_SECRET}:99999" (expanded) has a port outside 1-65535',
        ],
        [
          'strategy',
          (text) => `${text}strategy: \${DEPLOY_SECRET}\n`,
          'strategy: must be one of parallel, rolling, canary, not "${DEPLOY_SECRET}" (expanded)',
        ],
      ]
      const valid = await readFile(setup.ws.config, 'utf8')
      for (const [key, edit, problem] of variants) {
        await writeFile(setup.ws.config, edit(valid))
        const commands = [
          ['release'],
          ['release', '--json'],
          ['releases', '--json'],
          ['rollback'],
          ['check', '--json'],
        ]
        const results = await Promise.all(commands.map((args) => deployer(args, env)))
        for (const result of results) {
          expect(result.code, result.stderr).to.equal(ExitCode.config)
          expect(result.stderr).to.contain(problem)
        }
        outputs.push(...results)
        expect(await leaks()).to.deep.equal([])
        await recordCase({
          kind: 'input',
          group: 'secrets',
          name: `\${VAR} making ${key} invalid: release (also --json), releases --json, rollback, check --json`,
          expected: 'exit 3 naming the variable, never its value',
          observed: `exit 3 from all ${results.length} runs, \`deployer.yml:…: ${problem}\`; the value in no output`,
        })
      }
    })
  })

  describe('other hostile input', () => {
    it('refuses --host with shell syntax as an unknown host, running nothing', async () => {
      const canaries = await deployUserDir(join(setup.ws.dir, 'srv', 'canaries'))
      for (const host of [`it; touch ${canaries}/c1`, `$(touch ${canaries}/c2)`, '-oProxyCommand=x']) {
        const result = await deployer(['release', '--host', host])
        expect(result.code, result.stderr).to.equal(ExitCode.usage)
        expect(errorLine(result)).to.equal(
          `${setup.ws.config} has no host named ${JSON.stringify(host)}; its hosts are it.`,
        )
        await recordCase({
          kind: 'input',
          group: 'other',
          name: `--host ${JSON.stringify(host.replace(setup.ws.dir, '<tmp>'))}`,
          expected: 'exit 2, unknown host; nothing run',
          observed: `exit 2, \`${tidy(errorLine(result))}\`; deploy_to empty, no canary`,
        })
      }
      expect(await listDir(canaries)).to.deep.equal([])
      expect(await listDir(setup.ws.deployTo)).to.deep.equal([])
    })

    it('refuses to release over a current that is a real directory, leaving it as it was', async () => {
      await mkdir(join(setup.ws.deployTo, 'current'))
      await writeFile(join(setup.ws.deployTo, 'current', 'index.html'), 'hand-made site\n')
      const before = await snapshotTree(join(setup.ws.deployTo, 'current'))
      const result = await deployer(['release'])
      expect(result.code, result.stderr).to.equal(ExitCode.failure)
      expect(errorLine(result)).to.equal(
        `Host it: ${join(setup.ws.deployTo, 'current')} exists but is not a symlink.`,
      )
      expect(await snapshotTree(join(setup.ws.deployTo, 'current'))).to.deep.equal(before)
      expect(await listDir(join(setup.ws.deployTo, 'releases'))).to.deep.equal([])
      await recordCase({
        kind: 'input',
        group: 'other',
        name: 'deploy_to/current is a real directory (a hand-made site)',
        expected: 'refused with a clear message; the directory untouched; nothing published',
        observed: `exit 1, \`${tidy(errorLine(result))}\`; its content unchanged; no release created`,
      })
    })

    it('lists and releases past a damaged history line and a damaged manifest', async () => {
      await releaseOk()
      await writeFile(
        join(setup.ws.deployTo, '.deployer', 'history.jsonl'),
        '{"event": "rel\n\u0000\u00ff garbage\n',
        {
          flag: 'a',
        },
      )
      await writeFile(join(setup.ws.deployTo, 'releases', '1', '.deployer', 'manifest.json'), '{ not json')
      const listed = await deployer(['releases', '--json'])
      expect(listed.code, listed.stderr).to.equal(ExitCode.ok)
      expect(parseJson<{ hosts: HostReleases[] }>(listed).hosts[0]?.current).to.equal(1)
      await writeApp(setup.ws.source, 'v2')
      const two = await releaseOk()
      // No manifest to compare with: everything is sent again, nothing is linked from the damaged release.
      expect(two.hosts[0]?.upload?.linkedFiles).to.equal(0)
      expect(await current()).to.equal('releases/2')
      expect(await readFile(join(setup.ws.deployTo, 'current', 'app', 'version.rb'), 'utf8')).to.contain('v2')
      await recordCase({
        kind: 'input',
        group: 'other',
        name: 'a damaged line in history.jsonl and a manifest that is not JSON on the host',
        expected: 'releases and release still work; nothing reused from a release it cannot read',
        observed: `exit 0 for releases (current 1) and release 2, which sent all ${two.hosts[0]?.upload?.sentEntries} entries and linked none`,
      })
    })

    it('refuses prune --keep that is 0 or not a number, deleting nothing', async () => {
      await releaseOk()
      await writeApp(setup.ws.source, 'v2')
      await releaseOk()
      for (const [keep, message] of [
        ['0', '--keep must be at least 1'],
        ['all', 'Expected an integer but received: all'],
      ] as const) {
        const result = await deployer(['prune', '--keep', keep])
        expect(result.code, result.stderr).to.equal(ExitCode.usage)
        expect(result.stderr).to.contain(message)
        expect(await listDir(join(setup.ws.deployTo, 'releases'))).to.deep.equal(['1', '2'])
        await recordCase({
          kind: 'input',
          group: 'other',
          name: `prune --keep ${keep}`,
          expected: 'exit 2; nothing deleted',
          observed: `exit 2, \`${message}\`; releases 1 and 2 still there`,
        })
      }
    })
  })

  describe('a deployer.yml that is wrong', () => {
    let listener: CountingListener
    before(async () => {
      listener = await countingListener()
    })
    after(async () => {
      await listener?.close()
    })

    /** A valid config (lines 1-4) whose host is the counting listener. */
    const valid = () => [
      'app: shop',
      `source: ${JSON.stringify(setup.ws.source)}`,
      `deploy_to: ${JSON.stringify(join(setup.ws.dir, 'srv', 'fuzz'))}`,
      `hosts: ["deploy@127.0.0.1:${listener.port}"]`,
    ]
    const replace = (lines: string[], index: number, line: string) =>
      lines.map((old, at) => (at === index ? line : old))

    it('accepts the valid config the cases start from, and reaches its host (the control case)', async () => {
      await writeFile(setup.ws.config, `${valid().join('\n')}\n`)
      const before = listener.connections()
      const result = await deployer(['release'], { DEPLOYER_SSH_IDENTITY: setup.sshd.clientKeyPath })
      expect(result.code, result.stderr).to.equal(ExitCode.connection)
      expect(listener.connections()).to.be.greaterThan(before)
    })

    interface ConfigCase {
      group: string
      name: string
      /** The file's lines, from the valid ones (app, source, deploy_to, hosts on lines 1-4). */
      lines: (valid: string[]) => string[]
      /** Every problem, as `line:col: key: message`, in file order. */
      problems: string[]
      env?: NodeJS.ProcessEnv
    }
    const types = 'config: wrong type'
    const missing = 'config: missing key'
    const unknown = 'config: unknown key'
    const enums = 'config: bad value'
    const syntax = 'config: not a deployer.yml'
    const hostile = 'config: hostile value'
    const deployTo = 'deploy_to refused'
    const cases: ConfigCase[] = [
      {
        group: types,
        name: 'keep_releases: "five" (string for integer)',
        lines: (v) => [...v, 'keep_releases: "five"'],
        problems: ['5:16: keep_releases: must be a whole number, not a string'],
      },
      {
        group: types,
        name: 'concurrency: [1, 2] (list for integer)',
        lines: (v) => [...v, 'concurrency: [1, 2]'],
        problems: ['5:14: concurrency: must be a whole number, not a list'],
      },
      {
        group: types,
        name: 'shared: [log] (list for map)',
        lines: (v) => [...v, 'shared: [log]'],
        problems: ['5:9: shared: must be a mapping with keys such as files, dirs'],
      },
      {
        group: types,
        name: 'ssh: strict (string for map)',
        lines: (v) => [...v, 'ssh: strict'],
        problems: ['5:6: ssh: must be a mapping with keys such as user, identity, known_hosts'],
      },
      {
        group: types,
        name: 'app: -1 (a number that is no name)',
        lines: (v) => replace(v, 0, 'app: -1'),
        problems: [
          '1:6: app: "-1" must start with a letter or digit and hold only letters, digits, ., _ and -',
        ],
      },
      {
        group: types,
        name: 'app: true (a boolean)',
        lines: (v) => replace(v, 0, 'app: true'),
        problems: ['1:6: app: must be a string, not true (quote it to mean the word)'],
      },
      {
        group: types,
        name: 'hosts: one string instead of a list',
        lines: (v) => replace(v, 3, 'hosts: deploy@web1'),
        problems: ['4:8: hosts: must be a list of hosts: user@host[:port], local, or { name, ssh } mappings'],
      },
      {
        group: types,
        name: 'install.command: a list',
        lines: (v) => [...v, 'install: { command: [bundle, install] }'],
        problems: ['5:21: install.command: must be a string, not a list'],
      },
      {
        group: missing,
        name: 'app, deploy_to and hosts all missing',
        lines: (v) => [v[1] as string],
        problems: ['1:1: app: is required', '1:1: deploy_to: is required', '1:1: hosts: is required'],
      },
      {
        group: missing,
        name: 'deploy_to: with no value',
        lines: (v) => replace(v, 2, 'deploy_to:'),
        problems: ['3:1: deploy_to: needs a value'],
      },
      {
        group: missing,
        name: 'hosts: []',
        lines: (v) => replace(v, 3, 'hosts: []'),
        problems: ['4:8: hosts: must list at least one host'],
      },
      {
        group: unknown,
        name: 'keep_release (top level typo)',
        lines: (v) => [...v, 'keep_release: 3'],
        problems: ['5:1: keep_release: unknown key; did you mean keep_releases?'],
      },
      {
        group: unknown,
        name: 'ssh.identiy (typo in a section)',
        lines: (v) => [...v, 'ssh: { identiy: ~/.ssh/id_ed25519 }'],
        problems: ['5:8: ssh.identiy: unknown key; did you mean identity?'],
      },
      {
        group: unknown,
        name: 'install.comand (typo of a required key)',
        lines: (v) => [...v, 'install: { comand: bundle install }'],
        problems: [
          '5:10: install.command: is required',
          '5:12: install.comand: unknown key; did you mean command?',
        ],
      },
      {
        group: unknown,
        name: 'known_hosts at the top level',
        lines: (v) => [...v, 'known_hosts: ~/.ssh/known_hosts'],
        problems: [
          '5:1: known_hosts: unknown key at the top level; did you mean ssh.known_hosts (under ssh:)?',
        ],
      },
      {
        group: unknown,
        name: 'hosts[0].shh (typo in a host mapping)',
        lines: (v) => replace(v, 3, 'hosts: [{ name: web1, user: deploy, shh: deploy@web1 }]'),
        problems: ['4:37: hosts[0].shh: unknown key; did you mean ssh?'],
      },
      {
        group: enums,
        name: 'strategy: paralel',
        lines: (v) => [...v, 'strategy: paralel'],
        problems: [
          '5:11: strategy: must be one of parallel, rolling, canary, not "paralel"; did you mean parallel?',
        ],
      },
      {
        group: enums,
        name: 'on_failure: abort',
        lines: (v) => [...v, 'on_failure: abort'],
        problems: ['5:13: on_failure: must be one of rollback, stop, not "abort"'],
      },
      {
        group: enums,
        name: 'ssh.host_key: tofu',
        lines: (v) => [...v, 'ssh: { host_key: tofu }'],
        problems: ['5:18: ssh.host_key: must be one of strict, accept-new, not "tofu"'],
      },
      {
        group: enums,
        name: 'server.restart: sometimes',
        lines: (v) => [...v, 'server: { restart: sometimes }'],
        problems: ['5:20: server.restart: must be one of auto, phased, hot, full, none, not "sometimes"'],
      },
      {
        group: enums,
        name: 'ssh.connect_timeout: 10 minutes',
        lines: (v) => [...v, 'ssh: { connect_timeout: 10 minutes }'],
        problems: [
          '5:25: ssh.connect_timeout: must be a duration above 0, such as 60s, 2m or a number of seconds, not "10 minutes"',
        ],
      },
      {
        group: enums,
        name: 'health.timeout: -5s and 0',
        lines: (v) => [
          ...v,
          'health: { url: "http://127.0.0.1:9292/up", timeout: -5s }',
          'ssh: { connect_timeout: 0 }',
        ],
        problems: [
          '5:53: health.timeout: must be a duration above 0, such as 60s, 2m or a number of seconds, not "-5s"',
          '6:25: ssh.connect_timeout: must be a duration above 0, such as 60s, 2m or a number of seconds, not 0',
        ],
      },
      {
        group: syntax,
        name: 'YAML syntax error (unclosed [)',
        lines: (v) => [...v, 'exclude: [.git, log'],
        problems: [
          '6:1: YAML syntax: Flow sequence in block collection must be sufficiently indented and end with a ]',
        ],
      },
      {
        group: syntax,
        name: 'a tab as indentation',
        lines: (v) => [...v, 'ssh:', '\tidentity: ~/.ssh/id_ed25519'],
        problems: ['6:1: YAML syntax: Tabs are not allowed as indentation'],
      },
      {
        group: syntax,
        name: 'a key written twice',
        lines: (v) => [...v, 'app: shop2'],
        problems: ['5:1: YAML syntax: Map keys must be unique'],
      },
      {
        group: syntax,
        name: 'an empty file',
        lines: () => [],
        problems: ['1:1: the file is empty: it needs at least app, deploy_to and hosts'],
      },
      {
        group: syntax,
        name: 'a file that is a list',
        lines: () => ['- app: shop', '- deploy_to: /srv/shop'],
        problems: ['1:1: the top level must be a mapping with keys such as app, source, exclude'],
      },
      {
        group: syntax,
        name: 'two YAML documents',
        lines: (v) => [...v, '---', ...v],
        problems: [
          '5:1: holds more than one YAML document (a second ---); deployer.yml must be a single document',
        ],
      },
      {
        group: hostile,
        name: 'host deploy@-oProxyCommand=touch x (an ssh option as host name)',
        lines: (v) => replace(v, 3, 'hosts: ["deploy@-oProxyCommand=touch x"]'),
        problems: [
          '4:9: hosts[0]: "deploy@-oProxyCommand=touch x" must not contain spaces or control characters',
        ],
      },
      {
        group: hostile,
        name: 'host deploy@-oProxyCommand=x, and a user -oX',
        lines: (v) => replace(v, 3, 'hosts: ["deploy@-oProxyCommand=x", "-oX@web2"]'),
        problems: [
          '4:9: hosts[0]: "deploy@-oProxyCommand=x" has an invalid host name',
          '4:36: hosts[1]: "-oX@web2" has an invalid user name before the @',
        ],
      },
      {
        group: hostile,
        name: 'app: "shop; touch x"',
        lines: (v) => replace(v, 0, 'app: "shop; touch x"'),
        problems: [
          '1:6: app: "shop; touch x" must start with a letter or digit and hold only letters, digits, ., _ and -',
        ],
      },
      {
        group: hostile,
        name: 'shared paths ../../etc and /etc/passwd',
        lines: (v) => [...v, 'shared: { dirs: [../../etc], files: [/etc/passwd] }'],
        problems: [
          '5:18: shared.dirs[0]: "../../etc" must not contain .. segments',
          '5:38: shared.files[0]: "/etc/passwd" must be a relative path, not an absolute one',
        ],
      },
      {
        group: hostile,
        name: 'a port out of range',
        lines: (v) => replace(v, 3, 'hosts: ["deploy@web1:70000"]'),
        problems: ['4:9: hosts[0]: "deploy@web1:70000" has a port outside 1-65535'],
      },
      {
        group: hostile,
        name: 'NUL and 0xFF bytes in app',
        lines: (v) => replace(v, 0, 'app: shop\u0000\u00ff'),
        problems: [
          '1:6: app: "shop\\u0000ÿ" must start with a letter or digit and hold only letters, digits, ., _ and -',
        ],
      },
      {
        group: hostile,
        name: 'aliases nested 9 deep (billion laughs) under exclude',
        lines: (v) => [
          ...v,
          'exclude:',
          '  - &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]',
          ...Array.from({ length: 8 }, (_, level) => {
            const alias = `*a${level}`
            return `  - &a${level + 1} [${Array(9).fill(alias).join(', ')}]`
          }),
        ],
        problems: Array.from(
          { length: 9 },
          (_, item) => `${6 + item}:9: exclude[${item}]: must be a string, not a list`,
        ),
      },
      {
        group: hostile,
        name: 'every problem of a file at once',
        lines: (v) => [
          'app: [shop]',
          v[1] as string,
          'deploy_to: /etc',
          'hosts: ["deploy@-x"]',
          'keep_release: 3',
          'strategy: paralel',
          'ssh: { host_key: tofu, identiy: x }',
        ],
        problems: [
          '1:6: app: must be a string, not a list',
          '3:12: deploy_to: "/etc" is a system directory: use a directory of its own, such as /srv/APP',
          '4:9: hosts[0]: "deploy@-x" has an invalid host name',
          '5:1: keep_release: unknown key; did you mean keep_releases?',
          '6:11: strategy: must be one of parallel, rolling, canary, not "paralel"; did you mean parallel?',
          '7:18: ssh.host_key: must be one of strict, accept-new, not "tofu"',
          '7:24: ssh.identiy: unknown key; did you mean identity?',
        ],
      },
      {
        group: deployTo,
        name: 'deploy_to: /',
        lines: (v) => replace(v, 2, 'deploy_to: /'),
        problems: ['3:12: deploy_to: "/" must not be / itself'],
      },
      {
        group: deployTo,
        name: 'deploy_to: "" (empty)',
        lines: (v) => replace(v, 2, 'deploy_to: ""'),
        problems: ['3:12: deploy_to: must not be empty'],
      },
      {
        group: deployTo,
        name: 'deploy_to: srv/shop (relative)',
        lines: (v) => replace(v, 2, 'deploy_to: srv/shop'),
        problems: ['3:12: deploy_to: "srv/shop" must be an absolute path'],
      },
      {
        group: deployTo,
        name: 'deploy_to: /srv/../etc',
        lines: (v) => replace(v, 2, 'deploy_to: /srv/../etc'),
        problems: ['3:12: deploy_to: "/srv/../etc" must not contain .. segments'],
      },
      {
        group: deployTo,
        name: "a host's own deploy_to: /usr",
        lines: (v) =>
          replace(v, 3, `hosts: [{ deploy_to: /usr, name: web1, ssh: "deploy@127.0.0.1:${listener.port}" }]`),
        problems: [
          '4:22: hosts[0].deploy_to: "/usr" is a system directory: use a directory of its own, such as /srv/APP',
        ],
      },
      {
        group: deployTo,
        name: 'deploy_to: /etc',
        lines: (v) => replace(v, 2, 'deploy_to: /etc'),
        problems: [
          '3:12: deploy_to: "/etc" is a system directory: use a directory of its own, such as /srv/APP',
        ],
      },
      {
        group: deployTo,
        name: 'deploy_to: /srv//shop/ (not normalised)',
        lines: (v) => replace(v, 2, 'deploy_to: /srv//shop/'),
        problems: [
          '3:12: deploy_to: "/srv//shop/" must be normalised: no //, no /./ and no trailing /; write /srv/shop',
        ],
      },
      {
        group: deployTo,
        name: 'deploy_to with a newline',
        lines: (v) => replace(v, 2, 'deploy_to: "/srv/shop\\n/etc"'),
        problems: [
          '3:12: deploy_to: "/srv/shop\\n/etc" must not contain control characters such as newlines',
        ],
      },
      {
        group: deployTo,
        name: 'deploy_to: ${DEPLOY_ROOT} set to /',
        lines: (v) => replace(v, 2, 'deploy_to: ${DEPLOY_ROOT}'),
        env: { DEPLOY_ROOT: '/' },
        problems: ['3:12: deploy_to: "${DEPLOY_ROOT}" (expanded) must not be / itself'],
      },
    ]

    for (const entry of cases) {
      it(`refuses ${entry.name} with exit 3, every problem at once, no connection`, async () => {
        await writeFile(
          setup.ws.config,
          entry
            .lines(valid())
            .map((line) => `${line}\n`)
            .join(''),
        )
        const before = listener.connections()
        // With a key, the valid config gets as far as the handshake: the control case shows it.
        const env = { DEPLOYER_SSH_IDENTITY: setup.sshd.clientKeyPath, ...entry.env }
        const [plain, json] = await Promise.all([
          deployer(['release'], env),
          deployer(['release', '--json'], env),
        ])
        const count = entry.problems.length
        expect(plain.code, plain.stderr).to.equal(ExitCode.config)
        expect(plain.stdout).to.equal('')
        expect(errorLine(plain)).to.equal(`${setup.ws.config} has ${count} problem${count === 1 ? '' : 's'}:`)
        const listed = plain.stderr.split('\n').filter((line) => line.startsWith(`  ${setup.ws.config}:`))
        expect(listed).to.deep.equal(entry.problems.map((problem) => `  ${setup.ws.config}:${problem}`))
        expect(json.code).to.equal(ExitCode.config)
        const error = parseJson<ReleaseJson>(json).error
        expect(error?.exitCode).to.equal(ExitCode.config)
        expect(plain.stderr).to.contain(error?.message)
        expect(listener.connections()).to.equal(before)
        expect(await exists(join(setup.ws.dir, 'srv', 'fuzz'))).to.equal(false)
        await recordCase({
          kind: 'input',
          group: entry.group,
          name: entry.name,
          expected: 'exit 3, every problem with file:line:col, no connection',
          observed: `exit 3 (also with --json); ${count} problem${count === 1 ? '' : 's'}, the first \`deployer.yml:${entry.problems[0]}\`; 0 connections, nothing created`,
        })
      })
    }

    it('refuses a config file that is missing or a directory', async () => {
      for (const [what, config, message] of [
        [
          'missing',
          join(setup.ws.dir, 'nope.yml'),
          `There is no config file at ${join(setup.ws.dir, 'nope.yml')}.`,
        ],
        ['a directory', setup.ws.source, `Cannot read the config file ${setup.ws.source} (EISDIR).`],
      ] as const) {
        const result = await runCli(['release', '--config', config])
        expect(result.code, result.stderr).to.equal(ExitCode.config)
        expect(errorLine(result)).to.equal(message)
        await recordCase({
          kind: 'input',
          group: syntax,
          name: `--config names a file that is ${what}`,
          expected: 'exit 3 with the path',
          observed: `exit 3, \`${tidy(message)}\``,
        })
      }
    })
  })
})
