import { mkdir, mkdtemp, readlink, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect } from 'chai'
import { parseConfig } from '../../../src/config/load.js'
import { ConnectionError, type DeployerError, ExitCode } from '../../../src/errors.js'
import { runRelease } from '../../../src/fleet/release.js'
import { silentReporter } from '../../../src/progress.js'
import { LocalTransport } from '../../../src/transport/local.js'
import type { Transport } from '../../../src/transport/transport.js'
import { rejectionOf } from '../../support/rejection.js'

/** A host that records every command and answers each with success and no output. */
function recordingHost(connect: () => Promise<void> = async () => {}): {
  open: () => Transport
  commands: string[]
} {
  const commands: string[] = []
  const transport: Transport = {
    name: 'web1',
    connect,
    async exec(command) {
      commands.push(command)
      return { code: 0, stdout: '', stderr: '' }
    },
    async close() {},
  }
  return { open: () => transport, commands }
}

/**
 * A scratch root with an empty `source/` for each test; the source's hash cache goes there too, not
 * to the home of whoever runs the tests. Returns a getter for the root.
 */
function useScratchRoot(prefix: string): () => string {
  let root = ''
  let cacheHome: string | undefined
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), prefix))
    await mkdir(join(root, 'source'))
    cacheHome = process.env.XDG_CACHE_HOME
    process.env.XDG_CACHE_HOME = join(root, 'cache')
  })
  afterEach(async () => {
    if (cacheHome === undefined) delete process.env.XDG_CACHE_HOME
    else process.env.XDG_CACHE_HOME = cacheHome
    await rm(root, { recursive: true, force: true })
  })
  return () => root
}

describe('runRelease before the lock', () => {
  const scratch = useScratchRoot('deployer-release-')
  let root: string
  beforeEach(() => {
    root = scratch()
  })

  const release = (open: () => Transport) =>
    runRelease(
      parseConfig(
        `app: shop\nsource: source\ndeploy_to: /srv/shop\nhosts: [deploy@web1]\n`,
        join(root, 'deployer.yml'),
        {},
        root,
      ),
      {
        dryRun: false,
        reporter: silentReporter,
        actor: { user: 'deploy', machine: 'ci', pid: 1 },
        open,
      },
    )

  const unusable: [string, () => Promise<unknown>][] = [
    [
      'a symlink out of it',
      async () => {
        await writeFile(join(root, 'source', 'config.ru'), 'run App\n')
        await symlink('/etc/passwd', join(root, 'source', 'passwd'))
      },
    ],
    ['nothing but an empty directory', () => mkdir(join(root, 'source', 'public'))],
  ]
  for (const [what, make] of unusable) {
    it(`refuses a source with ${what} before any command reaches a host`, async () => {
      await make()
      const host = recordingHost()
      const error = await rejectionOf<DeployerError>(release(host.open))
      expect(error.exitCode).to.equal(ExitCode.config)
      expect(host.commands).to.deep.equal([])
    })
  }

  it('reports a host it cannot connect to without sending it a command', async () => {
    await writeFile(join(root, 'source', 'config.ru'), 'run App\n')
    const host = recordingHost(async () => {
      throw new ConnectionError('web1', 'nothing is listening on web1:22.', 'Check the host.')
    })
    const error = await rejectionOf<DeployerError>(release(host.open))
    expect(error.exitCode).to.equal(ExitCode.connection)
    expect(host.commands).to.deep.equal([])
  })
})

describe('runRelease when the connection drops during the publish', () => {
  const scratch = useScratchRoot('deployer-publish-drop-')
  let root: string
  beforeEach(async () => {
    root = scratch()
    await mkdir(join(root, 'srv'))
    await writeFile(join(root, 'source', 'app.rb'), 'v1\n')
  })

  it('looks again, counts a host whose publish finished as live, and rolls it back with the fleet', async () => {
    const config = parseConfig(
      `app: shop\nsource: source\ndeploy_to: ${join(root, 'srv')}\nhosts: [local]\n`,
      join(root, 'deployer.yml'),
      {},
      root,
    )
    const options = {
      dryRun: false,
      reporter: silentReporter,
      actor: { user: 'deploy', machine: 'ci', pid: 1 },
    }
    await runRelease(config, options)
    await writeFile(join(root, 'source', 'app.rb'), 'v2\n')
    // The publish script runs to its end on the host, but its answer is lost with the connection.
    const local = new LocalTransport()
    const dropping: Transport = {
      name: 'local',
      async exec(command, execOptions) {
        const result = await local.exec(command, execOptions)
        if (command.includes("trap '' HUP PIPE")) return { code: 255, stdout: '', stderr: 'connection lost' }
        return result
      },
      async close() {},
    }
    const result = await runRelease(config, { ...options, open: () => dropping })
    expect(result.hosts[0]?.status).to.equal('rolled-back')
    expect(result.error?.message).to.contain('Rolled back: local.')
    expect(await readlink(join(root, 'srv', 'current'))).to.equal('releases/1')
  })
})
