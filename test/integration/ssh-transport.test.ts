import { execFile } from 'node:child_process'
import { generateKeyPairSync } from 'node:crypto'
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { PassThrough, Readable } from 'node:stream'
import { promisify } from 'node:util'
import { expect } from 'chai'
import type { HostConfig } from '../../src/config/types.js'
import { ConnectionError, DeployerError, ExitCode, HostKeyError } from '../../src/errors.js'
import { openTransport, quote, type Transport } from '../../src/transport/index.js'
import { fingerprint, lookupHostKeys } from '../../src/transport/known-hosts.js'
import { LocalTransport } from '../../src/transport/local.js'
import { OpenSshTransport } from '../../src/transport/openssh.js'
import { SshTransport } from '../../src/transport/ssh.js'
import { rejectionOf } from '../support/rejection.js'
import { findFreePort, sessionProcesses, startSshd, type TestSshd } from '../support/sshd.js'
import { waitFor } from '../support/wait.js'

const run = promisify(execFile)

function blobOf(publicKey: string): Buffer {
  return Buffer.from(publicKey.split(' ')[1]!, 'base64')
}

/**
 * The two SSH clients behind `ssh.client`, and where they differ by nature: every case below runs on
 * both, so they report the same results and the same errors.
 */
const CLIENTS = [
  {
    client: 'builtin',
    make: (host: HostConfig): Transport => new SshTransport(host),
    killedBySignal: { code: null, signal: 'SIGKILL' },
    // ssh2 hands deployer the key, so its messages carry fingerprints and known_hosts lines.
    namesOfferedFingerprint: true,
    namesRevokedLine: true,
  },
  {
    client: 'openssh',
    make: (host: HostConfig): Transport =>
      new OpenSshTransport({ ...host, ssh: { ...host.ssh, client: 'openssh' } }),
    // The OpenSSH client drops the exit-signal message and exits 255.
    killedBySignal: { code: 255, signal: undefined },
    namesOfferedFingerprint: false,
    namesRevokedLine: false,
  },
] as const

for (const { client, make, killedBySignal, namesOfferedFingerprint, namesRevokedLine } of CLIENTS)
  describe(`the ${client} SSH transport against a private sshd`, function () {
    this.timeout(60_000)
    let sshd: TestSshd
    let scratch: string
    const transports: Transport[] = []

    /** A transport closed after each test, so no test leaks a connection. */
    function transportFor(
      overrides: Parameters<TestSshd['hostConfig']>[0] = { deployTo: '/srv/app' },
    ): Transport {
      const transport = make(sshd.hostConfig(overrides))
      transports.push(transport)
      return transport
    }

    before(async () => {
      sshd = await startSshd()
    })
    after(async () => {
      await sshd?.stop()
    })
    beforeEach(async () => {
      scratch = await mkdtemp(join(tmpdir(), 'deployer-ssh-test-'))
    })
    afterEach(async () => {
      await Promise.all(transports.splice(0).map((transport) => transport.close()))
      await rm(scratch, { recursive: true, force: true })
    })

    describe('exec', () => {
      it('returns stdout, stderr and the exit code without throwing on failure', async () => {
        const result = await transportFor().exec('echo out; echo err >&2; exit 3')
        expect(result).to.deep.include({ code: 3, stdout: 'out\n', stderr: 'err\n' })
      })

      it(`reports a command killed by a signal ${client === 'builtin' ? 'with a null code and the signal name' : 'as exit 255 (OpenSSH reports no signals)'}`, async () => {
        const result = await transportFor().exec('kill -KILL $$')
        expect(result.code).to.equal(killedBySignal.code)
        expect(result.signal).to.equal(killedBySignal.signal)
      })

      it('echoes a quoted hostile value back byte for byte', async () => {
        const witness = join(scratch, 'injected')
        const value = `it's "a" $(touch ${witness}) \`touch ${witness}\`; touch ${witness} \n second line \\ * ? ~ ünïcødé`
        const result = await transportFor().exec(`printf %s ${quote(value)}`)
        expect(result.stdout).to.equal(value)
        expect(result.code).to.equal(0)
        expect(await stat(witness).catch(() => undefined)).to.equal(undefined)
      })

      it('streams about 5 MB of stdin from a Readable into the command', async () => {
        const chunk = Buffer.alloc(64 * 1024, 'x')
        const chunks = 80
        const input = Readable.from(
          (function* () {
            for (let index = 0; index < chunks; index++) yield chunk
          })(),
        )
        const result = await transportFor().exec('wc -c', { stdin: input })
        expect(result.stdout.trim()).to.equal(String(chunk.length * chunks))
      })

      it('passes a Buffer or a string as stdin and closes it', async () => {
        const transport = transportFor()
        expect((await transport.exec('cat', { stdin: Buffer.from('bytes') })).stdout).to.equal('bytes')
        expect((await transport.exec('cat', { stdin: 'text\n' })).stdout).to.equal('text\n')
        expect((await transport.exec('cat')).stdout).to.equal('')
      })

      it('finishes a command that exits without reading its input', async () => {
        const result = await transportFor().exec('exit 0', {
          stdin: Readable.from([Buffer.alloc(8 * 1024 * 1024)]),
        })
        expect(result.code).to.equal(0)
      })

      it('calls onOutput with each chunk of both streams', async () => {
        const seen: string[] = []
        await transportFor().exec('echo one; echo two >&2', {
          onOutput: (chunk, stream) => seen.push(`${stream}:${chunk}`),
        })
        expect(seen.join('')).to.include('stdout:one\n').and.to.include('stderr:two\n')
      })

      it('reuses one connection for sequential and parallel commands', async () => {
        const transport = transportFor()
        const sourcePort = async () => (await transport.exec('echo $SSH_CONNECTION')).stdout.split(' ')[1]
        const sequential: Array<string | undefined> = []
        for (let index = 0; index < 10; index++) sequential.push(await sourcePort())
        const parallel = await Promise.all(Array.from({ length: 20 }, sourcePort))
        expect(new Set([...sequential, ...parallel]).size).to.equal(1)
        expect(sequential[0]).to.match(/^\d+$/)
      })

      it('opens the connection eagerly with connect()', async () => {
        const transport = transportFor()
        await transport.connect!()
        expect((await transport.exec('echo ok')).stdout).to.equal('ok\n')
      })

      it('rejects with an AbortError when aborted and keeps the connection usable', async () => {
        const transport = transportFor()
        const controller = new AbortController()
        const running = transport.exec('echo started; sleep 10', {
          signal: controller.signal,
          onOutput: (chunk) => {
            if (chunk.includes('started')) controller.abort()
          },
        })
        const error = await rejectionOf(running)
        expect(error.name).to.equal('AbortError')
        expect((await transport.exec('echo still usable')).stdout).to.equal('still usable\n')
      })

      it('rejects at once when the signal is already aborted', async () => {
        const error = await rejectionOf(transportFor().exec('true', { signal: AbortSignal.abort() }))
        expect(error.name).to.equal('AbortError')
      })

      it('rejects with a ConnectionError when the connection drops mid-command, then reconnects', async () => {
        const transport = transportFor()
        // The command's parent is the sshd process serving this connection: killing it drops the connection.
        const error = await rejectionOf(transport.exec('echo started; kill -9 $PPID; sleep 10'))
        expect(error).to.be.instanceOf(ConnectionError)
        expect(error.message).to.match(/dropped while running/)
        expect((await transport.exec('echo back')).stdout).to.equal('back\n')
      })

      it('closes idempotently and reconnects on the next command', async () => {
        const transport = transportFor()
        await transport.exec('true')
        await transport.close()
        await transport.close()
        expect((await transport.exec('echo again')).stdout).to.equal('again\n')
      })
    })

    describe('host keys', () => {
      it(`refuses an unknown host in strict mode, naming host, key type${namesOfferedFingerprint ? ' and fingerprint' : ''}`, async () => {
        const knownHosts = join(scratch, 'known_hosts')
        await writeFile(knownHosts, '')
        const error = await rejectionOf(
          transportFor({ deployTo: '/srv/app', ssh: { knownHosts } }).exec('true'),
        )
        expect(error).to.be.instanceOf(HostKeyError)
        expect((error as HostKeyError).exitCode).to.equal(ExitCode.hostKey)
        expect(error.message).to.include(`[127.0.0.1]:${sshd.port}`)
        expect(error.message).to.match(/ssh-ed25519|ED25519/)
        if (namesOfferedFingerprint) expect(error.message).to.include(fingerprint(blobOf(sshd.hostPublicKey)))
        expect((error as HostKeyError).hint).to.include(`ssh-keyscan -p ${sshd.port} 127.0.0.1`)
      })

      it('tries again on the next command after a refused connection', async () => {
        const knownHosts = join(scratch, 'known_hosts')
        await writeFile(knownHosts, '')
        const transport = transportFor({ deployTo: '/srv/app', ssh: { knownHosts } })
        expect(await rejectionOf(transport.exec('true'))).to.be.instanceOf(HostKeyError)
        await writeFile(knownHosts, await readFile(sshd.knownHostsPath))
        expect((await transport.exec('echo trusted')).stdout).to.equal('trusted\n')
      })

      // deployer's own fingerprint function is what the built-in client's messages use.
      if (client === 'builtin') {
        it('reports the same fingerprint as ssh-keygen -l', async () => {
          const { stdout } = await run('ssh-keygen', ['-l', '-f', sshd.knownHostsPath])
          expect(stdout).to.include(fingerprint(blobOf(sshd.hostPublicKey)))
        })
      }

      it('records a new host with accept-new (creating file and directory), then passes strict mode', async () => {
        const knownHosts = join(scratch, 'new-dir', 'known_hosts')
        const first = transportFor({ deployTo: '/srv/app', ssh: { knownHosts, hostKey: 'accept-new' } })
        expect((await first.exec('echo hi')).stdout).to.equal('hi\n')
        // One line for this host and key; OpenSSH hashes the name where ssh_config says HashKnownHosts (Debian's does).
        const recorded = await readFile(knownHosts, 'utf8')
        expect(recorded.split('\n').filter(Boolean)).to.have.length(1)
        const entries = lookupHostKeys(recorded, '127.0.0.1', sshd.port)
        expect(entries.map((entry) => `${entry.keyType} ${entry.key.toString('base64')}`)).to.deep.equal([
          sshd.hostPublicKey,
        ])
        if (client === 'builtin') {
          expect(recorded).to.equal(`[127.0.0.1]:${sshd.port} ${sshd.hostPublicKey}\n`)
          // What `deployer check` reports as recorded.
          expect((first as SshTransport).recordedHostKeys).to.deep.equal([
            `[127.0.0.1]:${sshd.port} ${sshd.hostPublicKey.split(' ')[0]}`,
          ])
        }
        expect((await stat(knownHosts)).mode & 0o777).to.equal(0o600)
        expect((await stat(join(scratch, 'new-dir'))).mode & 0o777).to.equal(0o700)

        const second = transportFor({ deployTo: '/srv/app', ssh: { knownHosts, hostKey: 'strict' } })
        expect((await second.exec('echo again')).stdout).to.equal('again\n')
        expect((await readFile(knownHosts, 'utf8')).split('\n').filter(Boolean)).to.have.length(1)
      })

      it('refuses a changed key even with accept-new, naming the file and line, and leaves the file alone', async () => {
        const otherKey = generateKeyPairSync('ed25519').publicKey.export({ format: 'der', type: 'spki' })
        // SPKI DER of an ed25519 key ends with the 32 raw bytes; wrap them in SSH wire format.
        const raw = otherKey.subarray(otherKey.length - 32)
        const type = Buffer.from('ssh-ed25519')
        const blob = Buffer.concat([u32(type.length), type, u32(raw.length), raw])
        const knownHosts = join(scratch, 'known_hosts')
        const content = `# a comment\n[127.0.0.1]:${sshd.port} ssh-ed25519 ${blob.toString('base64')}\n`
        await writeFile(knownHosts, content)

        const error = await rejectionOf(
          transportFor({ deployTo: '/srv/app', ssh: { knownHosts, hostKey: 'accept-new' } }).exec('true'),
        )
        expect(error).to.be.instanceOf(HostKeyError)
        expect(error.message).to.include('has changed')
        expect(error.message).to.include(fingerprint(blobOf(sshd.hostPublicKey)))
        expect(error.message).to.include(`${knownHosts}:2`)
        expect((error as HostKeyError).hint).to.include('ssh-keygen -R')
        expect(await readFile(knownHosts, 'utf8')).to.equal(content)
      })

      it('refuses a key marked @revoked', async () => {
        const knownHosts = join(scratch, 'known_hosts')
        await writeFile(
          knownHosts,
          `${await readFile(sshd.knownHostsPath, 'utf8')}@revoked * ${sshd.hostPublicKey}\n`,
        )
        const error = await rejectionOf(
          transportFor({ deployTo: '/srv/app', ssh: { knownHosts } }).exec('true'),
        )
        expect(error).to.be.instanceOf(HostKeyError)
        expect(error.message).to.include('@revoked').and.to.include(knownHosts)
        if (namesRevokedLine) expect(error.message).to.include(`${knownHosts}:2`)
      })

      it('negotiates the recorded key type when the host has several keys', async () => {
        const multi = await startSshd({ hostKeyTypes: ['ed25519', 'ecdsa'] })
        try {
          const knownHosts = join(scratch, 'known_hosts')
          // Only the ECDSA key is recorded; ssh2 alone would pick ed25519 and see a "changed" key.
          await writeFile(knownHosts, `[127.0.0.1]:${multi.port} ${multi.hostPublicKeys.ecdsa}\n`)
          const transport = make(multi.hostConfig({ deployTo: '/srv/app', ssh: { knownHosts } }))
          try {
            expect((await transport.exec('echo ecdsa')).stdout).to.equal('ecdsa\n')
          } finally {
            await transport.close()
          }
        } finally {
          await multi.stop()
        }
      })
    })

    describe('connection and authentication errors', () => {
      it('reports a closed port as a ConnectionError', async () => {
        const port = await findFreePort()
        const error = await rejectionOf(transportFor({ deployTo: '/srv/app', port }).exec('true'))
        expect(error).to.be.instanceOf(ConnectionError)
        expect((error as ConnectionError).exitCode).to.equal(ExitCode.connection)
        expect(error.message).to.include(`nothing is listening on 127.0.0.1:${port}`)
      })

      it('reports a name that does not resolve', async () => {
        const error = await rejectionOf(
          transportFor({ deployTo: '/srv/app', hostname: 'no-such-host.invalid' }).exec('true'),
        )
        expect(error).to.be.instanceOf(ConnectionError)
        expect(error.message).to.include('no-such-host.invalid does not resolve')
      })

      it('times out on a port that accepts TCP but never speaks SSH', async () => {
        const sockets: Socket[] = []
        const silent: Server = createServer((socket) => sockets.push(socket))
        await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
        const port = (silent.address() as { port: number }).port
        try {
          const error = await rejectionOf(
            transportFor({ deployTo: '/srv/app', port, ssh: { connectTimeout: 1 } }).exec('true'),
          )
          expect(error).to.be.instanceOf(ConnectionError)
          expect(error.message).to.include(`no SSH handshake with 127.0.0.1:${port} within 1 s`)
        } finally {
          for (const socket of sockets) socket.destroy()
          await new Promise((resolve) => silent.close(resolve))
        }
      })

      it('reports a refused key with the user and the key path', async () => {
        const wrongKey = join(scratch, 'wrong_key')
        await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', wrongKey])
        const error = await rejectionOf(
          transportFor({ deployTo: '/srv/app', ssh: { identity: wrongKey } }).exec('true'),
        )
        expect(error).to.be.instanceOf(ConnectionError)
        expect(error.message).to.include(`${sshd.user}@127.0.0.1:${sshd.port} refused the key ${wrongKey}`)
        expect((error as ConnectionError).hint).to.include('authorized_keys')
      })

      // ssh2 takes deployer's key and passphrase; the OpenSSH client finds keys itself (agent, ssh_config,
      // ~/.ssh/id_*) and, in batch mode, never asks for a passphrase.
      if (client === 'builtin') {
        it('uses an encrypted key only with DEPLOYER_SSH_PASSPHRASE', async () => {
          const encrypted = join(scratch, 'encrypted_key')
          await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'sesame', '-f', encrypted])
          await writeFile(join(sshd.dir, 'authorized_keys', sshd.user), await readFile(`${encrypted}.pub`), {
            flag: 'a',
          })
          const saved = process.env.DEPLOYER_SSH_PASSPHRASE
          try {
            delete process.env.DEPLOYER_SSH_PASSPHRASE
            const missing = await rejectionOf(
              transportFor({ deployTo: '/srv/app', ssh: { identity: encrypted } }).exec('true'),
            )
            expect(missing).to.be.instanceOf(ConnectionError)
            expect(missing.message).to.include('is encrypted and DEPLOYER_SSH_PASSPHRASE is not set')

            process.env.DEPLOYER_SSH_PASSPHRASE = 'wrong'
            const wrong = await rejectionOf(
              transportFor({ deployTo: '/srv/app', ssh: { identity: encrypted } }).exec('true'),
            )
            expect(wrong.message).to.include('DEPLOYER_SSH_PASSPHRASE does not decrypt')

            process.env.DEPLOYER_SSH_PASSPHRASE = 'sesame'
            const result = await transportFor({ deployTo: '/srv/app', ssh: { identity: encrypted } }).exec(
              'echo ok',
            )
            expect(result.stdout).to.equal('ok\n')
          } finally {
            if (saved === undefined) delete process.env.DEPLOYER_SSH_PASSPHRASE
            else process.env.DEPLOYER_SSH_PASSPHRASE = saved
          }
        })

        it('asks for credentials when there is neither a key nor an agent', async () => {
          const saved = process.env.SSH_AUTH_SOCK
          try {
            delete process.env.SSH_AUTH_SOCK
            const error = await rejectionOf(
              transportFor({ deployTo: '/srv/app', ssh: { identity: undefined } }).exec('true'),
            )
            expect(error).to.be.instanceOf(ConnectionError)
            expect(error.message).to.include('no SSH credentials')
            expect((error as ConnectionError).hint).to.include('ssh-agent')
          } finally {
            if (saved !== undefined) process.env.SSH_AUTH_SOCK = saved
          }
        })
      } else {
        it('refuses an encrypted key it cannot unlock, pointing at ssh-agent', async () => {
          const encrypted = join(scratch, 'encrypted_key')
          await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'sesame', '-f', encrypted])
          await writeFile(join(sshd.dir, 'authorized_keys', sshd.user), await readFile(`${encrypted}.pub`), {
            flag: 'a',
          })
          const error = await rejectionOf(
            transportFor({ deployTo: '/srv/app', ssh: { identity: encrypted } }).exec('true'),
          )
          expect(error).to.be.instanceOf(ConnectionError)
          expect(error.message).to.include(`refused the key ${encrypted}`)
          expect((error as ConnectionError).hint).to.include('ssh-agent')
        })
      }

      it('reports a missing key file', async () => {
        const missing = join(scratch, 'nope')
        const error = await rejectionOf(
          transportFor({ deployTo: '/srv/app', ssh: { identity: missing } }).exec('true'),
        )
        expect(error).to.be.instanceOf(ConnectionError)
        expect(error.message).to.include(`cannot read the private key ${missing} (ENOENT)`)
      })
    })

    describe('openTransport', () => {
      it(`gives the ${client} transport for ssh hosts with ssh.client: ${client} and a LocalTransport for local ones`, async () => {
        const base = sshd.hostConfig({ deployTo: '/srv/app', name: 'web1' })
        const host = { ...base, ssh: { ...base.ssh, ...(client === 'openssh' ? { client } : {}) } }
        const ssh = openTransport(host)
        try {
          expect(ssh).to.be.instanceOf(client === 'openssh' ? OpenSshTransport : SshTransport)
          expect(ssh.name).to.equal('web1')
          expect((await ssh.exec('echo via-ssh')).stdout).to.equal('via-ssh\n')
        } finally {
          await ssh.close()
        }
        expect(openTransport({ ...host, kind: 'local', name: 'local' })).to.be.instanceOf(LocalTransport)
      })
    })
  })

for (const { client, make } of CLIENTS)
  describe(`the ${client} SSH transport and a private sshd with a dedicated user`, function () {
    this.timeout(60_000)
    let sshd: TestSshd | undefined
    let transport: Transport | undefined

    before(async function () {
      if (process.getuid?.() !== 0) this.skip()
      sshd = await startSshd({ user: 'deployer-test', createUser: true })
      transport = make(sshd.hostConfig({ deployTo: '/srv/app' }))
    })
    after(async () => {
      await transport?.close()
      await sshd?.stop()
    })

    it('logs in as the unprivileged user created for the test', async () => {
      const result = await transport!.exec('id -un; echo $HOME')
      expect(result.stdout).to.equal('deployer-test\n/home/deployer-test\n')
    })

    it('rejects with a ConnectionError when the sshd session processes are killed mid-command', async () => {
      const running = transport!.exec('echo started; sleep 10', {
        onOutput: async (chunk) => {
          if (!chunk.includes('started')) return
          for (const pid of await sessionProcesses(sshd!)) process.kill(pid, 'SIGKILL')
        },
      })
      const error = await rejectionOf(running)
      expect(error).to.be.instanceOf(ConnectionError)
      expect(error.message).to.include('dropped while running')
      expect((await transport!.exec('id -un')).stdout).to.equal('deployer-test\n')
    })

    // OpenSSH honours signal requests only in privilege-separated sessions, which root logins are not:
    // there an aborted command that never writes runs on until it ends.
    it('stops the remote command when aborted', async () => {
      const marker = `deployer-abort-${process.pid}-${Date.now()}`
      const controller = new AbortController()
      const running = transport!.exec(`echo started; exec -a ${marker} sleep 30`, {
        signal: controller.signal,
        onOutput: (chunk) => {
          if (chunk.includes('started')) controller.abort()
        },
      })
      expect((await rejectionOf(running)).name).to.equal('AbortError')
      // The bracket keeps pgrep from matching the shell that runs it.
      const pattern = quote(`[${marker[0]}]${marker.slice(1)}`)
      await waitFor(async () => (await new LocalTransport().exec(`pgrep -f ${pattern}`)).code === 1, {
        what: `the remote ${marker} process to be gone`,
      })
    })
  })

describe('the openssh SSH transport’s ControlMaster and ssh_config', function () {
  this.timeout(60_000)
  let sshd: TestSshd
  let scratch: string
  const transports: OpenSshTransport[] = []

  function transportFor(
    ssh: Partial<HostConfig['ssh']> = {},
    overrides: Partial<HostConfig> = {},
  ): OpenSshTransport {
    const host = sshd.hostConfig({ deployTo: '/srv/app', ...overrides })
    const transport = new OpenSshTransport({ ...host, ssh: { ...host.ssh, client: 'openssh', ...ssh } })
    transports.push(transport)
    return transport
  }

  /** The ControlPath a running ssh was given, from its command line. */
  async function controlPathOf(pid: number): Promise<string> {
    const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0')
    const option = argv.find((arg) => arg.startsWith('ControlPath='))
    if (!option) throw new Error(`ssh ${pid} has no ControlPath: ${argv.join(' ')}`)
    return option.slice('ControlPath='.length)
  }

  /** The pids whose command line names `text` (an ssh given this ControlPath). */
  async function processesUsing(text: string): Promise<number[]> {
    const pids: number[] = []
    for (const name of await readdir('/proc')) {
      if (!/^\d+$/.test(name)) continue
      const argv = await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '')
      if (argv.includes(text)) pids.push(Number(name))
    }
    return pids
  }

  const isRunning = (pid: number) => {
    try {
      process.kill(pid, 0)
      return true
    } catch {
      return false
    }
  }

  before(async () => {
    sshd = await startSshd()
  })
  after(async () => {
    await sshd?.stop()
  })
  beforeEach(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'deployer-openssh-test-'))
  })
  afterEach(async () => {
    await Promise.all(transports.splice(0).map((transport) => transport.close()))
    await rm(scratch, { recursive: true, force: true })
  })

  it('keeps its master socket in a private directory and leaves no ssh process or socket after close', async () => {
    const transport = transportFor()
    await transport.connect()
    const pid = await transport.masterPid()
    expect(pid).to.be.a('number')
    const socket = await controlPathOf(pid!)
    expect((await stat(socket)).isSocket()).to.equal(true)
    expect((await stat(dirname(socket))).mode & 0o777).to.equal(0o700)
    await transport.exec('true')
    expect(await transport.masterPid(), 'commands reuse the master').to.equal(pid)

    // An aborted command's ssh too: close() waits until it has been stopped.
    const controller = new AbortController()
    const aborted = transport.exec('echo started; sleep 30', {
      signal: controller.signal,
      onOutput: (chunk) => chunk.includes('started') && controller.abort(),
    })
    expect((await rejectionOf(aborted)).name).to.equal('AbortError')

    await transport.close()
    expect(await stat(dirname(socket)).catch(() => undefined)).to.equal(undefined)
    await waitFor(() => !isRunning(pid!), { what: `the ControlMaster ${pid} to exit` })
    await waitFor(async () => (await processesUsing(socket)).length === 0, {
      what: `no process left using ${socket}`,
    })
    expect(await transport.masterPid()).to.equal(undefined)
  })

  it('keeps what it sends on stdin off every local command line', async () => {
    const secret = `deployer-secret-${process.pid}-${Date.now()}`
    const input = new PassThrough()
    const transport = transportFor()
    const running = transport.exec('read -r line; cat >/dev/null; echo "got ${#line}"', { stdin: input })
    input.write(`${secret}\n`)
    // The command is running and holds the line; nothing on this machine shows it in argv.
    const pid = await transport.masterPid()
    expect(pid).to.be.a('number')
    const lines = await Promise.all(
      (await readdir('/proc'))
        .filter((name) => /^\d+$/.test(name))
        .map((name) => readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '')),
    )
    // The ssh client is there with the fixed /bin/sh wrapper (the scan sees it); the script travels on
    // stdin like the line it reads, so neither is on any command line.
    expect(lines.some((line) => line.includes('exec /bin/sh -c'))).to.equal(true)
    expect(lines.some((line) => line.includes('read -r line; cat'))).to.equal(false)
    expect(lines.filter((line) => line.includes(secret))).to.deep.equal([])
    input.end()
    expect((await running).stdout).to.equal(`got ${secret.length}\n`)
  })

  it('refuses a command whose master close() ended while it was starting', async () => {
    const transport = transportFor()
    const refused = rejectionOf(transport.exec('echo never'))
    await transport.close()
    const error = await refused
    expect(error).to.be.instanceOf(ConnectionError)
    expect(error.message, error.message).to.include('was closed before `echo never` could run')
  })

  it('starts a new master when the old one went away', async () => {
    const transport = transportFor()
    await transport.connect()
    const first = (await transport.masterPid())!
    process.kill(first, 'SIGTERM')
    await waitFor(() => !isRunning(first), { what: `the ControlMaster ${first} to exit` })
    expect((await transport.exec('echo again')).stdout).to.equal('again\n')
    const second = await transport.masterPid()
    expect(second).to.be.a('number').and.not.equal(first)
  })

  it('reads the ssh_config file named by ssh.config, and none with config: false', async () => {
    const config = join(scratch, 'ssh_config')
    await writeFile(config, `Host deployer-alias\n  HostName 127.0.0.1\n`)
    const viaAlias = transportFor({ config }, { hostname: 'deployer-alias' })
    expect((await viaAlias.exec('echo via-alias')).stdout).to.equal('via-alias\n')

    const withoutConfig = transportFor({ config: false }, { hostname: 'deployer-alias' })
    const error = await rejectionOf(withoutConfig.exec('true'))
    expect(error).to.be.instanceOf(ConnectionError)
    expect(error.message).to.include('deployer-alias does not resolve')
  })

  it('reaches the host through ssh.proxy_jump, the jump checked by its own ssh_config', async () => {
    // The jump host here is the same sshd; its key, identity and strictness come from the config file,
    // since OpenSSH passes -F, but no -o option, to the ssh it runs for the jump.
    const config = join(scratch, 'ssh_config')
    await writeFile(
      config,
      [
        'Host jump',
        '  HostName 127.0.0.1',
        `  Port ${sshd.port}`,
        `  User ${sshd.user}`,
        `  IdentityFile ${sshd.clientKeyPath}`,
        '  IdentitiesOnly yes',
        `  UserKnownHostsFile ${sshd.knownHostsPath}`,
        '  StrictHostKeyChecking yes',
        '  BatchMode yes',
        '',
      ].join('\n'),
    )
    const transport = transportFor({ config, proxyJump: 'jump' })
    // Through the jump, sshd sees the connection come from its own address's loopback forward.
    expect((await transport.exec('echo jumped')).stdout).to.equal('jumped\n')

    await writeFile(join(scratch, 'empty_known_hosts'), '')
    await writeFile(
      config,
      (await readFile(config, 'utf8')).replace(sshd.knownHostsPath, join(scratch, 'empty_known_hosts')),
    )
    const refused = await rejectionOf(transportFor({ config, proxyJump: 'jump' }).exec('true'))
    expect(refused).to.be.instanceOf(DeployerError)
    expect(refused.message).to.not.include('jumped')
  })
})

function u32(value: number): Buffer {
  const buffer = Buffer.alloc(4)
  buffer.writeUInt32BE(value)
  return buffer
}
