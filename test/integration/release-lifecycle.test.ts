import { type ChildProcess, spawn } from 'node:child_process'
import { generateKeyPairSync } from 'node:crypto'
import { readFile, readlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { expect } from 'chai'
import { ExitCode } from '../../src/errors.js'
import type { HostReleases } from '../../src/fleet/list.js'
import { parseJson, runCli } from '../support/cli.js'
import {
  type ConfigOptions,
  DEPLOY_USER,
  listDir,
  snapshotTree,
  userIds,
  type Workspace,
  writeApp,
  writeConfig,
} from '../support/fixture.js'
import type { TestSshd } from '../support/sshd.js'
import { useSshdWorkspace } from '../support/suite.js'
import { waitFor } from '../support/wait.js'

/**
 * Every case runs over the built-in SSH client; the ones that exercise the transport (upload through
 * stdin, exit codes, the lock, guard scripts, host key and connection errors) run over the OpenSSH
 * client too, and the rest (pure CLI checks, plans) only once, to keep the suite's time down.
 */
for (const client of ['builtin', 'openssh'] as const)
  describe(`release lifecycle over a real sshd (${client} ssh client)`, function () {
    this.timeout(120_000)
    /** Declares a case that only needs to run once, on the built-in client. */
    const onceIt = (title: string, fn: () => Promise<void>) => {
      if (client === 'builtin') it(title, fn)
    }
    const configure = (options: ConfigOptions = {}) => writeConfig(ws, sshd, { client, ...options })
    let sshd: TestSshd
    let ws: Workspace
    const started: ChildProcess[] = []

    const deployer = (...args: string[]) => runCli([...args, '--config', ws.config])
    const current = async () => readlink(join(ws.deployTo, 'current'))

    async function releaseOk(...args: string[]) {
      const result = await deployer('release', ...args)
      expect(result.code, `release failed:\n${result.stderr}`).to.equal(0)
      return result
    }

    const setup = useSshdWorkspace({ install: 'test -f config.ru && echo installed > .installed', client })
    beforeEach(async () => {
      ;({ sshd, ws } = setup)
    })
    afterEach(async () => {
      for (const child of started.splice(0)) if (child.exitCode === null) child.kill('SIGKILL')
    })

    it('publishes three releases in a row, each complete, with current on the last', async () => {
      for (const version of ['v1', 'v2', 'v3']) {
        await writeApp(ws.source, version)
        await releaseOk()
      }
      expect(await listDir(join(ws.deployTo, 'releases'))).to.deep.equal(['1', '2', '3'])
      expect(await current()).to.equal('releases/3')
      const release = join(ws.deployTo, 'releases', '3')
      expect(await readFile(join(release, 'RELEASE'), 'utf8')).to.equal('3\n')
      expect(await readFile(join(release, 'app', 'version.rb'), 'utf8')).to.contain('v3')
      expect(await readFile(join(release, '.installed'), 'utf8')).to.equal('installed\n')
      expect(await readlink(join(release, 'version-link.rb'))).to.equal('app/version.rb')
      expect(await listDir(release)).to.not.include('log')
      const manifest = JSON.parse(await readFile(join(release, '.deployer', 'manifest.json'), 'utf8'))
      expect(manifest.release).to.equal(3)
      expect(manifest.files.map((file: { path: string }) => file.path)).to.include('bin/start')
      expect((await readFile(join(release, 'REVISION'), 'utf8')).trim()).to.equal(manifest.revision)
      const history = (await readFile(join(ws.deployTo, '.deployer', 'history.jsonl'), 'utf8'))
        .trim()
        .split('\n')
      expect(history.map((line) => JSON.parse(line).release)).to.deep.equal([1, 2, 3])
      expect(await listDir(join(ws.deployTo, '.deployer'))).to.not.include('lock')

      const listed = parseJson<{ hosts: HostReleases[] }>(await deployer('releases', '--json'))
      expect(
        listed.hosts[0]?.releases.map((entry) => [entry.number, entry.state, entry.current]),
      ).to.deep.equal([
        [1, 'previous', false],
        [2, 'previous', false],
        [3, 'live', true],
      ])
    })

    onceIt(
      'never modifies a published release: every byte and inode of release 1 survives release 2',
      async () => {
        await configure({
          install: 'echo installed > .installed',
          shared: { dirs: ['log', 'tmp/pids'] },
        })
        await releaseOk()
        const before = await snapshotTree(join(ws.deployTo, 'releases', '1'))
        await writeApp(ws.source, 'v2')
        await releaseOk()
        expect(await snapshotTree(join(ws.deployTo, 'releases', '1'))).to.deep.equal(before)
      },
    )

    it('rolls back to the previous release, prints the undo command, and rolls forward with it', async () => {
      await releaseOk()
      await writeApp(ws.source, 'v2')
      await releaseOk()
      const back = await deployer('rollback')
      expect(back.code, back.stderr).to.equal(0)
      expect(await current()).to.equal('releases/1')
      const undo = /Undo with: deployer (rollback --to 2) --config/.exec(back.stdout)
      expect(undo, back.stdout).to.not.equal(null)
      const forward = await deployer('rollback', '--to', '2')
      expect(forward.code, forward.stderr).to.equal(0)
      expect(await current()).to.equal('releases/2')
      const events = (await readFile(join(ws.deployTo, '.deployer', 'history.jsonl'), 'utf8'))
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line))
        .filter((event) => event.event === 'rollback')
      expect(events.map((event) => [event.from, event.to])).to.deep.equal([
        [2, 1],
        [1, 2],
      ])
    })

    onceIt('refuses a rollback to a release that does not exist, changing nothing', async () => {
      await releaseOk()
      const result = await deployer('rollback', '--to', '9')
      expect(result.code).to.equal(ExitCode.usage)
      expect(result.stderr).to.contain('Host it: release 9 does not exist')
      expect(await current()).to.equal('releases/1')
    })

    it('leaves current untouched when the install fails, and the next release gets a new number', async () => {
      await releaseOk()
      await configure({ install: 'echo "bundle: could not find gem foo" >&2; exit 3' })
      await writeApp(ws.source, 'v2')
      const failed = await deployer('release')
      expect(failed.code).to.equal(ExitCode.install)
      expect(failed.stderr).to.contain('could not find gem foo')
      expect(failed.stderr).to.contain('Host it:')
      expect(await current()).to.equal('releases/1')
      expect(await listDir(join(ws.deployTo, 'releases'))).to.deep.equal(['1'])

      await configure({ install: 'true' })
      await releaseOk()
      expect(await listDir(join(ws.deployTo, 'releases'))).to.deep.equal(['1', '3'])
      expect(await current()).to.equal('releases/3')
    })

    it('keeps a release a live process uses as its cwd through prune, and removes it once the process ends', async () => {
      await releaseOk()
      await writeApp(ws.source, 'v2')
      await releaseOk()
      await writeApp(ws.source, 'v3')
      await releaseOk()
      const { uid, gid } = await userIds(DEPLOY_USER)
      const sleeper = spawn('sleep', ['600'], {
        cwd: join(ws.deployTo, 'releases', '1'),
        uid,
        gid,
        stdio: 'ignore',
      })
      started.push(sleeper)
      await waitFor(
        async () => (await readlink(`/proc/${sleeper.pid}/cwd`).catch(() => '')).endsWith('/releases/1'),
        {
          what: 'the sleeper to run in release 1',
        },
      )

      const pruned = await deployer('prune', '--keep', '1')
      expect(pruned.code, pruned.stderr).to.equal(0)
      expect(pruned.stdout).to.match(
        new RegExp(`kept 1: in use by pid ${sleeper.pid} \\(sleep 600\\s*\\) via cwd`),
      )
      expect(await listDir(join(ws.deployTo, 'releases'))).to.deep.equal(['1', '3'])

      sleeper.kill('SIGTERM')
      await waitFor(() => sleeper.exitCode !== null || sleeper.signalCode !== null, {
        what: 'the sleeper to exit',
      })
      const again = await deployer('prune', '--keep', '1')
      expect(again.code, again.stderr).to.equal(0)
      expect(await listDir(join(ws.deployTo, 'releases'))).to.deep.equal(['3'])
      expect(await current()).to.equal('releases/3')
    })

    onceIt('refuses prune --keep 0', async () => {
      await releaseOk()
      const result = await deployer('prune', '--keep', '0')
      expect(result.code).to.equal(ExitCode.usage)
      expect(result.stderr).to.contain('--keep must be at least 1')
      expect(await listDir(join(ws.deployTo, 'releases'))).to.deep.equal(['1'])
    })

    it('refuses a host whose key does not match known_hosts, and changes nothing on it', async () => {
      await releaseOk()
      const before = await snapshotTree(ws.deployTo)
      const impostor = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'der' })
      // An ssh-ed25519 blob: string "ssh-ed25519" then the 32-byte key (the last 32 bytes of the SPKI DER).
      const name = Buffer.from('ssh-ed25519')
      const key = impostor.subarray(impostor.length - 32)
      const blob = Buffer.concat([u32(name.length), name, u32(key.length), key])
      const knownHosts = join(ws.dir, 'known_hosts_wrong')
      const original = `[127.0.0.1]:${sshd.port} ssh-ed25519 ${blob.toString('base64')}\n`
      await writeFile(knownHosts, original)
      await configure({ knownHosts, hostKey: 'accept-new' })
      await writeApp(ws.source, 'v2')

      const result = await deployer('release')
      expect(result.code).to.equal(ExitCode.hostKey)
      expect(result.stderr).to.contain('Host it')
      expect(result.stderr).to.match(/SHA256:[A-Za-z0-9+/]{43}/)
      expect(await readFile(knownHosts, 'utf8')).to.equal(original)
      expect(await snapshotTree(ws.deployTo)).to.deep.equal(before)
    })

    it('reports an unreachable host clearly and exits with the connection code', async () => {
      await configure({ port: 1 })
      const result = await deployer('release')
      expect(result.code).to.equal(ExitCode.connection)
      expect(result.stderr).to.contain('Host it')
      expect(result.stderr).to.match(/Hint: /)
    })

    onceIt('prints the plan with --dry-run and changes nothing', async () => {
      await releaseOk()
      const before = await snapshotTree(ws.deployTo)
      const result = await deployer('release', '--dry-run')
      expect(result.code, result.stderr).to.equal(0)
      expect(result.stdout).to.contain('Plan: release 2 of itest').and.contain('nothing was changed')
      expect(await snapshotTree(ws.deployTo)).to.deep.equal(before)
    })

    it('prints one JSON result on stdout with --json', async () => {
      const result = await deployer('release', '--json')
      expect(result.code, result.stderr).to.equal(0)
      const json = parseJson<{ ok: boolean; release: number; hosts: { host: string; status: string }[] }>(
        result,
      )
      expect(json).to.include({ ok: true, release: 1 })
      expect(json.hosts).to.deep.equal([json.hosts[0]])
      expect(json.hosts[0]).to.include({ host: 'it', status: 'released' })
    })
  })

function u32(value: number): Buffer {
  const buffer = Buffer.alloc(4)
  buffer.writeUInt32BE(value)
  return buffer
}
