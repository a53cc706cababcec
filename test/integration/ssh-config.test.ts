import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { mkdir, mkdtemp, readFile, readlink, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { expect } from 'chai'
import type { HostConfig } from '../../src/config/types.js'
import { ConnectionError, DeployerError, HostKeyError } from '../../src/errors.js'
import { SshTransport } from '../../src/transport/ssh.js'
import { planRoute } from '../../src/transport/ssh-route.js'
import { runCli } from '../support/cli.js'
import { DEPLOY_USER, makeWorkspace, type Workspace, writeApp } from '../support/fixture.js'
import { createNetns, type TestNetns } from '../support/netns.js'
import { startSshd, type TestSshd } from '../support/sshd.js'
import { waitFor } from '../support/wait.js'

const run = promisify(execFile)

/** Runs `command` over a fresh transport for `host` and closes it. */
async function runOn(host: HostConfig, command: string) {
  const transport = new SshTransport(host)
  try {
    return await transport.exec(command)
  } finally {
    await transport.close()
  }
}

async function failureOf(host: HostConfig): Promise<Error> {
  try {
    await runOn(host, 'true')
  } catch (error) {
    return error as Error
  }
  throw new Error('expected the connection to fail')
}

/** `type base64` of a fresh key that no server holds. */
async function strayKey(dir: string): Promise<string> {
  const path = join(dir, `stray-${Math.random().toString(36).slice(2)}`)
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path])
  return (await readFile(`${path}.pub`, 'utf8')).split(' ').slice(0, 2).join(' ')
}

describe('ssh_config, jump hosts and host keys over real sshd servers', function () {
  this.timeout(120_000)
  let dir: string
  let netns: TestNetns
  let clientKey: string
  /** In the namespace, on its veth address: the only server this machine can reach there. */
  let edge: TestSshd
  /** In the namespace, on its 127.0.0.1: reachable from edge only. */
  let inner: TestSshd
  /** In the namespace, on its 127.0.0.1, no forwarding: the host to deploy to. */
  let target: TestSshd
  /** known_hosts with all three servers' keys. */
  let knownHosts: string

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'deployer-ssh-config-'))
    clientKey = join(dir, 'id_ed25519')
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', clientKey])
    netns = await createNetns()
    const common = { user: DEPLOY_USER, createUser: true, clientKeyPath: clientKey, netns: netns.name }
    ;[edge, inner, target] = await Promise.all([
      startSshd({ ...common, listenAddress: netns.nsAddress, extraConfig: ['AllowTcpForwarding yes'] }),
      startSshd({ ...common, extraConfig: ['AllowTcpForwarding yes'] }),
      startSshd({ ...common, extraConfig: ['AllowTcpForwarding no'] }),
    ])
    knownHosts = join(dir, 'known_hosts')
    const lines = await Promise.all(
      [edge, inner, target].map((sshd) => readFile(sshd.knownHostsPath, 'utf8')),
    )
    await writeFile(knownHosts, lines.join(''))
  })
  after(async () => {
    await Promise.all([edge, inner, target].map((sshd) => sshd?.stop()))
    await netns?.destroy()
    await rm(dir, { recursive: true, force: true })
  })

  const hop = (sshd: TestSshd) => `${sshd.user}@${sshd.hostname}:${sshd.port}`
  /** The target as deployer.yml would name it, reached through `proxyJump`, without ssh_config. */
  const targetHost = (proxyJump: string | undefined, known = knownHosts): HostConfig =>
    target.hostConfig({
      name: 'web',
      deployTo: '/unused',
      ssh: { knownHosts: known, config: false, ...(proxyJump ? { proxyJump } : {}) },
    })

  describe('ProxyJump', () => {
    it('reaches a host that only its jump host can reach', async () => {
      // Outside the namespace nothing listens there (or, by chance, another test's server with another key).
      const direct = await failureOf(targetHost(undefined))
      expect(direct).to.be.instanceOf(DeployerError)

      const result = await runOn(targetHost(hop(edge)), 'echo "$SSH_CONNECTION"')
      // The host sees the connection arrive on its own 127.0.0.1, from inside the namespace.
      const [from, , to, port] = result.stdout.trim().split(' ')
      expect([from, to, Number(port)]).to.deep.equal(['127.0.0.1', '127.0.0.1', target.port])
      expect(await readFile(edge.logPath, 'utf8')).to.include(`Accepted publickey for ${DEPLOY_USER}`)
    })

    it('goes through a chain of two jump hosts, and runs many commands over the one connection', async () => {
      const logins = async () => (await readFile(inner.logPath, 'utf8')).split('Accepted publickey').length
      const before = await logins()
      const transport = new SshTransport(targetHost(`${hop(edge)},${hop(inner)}`))
      try {
        const results = await Promise.all(Array.from({ length: 5 }, (_, i) => transport.exec(`echo ${i}`)))
        expect(results.map((result) => result.stdout)).to.deep.equal(['0\n', '1\n', '2\n', '3\n', '4\n'])
      } finally {
        await transport.close()
      }
      await waitFor(async () => (await logins()) === before + 1, {
        what: 'one login on the second jump host',
      })
    })

    it('refuses a wrong host key at the second hop, naming that hop', async () => {
      const wrong = join(dir, 'known_hosts_wrong_inner')
      const text = await readFile(knownHosts, 'utf8')
      const innerLine = `[127.0.0.1]:${inner.port} ${inner.hostPublicKey}`
      expect(text).to.include(innerLine)
      await writeFile(wrong, text.replace(innerLine, `[127.0.0.1]:${inner.port} ${await strayKey(dir)}`))

      const logins = async () => (await readFile(target.logPath, 'utf8')).split('Accepted publickey').length
      const before = await logins()
      const error = await failureOf(targetHost(`${hop(edge)},${hop(inner)}`, wrong))
      expect(error).to.be.instanceOf(HostKeyError)
      expect(error.message).to.include(`jump host 127.0.0.1 (hop 2 of 2 to web), ${hop(inner)}`)
      expect(error.message).to.include(`the host key of [127.0.0.1]:${inner.port} has changed`)
      // Nothing reached the host: no new login in its log.
      expect(await logins()).to.equal(before)
    })

    it('refuses a jump host whose key is marked @revoked, naming the first hop', async () => {
      const revoked = join(dir, 'known_hosts_revoked_edge')
      const text = await readFile(knownHosts, 'utf8')
      await writeFile(revoked, `${text}@revoked [${netns.nsAddress}]:${edge.port} ${edge.hostPublicKey}\n`)
      const error = await failureOf(targetHost(`${hop(edge)},${hop(inner)}`, revoked))
      expect(error).to.be.instanceOf(HostKeyError)
      expect(error.message).to.include('hop 1 of 2').and.to.include('@revoked')
    })

    it('says which jump host could not reach the next one', async () => {
      // inner forbids nothing, but nothing listens on port 1 in the namespace.
      const error = await failureOf({ ...targetHost(`${hop(edge)},${hop(inner)}`), port: 1 })
      expect(error).to.be.instanceOf(ConnectionError)
      expect(error.message).to.include(
        `jump host 127.0.0.1 (hop 2 of 2 to web), ${hop(inner)}, could not open`,
      )
      expect(error.message).to.include('127.0.0.1:1')
    })
  })

  describe('ssh_config', () => {
    let sshConfig: string
    before(async () => {
      await mkdir(join(dir, 'conf.d'), { recursive: true })
      // Aliases for all three; the host's key is recorded under a HostKeyAlias.
      const aliasedKnownHosts = join(dir, 'known_hosts_aliased')
      const text = await readFile(knownHosts, 'utf8')
      await writeFile(aliasedKnownHosts, text.replace(`[127.0.0.1]:${target.port} `, 'web-host-key '))
      sshConfig = join(dir, 'ssh_config')
      await writeFile(
        sshConfig,
        [
          '# the machine a deploy goes to, through two jump hosts',
          'Host web',
          '  HostName 127.0.0.1',
          `  Port ${target.port}`,
          '  ProxyJump edge,inner',
          `Include ${join(dir, 'conf.d')}/*.conf`,
          'Host edge',
          `  HostName ${netns.nsAddress}`,
          `  Port ${edge.port}`,
          'Host inner',
          '  HostName 127.0.0.1',
          `  Port ${inner.port}`,
          'Match originalhost web,edge,inner',
          `  User ${DEPLOY_USER}`,
          `  IdentityFile ${clientKey}`,
          `  UserKnownHostsFile ${aliasedKnownHosts}`,
          '',
        ].join('\n'),
      )
      await writeFile(join(dir, 'conf.d', '10-web.conf'), 'Host web\n  HostKeyAlias web-host-key\n')
    })

    const aliasHost = (): HostConfig => ({
      name: 'web',
      kind: 'ssh',
      hostname: 'web',
      // What the loader fills in when deployer.yml names neither: defaults that ssh_config replaces.
      user: 'root',
      port: 22,
      deployTo: '/unused',
      ssh: {
        knownHosts: join(dir, 'unused_known_hosts'),
        hostKey: 'strict',
        connectTimeout: 10,
        config: sshConfig,
        explicit: [],
      },
    })

    it('plans the route from aliases, Include and Match, naming the lines', async () => {
      const route = await planRoute(aliasHost())
      expect(
        route.map((endpoint) => [endpoint.alias, endpoint.hostname, endpoint.port, endpoint.user]),
      ).to.deep.equal([
        ['edge', netns.nsAddress, edge.port, DEPLOY_USER],
        ['inner', '127.0.0.1', inner.port, DEPLOY_USER],
        ['web', '127.0.0.1', target.port, DEPLOY_USER],
      ])
      const web = route[2]!
      expect(web.hostKeyAlias).to.equal('web-host-key')
      expect(web.sources.hostKeyAlias).to.deep.equal({ file: join(dir, 'conf.d', '10-web.conf'), line: 2 })
      expect(web.sources.user).to.deep.equal({ file: sshConfig, line: 14 })
      expect(web.identityFiles).to.deep.equal([clientKey])
    })

    it('connects through the aliases with every hop verified', async () => {
      const result = await runOn(aliasHost(), 'id -un')
      expect(result.stdout).to.equal(`${DEPLOY_USER}\n`)
    })

    it('lets deployer.yml win: ssh.proxy_jump replaces the ProxyJump line', async () => {
      const host = aliasHost()
      const direct = await failureOf({ ...host, ssh: { ...host.ssh, proxyJump: 'none' } })
      expect(direct).to.be.instanceOf(DeployerError)
      const viaEdge = await runOn({ ...host, ssh: { ...host.ssh, proxyJump: 'edge' } }, 'echo ok')
      expect(viaEdge.stdout).to.equal('ok\n')
    })

    describe('a real `deployer release`', () => {
      let ws: Workspace
      before(async () => {
        ws = await makeWorkspace(DEPLOY_USER)
        await writeApp(ws.source, 'v1')
        // No user, key, known_hosts or address in deployer.yml: all of it comes from ssh_config.
        await writeFile(
          ws.config,
          [
            'app: itest',
            `source: ${JSON.stringify(ws.source)}`,
            `deploy_to: ${JSON.stringify(ws.deployTo)}`,
            'hosts: [web]',
            `ssh: { config: ${JSON.stringify(sshConfig)} }`,
            '',
          ].join('\n'),
        )
      })
      after(() => rm(ws.dir, { recursive: true, force: true }))

      it('releases to a host reached only through an alias and two jump hosts', async () => {
        const result = await runCli(['release', '--config', ws.config])
        expect(result.code, result.stderr).to.equal(0)
        expect(await readlink(join(ws.deployTo, 'current'))).to.equal('releases/1')
        expect(await readFile(join(ws.deployTo, 'releases', '1', 'app', 'version.rb'), 'utf8')).to.include(
          'v1',
        )
      })
    })
  })
})

describe('host and user certificates, rsa-sha2-512 and the agent', function () {
  this.timeout(120_000)
  let dir: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'deployer-ssh-auth-'))
  })
  after(() => rm(dir, { recursive: true, force: true }))

  describe('a host CA (@cert-authority)', () => {
    let sshd: TestSshd
    let knownHosts: string
    before(async () => {
      const ca = join(dir, 'host_ca')
      await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', ca])
      sshd = await startSshd({ hostCaKeyPath: ca })
      knownHosts = join(dir, 'known_hosts_ca')
      const caKey = (await readFile(`${ca}.pub`, 'utf8')).trim()
      await writeFile(knownHosts, `@cert-authority [127.0.0.1]:${sshd.port} ${caKey}\n`)
    })
    after(() => sshd?.stop())

    it('is accepted by OpenSSH, and refused by the built-in client with the way out named', async () => {
      // The setup is right: the system ssh trusts the host through its certificate.
      await run('ssh', [
        '-F',
        '/dev/null',
        '-o',
        'BatchMode=yes',
        '-o',
        'StrictHostKeyChecking=yes',
        '-o',
        `UserKnownHostsFile=${knownHosts}`,
        '-i',
        sshd.clientKeyPath,
        '-p',
        String(sshd.port),
        `${sshd.user}@127.0.0.1`,
        'true',
      ])
      const error = await failureOf(sshd.hostConfig({ deployTo: '/unused', ssh: { knownHosts } }))
      expect(error).to.be.instanceOf(HostKeyError)
      expect(error.message).to.include(`${knownHosts}:1`).and.to.include('@cert-authority')
      expect((error as HostKeyError).hint).to.include('ssh.client: openssh')
    })
  })

  describe('a user certificate (CertificateFile)', () => {
    let sshd: TestSshd
    let sshConfig: string
    before(async () => {
      const ca = join(dir, 'user_ca')
      await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', ca])
      sshd = await startSshd({ extraConfig: [`TrustedUserCAKeys ${ca}.pub`] })
      // A key the server does not list, only vouched for by the CA.
      const key = join(dir, 'cert_user_key')
      await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key])
      await run('ssh-keygen', ['-q', '-s', ca, '-I', 'deployer-test', '-n', sshd.user, `${key}.pub`])
      sshConfig = join(dir, 'ssh_config_cert')
      await writeFile(
        sshConfig,
        `Host cert-host\n  HostName 127.0.0.1\n  Port ${sshd.port}\n  IdentityFile ${key}\n  CertificateFile ${key}-cert.pub\n`,
      )
    })
    after(() => sshd?.stop())

    it('logs in with the certificate ssh_config names, the key itself being authorized nowhere', async () => {
      const host = sshd.hostConfig({
        name: 'cert-host',
        deployTo: '/unused',
        ssh: { config: sshConfig, explicit: ['user', 'port', 'knownHosts', 'hostKey', 'connectTimeout'] },
      })
      delete host.ssh.identity
      const result = await runOn({ ...host, hostname: 'cert-host' }, 'echo certified')
      expect(result.stdout).to.equal('certified\n')
      expect(await readFile(sshd.logPath, 'utf8')).to.match(
        /Accepted publickey .* ED25519-CERT .* ID deployer-test/,
      )
    })
  })

  describe('a server that accepts only rsa-sha2-512', () => {
    let sshd: TestSshd
    before(async () => {
      sshd = await startSshd({
        hostKeyTypes: ['rsa'],
        clientKeyType: 'rsa',
        extraConfig: ['PubkeyAcceptedAlgorithms rsa-sha2-512', 'HostKeyAlgorithms rsa-sha2-512'],
      })
    })
    after(() => sshd?.stop())

    it('accepts our RSA key and host key check', async () => {
      const result = await runOn(sshd.hostConfig({ deployTo: '/unused' }), 'echo ok')
      expect(result.stdout).to.equal('ok\n')
      expect(await readFile(sshd.logPath, 'utf8')).to.match(/Accepted publickey .* RSA SHA256:/)
    })
  })

  describe('a key given as a pipe', () => {
    let sshd: TestSshd
    before(async () => {
      sshd = await startSshd()
    })
    after(() => sshd?.stop())

    it('is read once and used for every host', async () => {
      const fifo = join(dir, 'key.fifo')
      await run('mkfifo', [fifo])
      // Like `ssh.identity: <(echo "$KEY")`: whatever reads the pipe first gets the key, once.
      const writer = spawn('sh', ['-c', 'cat "$1" > "$2"', 'sh', sshd.clientKeyPath, fifo], {
        stdio: 'ignore',
      })
      const written = new Promise((resolve) => writer.once('exit', resolve))
      const hosts = ['one', 'two', 'three'].map((name) =>
        sshd.hostConfig({ name, deployTo: '/unused', ssh: { identity: fifo } }),
      )
      const results = await Promise.all(hosts.map((host) => runOn(host, 'echo ok')))
      expect(results.map((result) => result.stdout)).to.deep.equal(['ok\n', 'ok\n', 'ok\n'])
      expect(await written).to.equal(0)
    })
  })

  describe('the SSH agent alone', () => {
    let sshd: TestSshd
    let agent: ChildProcess | undefined
    let socket: string
    const saved = process.env.SSH_AUTH_SOCK
    before(async () => {
      sshd = await startSshd()
      socket = join(dir, 'agent.sock')
      agent = spawn('ssh-agent', ['-D', '-a', socket], { stdio: 'ignore' })
      await waitFor(
        async () =>
          (await run('ssh-add', ['-l'], { env: { SSH_AUTH_SOCK: socket } }).catch((error) => error)).code !==
          2,
        {
          what: 'ssh-agent to answer on its socket',
        },
      )
      await run('ssh-add', [sshd.clientKeyPath], { env: { SSH_AUTH_SOCK: socket } })
    })
    after(async () => {
      if (saved === undefined) delete process.env.SSH_AUTH_SOCK
      else process.env.SSH_AUTH_SOCK = saved
      if (agent && agent.exitCode === null) {
        const exited = new Promise((resolve) => agent!.once('exit', resolve))
        agent.kill('SIGTERM')
        await exited
      }
      await sshd?.stop()
    })

    it('logs in with the key the agent holds, with no key file configured', async () => {
      process.env.SSH_AUTH_SOCK = socket
      const host = sshd.hostConfig({
        deployTo: '/unused',
        ssh: { explicit: ['user', 'port', 'knownHosts', 'hostKey'] },
      })
      delete host.ssh.identity
      const result = await runOn(host, 'echo agent')
      expect(result.stdout).to.equal('agent\n')
    })

    it('offers only the IdentityFile keys with IdentitiesOnly, and says what it offered', async () => {
      process.env.SSH_AUTH_SOCK = socket
      const other = join(dir, 'other_key')
      await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other])
      const config = join(dir, 'ssh_config_only')
      await writeFile(config, `Host *\n  IdentitiesOnly yes\n  IdentityFile ${other}\n`)
      const host = sshd.hostConfig({
        deployTo: '/unused',
        ssh: { config, explicit: ['user', 'port', 'knownHosts', 'hostKey'] },
      })
      delete host.ssh.identity
      const error = await failureOf(host)
      expect(error).to.be.instanceOf(ConnectionError)
      expect(error.message).to.include("the SSH agent's 0 key(s)").and.to.include(other)
    })
  })
})
