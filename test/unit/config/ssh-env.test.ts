import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { expect } from 'chai'
import { loadConfig, parseConfig } from '../../../src/config/load.js'
import { applySshEnv } from '../../../src/config/ssh-env.js'
import type { DeployConfig, SshSettings } from '../../../src/config/types.js'
import { DeployerError, ExitCode } from '../../../src/errors.js'

const HOME = '/home/me'
const CWD = '/work/repo'
const TEXT = [
  'app: shop',
  'deploy_to: /srv/shop',
  'hosts: [deploy@web1, local]',
  'ssh: { identity: ~/.ssh/id_ed25519, known_hosts: ~/.ssh/known_hosts, host_key: accept-new }',
  '',
].join('\n')
const CONFIG: DeployConfig = parseConfig(TEXT, '/app/deployer.yml', { USER: 'me' }, HOME)
const FROM_FILE: SshSettings = {
  identity: '/home/me/.ssh/id_ed25519',
  knownHosts: '/home/me/.ssh/known_hosts',
  hostKey: 'accept-new',
  connectTimeout: 10,
  config: true,
  explicit: ['identity', 'knownHosts', 'hostKey'],
}
/** A host's settings also count its user as given (`deploy@web1`); `local` has none. */
const withUser = (ssh: SshSettings): SshSettings => ({ ...ssh, explicit: [...(ssh.explicit ?? []), 'user'] })

const apply = (env: NodeJS.ProcessEnv) => applySshEnv(CONFIG, env, { cwd: CWD, homeDir: HOME })

describe('applySshEnv', () => {
  const cases: { name: string; env: NodeJS.ProcessEnv; ssh: SshSettings }[] = [
    { name: 'keeps the config when nothing is set', env: {}, ssh: FROM_FILE },
    {
      name: 'treats empty values as unset',
      env: { DEPLOYER_SSH_IDENTITY: '', DEPLOYER_KNOWN_HOSTS: '', DEPLOYER_HOST_KEY: '' },
      ssh: FROM_FILE,
    },
    {
      name: 'replaces the identity with an absolute path',
      env: { DEPLOYER_SSH_IDENTITY: '/runner/tmp/key' },
      ssh: { ...FROM_FILE, identity: '/runner/tmp/key' },
    },
    {
      name: 'resolves a relative known_hosts against cwd',
      env: { DEPLOYER_KNOWN_HOSTS: 'deploy/known_hosts' },
      ssh: { ...FROM_FILE, knownHosts: '/work/repo/deploy/known_hosts' },
    },
    {
      name: 'expands ~/ to the home directory',
      env: { DEPLOYER_SSH_IDENTITY: '~/ci/key' },
      ssh: { ...FROM_FILE, identity: '/home/me/ci/key' },
    },
    {
      name: 'replaces the host key policy',
      env: { DEPLOYER_HOST_KEY: 'strict' },
      ssh: { ...FROM_FILE, hostKey: 'strict' },
    },
    {
      name: 'applies all three at once',
      env: { DEPLOYER_SSH_IDENTITY: '/k', DEPLOYER_KNOWN_HOSTS: '/kh', DEPLOYER_HOST_KEY: 'strict' },
      ssh: { ...FROM_FILE, identity: '/k', knownHosts: '/kh', hostKey: 'strict' },
    },
  ]
  for (const { name, env, ssh } of cases) {
    it(name, () => {
      const config = apply(env)
      expect(config.ssh).to.deep.equal(ssh)
      expect(config.hosts.map((host) => host.ssh)).to.deep.equal([withUser(ssh), ssh])
    })
  }

  it('leaves the config it was given unchanged', () => {
    apply({ DEPLOYER_SSH_IDENTITY: '/k' })
    expect(CONFIG.ssh).to.deep.equal(FROM_FILE)
    expect(CONFIG.hosts[0]?.ssh).to.deep.equal(withUser(FROM_FILE))
  })

  it('rejects an unknown host key policy with the variable named and the config exit code', () => {
    try {
      apply({ DEPLOYER_HOST_KEY: 'off' })
      expect.fail('expected an error')
    } catch (error) {
      expect(error).to.be.instanceOf(DeployerError)
      expect((error as DeployerError).message).to.equal(
        'DEPLOYER_HOST_KEY must be strict or accept-new, not "off".',
      )
      expect((error as DeployerError).exitCode).to.equal(ExitCode.config)
    }
  })
})

describe('loadConfig with SSH overrides in the environment', () => {
  let dir: string
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'deployer-ssh-env-'))
    await writeFile(path.join(dir, 'deployer.yml'), TEXT)
  })
  after(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('points every host at the files the environment names', async () => {
    const config = await loadConfig('deployer.yml', {
      cwd: dir,
      env: { USER: 'me', HOME, DEPLOYER_SSH_IDENTITY: 'key', DEPLOYER_KNOWN_HOSTS: '/ci/known_hosts' },
    })
    expect(config.hosts[0]?.ssh.identity).to.equal(path.join(dir, 'key'))
    expect(config.hosts[0]?.ssh.knownHosts).to.equal('/ci/known_hosts')
    expect(config.hosts[0]?.ssh.hostKey).to.equal('accept-new')
  })
})
