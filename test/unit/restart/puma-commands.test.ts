import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, readFile, realpath, rm, symlink, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { expect } from 'chai'
import * as puma from '../../../src/restart/puma-commands.js'
import { LocalTransport } from '../../../src/transport/local.js'
import { waitFor } from '../../support/wait.js'

/*
 * Every Puma command builder run through /bin/sh on this machine (LocalTransport wraps them as the SSH
 * transports do), in a directory whose name would break an unquoted shell word. Puma itself is not
 * needed: what is checked is that each command parses, quotes its values and prints what its parser reads.
 */
describe('Puma command builders (run through /bin/sh)', () => {
  const local = new LocalTransport()
  let dir: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), `deployer-puma-'$(touch PWNED)" x-`))
  })
  after(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  const builders: [string, () => string][] = [
    ['signalMasterCommand', () => puma.signalMasterCommand(join(dir, 'puma.pid'), 'USR1')],
    ['startCommand', () => puma.startCommand(join(dir, 'current'), 'bundle exec puma', join(dir, 'l.log'))],
    ['isAliveCommand', () => puma.isAliveCommand(1)],
    ['fullRestartCommand', () => puma.fullRestartCommand(join(dir, 'current'), 'systemctl restart x')],
    ['tailLogCommand', () => puma.tailLogCommand([join(dir, 'a.log'), join(dir, 'b.log')], 5)],
    ['envFilesHashCommand', () => puma.envFilesHashCommand([join(dir, '.env')])],
    ['readFileCommand', () => puma.readFileCommand(join(dir, 'REVISION'), { quiet: true })],
    ['realPathCommand', () => puma.realPathCommand(join(dir, 'current'))],
    ['healthCheckCommand', () => puma.healthCheckCommand('http://127.0.0.1:1/up?a=1&b=$(x)', 3)],
  ]
  for (const [name, build] of builders) {
    it(`${name} parses as sh`, async () => {
      await promisify(execFile)('sh', ['-n', '-c', build()])
    })
  }

  it('signals no one when the pidfile is missing or names a process that is not Puma', async () => {
    const missing = await local.exec(puma.signalMasterCommand(join(dir, 'none.pid'), 'TERM'))
    expect(missing.code).to.equal(3)
    expect(missing.stderr).to.contain(`no pidfile at ${join(dir, 'none.pid')}`)
    const pidfile = join(dir, 'node.pid')
    await writeFile(pidfile, `${process.pid}\n`)
    const notPuma = await local.exec(puma.signalMasterCommand(pidfile, 'TERM'))
    expect(notPuma.code).to.equal(3)
    expect(notPuma.stderr).to.contain(`pid ${process.pid} from the pidfile is not a running Puma`)
  })

  it('tells a live pid from a gone one', async () => {
    expect((await local.exec(puma.isAliveCommand(process.pid))).code).to.equal(0)
    const child = execFile('true')
    await new Promise((resolve) => child.on('exit', resolve))
    expect((await local.exec(puma.isAliveCommand(child.pid ?? 0))).code).to.not.equal(0)
  })

  it('runs the full restart in the current path with PWD set to it', async () => {
    const current = join(dir, 'current')
    await mkdir(current, { recursive: true })
    const result = await local.exec(puma.fullRestartCommand(current, 'echo "$PWD"; pwd'))
    expect(result.stdout.split('\n').slice(0, 2)).to.deep.equal([current, current])
  })

  it('starts the command detached in the current path, logging to the start log', async () => {
    const current = join(dir, 'current')
    const log = join(dir, 'log', 'start.log')
    await mkdir(current, { recursive: true })
    const result = await local.exec(puma.startCommand(current, 'echo "booted in $PWD"', log))
    expect(result.stdout.trim()).to.equal('started')
    await waitFor(async () => (await readFile(log, 'utf8').catch(() => '')).includes('booted in'), {
      timeoutMs: 30_000,
      what: 'the start log to show the command ran',
    })
    expect(await readFile(log, 'utf8')).to.contain(`booted in ${current}`)
  })

  it('reads a file, quietly when asked, and resolves a symlinked directory to its real path', async () => {
    await mkdir(join(dir, 'releases', '3'), { recursive: true })
    await writeFile(join(dir, 'releases', '3', 'REVISION'), 'abc123\n')
    await symlink('releases/3', join(dir, 'now'))
    expect((await local.exec(puma.readFileCommand(join(dir, 'now', 'REVISION')))).stdout).to.equal('abc123\n')
    const loud = await local.exec(puma.readFileCommand(join(dir, 'none')))
    const quiet = await local.exec(puma.readFileCommand(join(dir, 'none'), { quiet: true }))
    expect([loud.code !== 0, loud.stderr !== '']).to.deep.equal([true, true])
    expect([quiet.code !== 0, quiet.stderr]).to.deep.equal([true, ''])
    const real = await local.exec(puma.realPathCommand(join(dir, 'now')))
    expect(real.stdout.trim()).to.equal(join(await realpath(dir), 'releases', '3'))
  })

  it('tails only the logs that exist, each under its name', async () => {
    await writeFile(join(dir, 'a.log'), 'one\ntwo\nthree\n')
    const result = await local.exec(puma.tailLogCommand([join(dir, 'a.log'), join(dir, 'b.log')], 2))
    expect(result.stdout).to.equal(`== ${join(dir, 'a.log')}\ntwo\nthree\n`)
  })

  it('hashes env files without printing them, and tells a change and a missing file apart', async () => {
    const env = join(dir, '.env')
    const hash = async () => (await local.exec(puma.envFilesHashCommand([env]))).stdout.trim()
    const missing = await hash()
    await writeFile(env, 'SECRET=1\n')
    const first = await hash()
    await writeFile(env, 'SECRET=2\n')
    const second = await hash()
    for (const value of [missing, first, second]) expect(value).to.match(/^[0-9a-f]{64}$/)
    expect(new Set([missing, first, second]).size).to.equal(3)
  })

  describe('health check', () => {
    let server: Server
    let port: number
    before(async () => {
      server = createServer((request, response) => {
        response.writeHead(request.url === '/up' ? 200 : 503)
        response.end(request.url === '/up' ? 'release 7 ok' : 'down')
      })
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
      port = (server.address() as AddressInfo).port
    })
    after(async () => {
      await new Promise((resolve) => server.close(resolve))
    })

    const cases: [string, number, string][] = [
      ['/up', 200, 'release 7 ok'],
      ['/other', 503, 'down'],
    ]
    for (const [path, status, body] of cases) {
      it(`reads HTTP ${status} and the body from ${path}`, async () => {
        const output = await local.exec(puma.healthCheckCommand(`http://127.0.0.1:${port}${path}`, 10))
        expect(puma.parseHealth(output.stdout)).to.deep.equal({ status, body })
      })
    }

    it('reads a refused connection as status 0 with the error', async () => {
      const closed = createServer()
      await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
      const closedPort = (closed.address() as AddressInfo).port
      await new Promise((resolve) => closed.close(resolve))
      const output = await local.exec(puma.healthCheckCommand(`http://127.0.0.1:${closedPort}/up`, 10))
      const health = puma.parseHealth(output.stdout)
      expect(health.status).to.equal(0)
      expect(health.body).to.match(/ECONNREFUSED|Connection refused/)
    })
  })

  it('leaves nothing outside its directory', async () => {
    const { readdir } = await import('node:fs/promises')
    expect(await readdir(process.cwd())).to.not.include('PWNED')
  })
})
