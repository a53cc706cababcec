import { execFile } from 'node:child_process'
import { mkdtemp, readFile, readlink, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { expect } from 'chai'
import type { HostConfig } from '../../src/config/types.js'
import { DeployerError, HostKeyError } from '../../src/errors.js'
import { OpenSshTransport } from '../../src/transport/openssh.js'
import { SshTransport } from '../../src/transport/ssh.js'
import { runCli } from '../support/cli.js'
import { DEPLOY_USER, makeWorkspace, type Workspace, writeApp } from '../support/fixture.js'
import { createNetns, type TestNetns } from '../support/netns.js'
import { startSshd, type TestSshd } from '../support/sshd.js'

const run = promisify(execFile)

/** How many logins sshd's log records with a user certificate of `type` (`ED25519-CERT`, `RSA-CERT`). */
async function certificateLogins(sshd: TestSshd, type: string): Promise<number> {
  const log = await readFile(sshd.logPath, 'utf8')
  return log.split('\n').filter((line) => line.includes('Accepted publickey') && line.includes(` ${type} `))
    .length
}

async function keygen(path: string, type = 'ed25519'): Promise<void> {
  await run('ssh-keygen', ['-q', '-t', type, ...(type === 'rsa' ? ['-b', '2048'] : []), '-N', '', '-f', path])
}

/**
 * A fleet that trusts certificates only: a bastion and a target that only the bastion can reach (in a
 * network namespace), both accepting users whose key a user CA signed (TrustedUserCAKeys) and both
 * presenting host certificates from a host CA. The deploy key is in no authorized_keys file: without
 * its certificate, nobody logs in.
 */
describe('user and host certificates through a bastion, on both SSH clients', function () {
  this.timeout(180_000)
  let dir: string
  let netns: TestNetns
  let bastion: TestSshd
  let target: TestSshd
  /** The certified deploy key; `${deployKey}-cert.pub` is its certificate. */
  let deployKey: string
  /** `@cert-authority` lines only: what the OpenSSH client checks host certificates against. */
  let caKnownHosts: string
  /** The hosts' plain keys: what the built-in client, which cannot check host certificates, checks. */
  let plainKnownHosts: string
  let hostCa: string

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'deployer-certs-'))
    const userCa = join(dir, 'user_ca')
    hostCa = join(dir, 'host_ca')
    const unused = join(dir, 'authorized_but_unused')
    deployKey = join(dir, 'deploy_key')
    await Promise.all([keygen(userCa), keygen(hostCa), keygen(unused), keygen(deployKey)])
    await run('ssh-keygen', ['-q', '-s', userCa, '-I', 'deployer-it', '-n', DEPLOY_USER, `${deployKey}.pub`])
    netns = await createNetns()
    const common = {
      user: DEPLOY_USER,
      createUser: true,
      // startSshd authorizes this key; the deploy key logs in through its certificate alone.
      clientKeyPath: unused,
      netns: netns.name,
      hostCaKeyPath: hostCa,
    }
    ;[bastion, target] = await Promise.all([
      startSshd({
        ...common,
        listenAddress: netns.nsAddress,
        extraConfig: [`TrustedUserCAKeys ${userCa}.pub`, 'AllowTcpForwarding yes'],
      }),
      startSshd({ ...common, extraConfig: [`TrustedUserCAKeys ${userCa}.pub`, 'AllowTcpForwarding no'] }),
    ])
    const ca = (await readFile(`${hostCa}.pub`, 'utf8')).trim()
    caKnownHosts = join(dir, 'known_hosts_ca')
    await writeFile(
      caKnownHosts,
      `@cert-authority [${netns.nsAddress}]:${bastion.port},[127.0.0.1]:${target.port} ${ca}\n`,
    )
    plainKnownHosts = join(dir, 'known_hosts_plain')
    const plain = await Promise.all([bastion, target].map((sshd) => readFile(sshd.knownHostsPath, 'utf8')))
    await writeFile(plainKnownHosts, plain.join(''))
  })
  after(async () => {
    await Promise.all([bastion, target].map((sshd) => sshd?.stop()))
    await netns?.destroy()
    await rm(dir, { recursive: true, force: true })
  })

  /** An ssh_config naming the target `web` behind the bastion, with the certificate and `knownHosts`. */
  async function writeSshConfig(name: string, knownHosts: string): Promise<string> {
    const file = join(dir, name)
    await writeFile(
      file,
      [
        'Host web',
        '  HostName 127.0.0.1',
        `  Port ${target.port}`,
        '  ProxyJump bastion',
        'Host bastion',
        `  HostName ${netns.nsAddress}`,
        `  Port ${bastion.port}`,
        'Host web bastion',
        `  User ${DEPLOY_USER}`,
        `  IdentityFile ${deployKey}`,
        `  CertificateFile ${deployKey}-cert.pub`,
        '  IdentitiesOnly yes',
        `  UserKnownHostsFile ${knownHosts}`,
        '  StrictHostKeyChecking yes',
        '',
      ].join('\n'),
    )
    return file
  }

  /** deployer.yml's view of `web`: nothing but the name and the ssh_config, as the loader fills it in. */
  const webHost = (config: string, client: 'builtin' | 'openssh'): HostConfig => ({
    name: 'web',
    kind: 'ssh',
    hostname: 'web',
    user: 'root',
    port: 22,
    deployTo: '/unused',
    ssh: {
      knownHosts: join(dir, 'unused_known_hosts'),
      hostKey: 'strict',
      connectTimeout: 10,
      config,
      client,
      explicit: [],
    },
  })

  it('logs in through the bastion with the user certificate on the built-in client, host keys checked', async () => {
    const config = await writeSshConfig('ssh_config_builtin', plainKnownHosts)
    const [bastionBefore, targetBefore] = await Promise.all(
      [bastion, target].map((sshd) => certificateLogins(sshd, 'ED25519-CERT')),
    )
    const transport = new SshTransport(webHost(config, 'builtin'))
    try {
      expect((await transport.exec('id -un')).stdout).to.equal(`${DEPLOY_USER}\n`)
    } finally {
      await transport.close()
    }
    expect(await certificateLogins(bastion, 'ED25519-CERT')).to.equal(bastionBefore! + 1)
    expect(await certificateLogins(target, 'ED25519-CERT')).to.equal(targetBefore! + 1)
  })

  /** A known_hosts file that trusts the right host CA for `trusted` hops and a stray CA for the others. */
  async function knownHostsTrusting(trusted: 'bastion' | 'target'): Promise<string> {
    const stray = join(dir, `stray_ca_${trusted}`)
    await keygen(stray)
    const [right, wrong] = await Promise.all(
      [`${hostCa}.pub`, `${stray}.pub`].map(async (file) => (await readFile(file, 'utf8')).trim()),
    )
    const bastionName = `[${netns.nsAddress}]:${bastion.port}`
    const targetName = `[127.0.0.1]:${target.port}`
    const file = join(dir, `known_hosts_trusting_${trusted}`)
    await writeFile(
      file,
      `@cert-authority ${bastionName} ${trusted === 'bastion' ? right : wrong}\n` +
        `@cert-authority ${targetName} ${trusted === 'target' ? right : wrong}\n`,
    )
    return file
  }

  async function openSshFailure(knownHosts: string, name: string): Promise<unknown> {
    const config = await writeSshConfig(name, knownHosts)
    const transport = new OpenSshTransport(webHost(config, 'openssh'))
    try {
      return await transport.exec('true').then(
        () => undefined,
        (caught: unknown) => caught,
      )
    } finally {
      await transport.close()
    }
  }

  it('refuses, on the OpenSSH client, a target whose host certificate another CA signed', async () => {
    const before = await certificateLogins(target, 'ED25519-CERT')
    const error = await openSshFailure(await knownHostsTrusting('bastion'), 'ssh_config_stray_target')
    expect(error).to.be.instanceOf(HostKeyError)
    expect(await certificateLogins(target, 'ED25519-CERT')).to.equal(before)
  })

  it('refuses, on the OpenSSH client, a bastion whose host certificate another CA signed', async () => {
    const [bastionBefore, targetBefore] = await Promise.all(
      [bastion, target].map((sshd) => certificateLogins(sshd, 'ED25519-CERT')),
    )
    const error = await openSshFailure(await knownHostsTrusting('target'), 'ssh_config_stray_bastion')
    // ssh reports a jump host's refusal only as the connection closing (its own stderr has no more).
    expect(error).to.be.instanceOf(DeployerError)
    expect(await certificateLogins(bastion, 'ED25519-CERT')).to.equal(bastionBefore)
    expect(await certificateLogins(target, 'ED25519-CERT')).to.equal(targetBefore)
  })

  it('logs in through the bastion on the OpenSSH client, each hop trusted through its host certificate', async () => {
    const config = await writeSshConfig('ssh_config_openssh', caKnownHosts)
    const before = await certificateLogins(target, 'ED25519-CERT')
    const transport = new OpenSshTransport(webHost(config, 'openssh'))
    try {
      expect((await transport.exec('id -un')).stdout).to.equal(`${DEPLOY_USER}\n`)
    } finally {
      await transport.close()
    }
    expect(await certificateLogins(target, 'ED25519-CERT')).to.equal(before + 1)
  })

  for (const client of ['builtin', 'openssh'] as const) {
    describe(`a real \`deployer release\` (ssh.client: ${client})`, () => {
      let ws: Workspace
      before(async () => {
        ws = await makeWorkspace(DEPLOY_USER)
        await writeApp(ws.source, `certified-${client}`)
        const config = await writeSshConfig(
          `ssh_config_release_${client}`,
          client === 'openssh' ? caKnownHosts : plainKnownHosts,
        )
        // No user, key, known_hosts or address in deployer.yml: the alias, bastion, key, certificate and
        // host keys all come from ssh_config.
        await writeFile(
          ws.config,
          [
            'app: itest',
            `source: ${JSON.stringify(ws.source)}`,
            `deploy_to: ${JSON.stringify(ws.deployTo)}`,
            'hosts: [web]',
            `ssh: { config: ${JSON.stringify(config)}, client: ${client} }`,
            '',
          ].join('\n'),
        )
      })
      after(() => rm(ws.dir, { recursive: true, force: true }))

      it('releases to the host behind the bastion with the user certificate', async () => {
        const before = await certificateLogins(target, 'ED25519-CERT')
        const result = await runCli(['release', '--config', ws.config])
        expect(result.code, result.stderr).to.equal(0)
        expect(await readlink(join(ws.deployTo, 'current'))).to.equal('releases/1')
        expect(await readFile(join(ws.deployTo, 'releases', '1', 'app', 'version.rb'), 'utf8')).to.include(
          `certified-${client}`,
        )
        expect(await certificateLogins(target, 'ED25519-CERT')).to.be.greaterThan(before)
      })
    })
  }
})

describe('an RSA user certificate on a server that accepts only rsa-sha2-512 certificates', function () {
  this.timeout(120_000)
  let dir: string
  let sshd: TestSshd
  let key: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'deployer-rsa-cert-'))
    const ca = join(dir, 'ca')
    const unused = join(dir, 'unused')
    key = join(dir, 'rsa_key')
    await Promise.all([keygen(ca), keygen(unused), keygen(key, 'rsa')])
    sshd = await startSshd({
      clientKeyPath: unused,
      extraConfig: [
        `TrustedUserCAKeys ${ca}.pub`,
        'PubkeyAcceptedAlgorithms rsa-sha2-512-cert-v01@openssh.com',
      ],
    })
    await run('ssh-keygen', ['-q', '-s', ca, '-I', 'rsa-it', '-n', sshd.user, `${key}.pub`])
  })
  after(async () => {
    await sshd?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('logs in on the built-in client with ssh.identity and the KEY-cert.pub beside it', async () => {
    const transport = new SshTransport(sshd.hostConfig({ deployTo: '/unused', ssh: { identity: key } }))
    try {
      expect((await transport.exec('echo ok')).stdout).to.equal('ok\n')
    } finally {
      await transport.close()
    }
    expect(await certificateLogins(sshd, 'RSA-CERT')).to.equal(1)
  })
})
