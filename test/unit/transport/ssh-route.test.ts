import { expect } from 'chai'
import type { ExplicitSshSetting, HostConfig, SshSettings } from '../../../src/config/types.js'
import { DeployerError } from '../../../src/errors.js'
import type { ResolveOptions, SshHostConfig } from '../../../src/transport/ssh-config.js'
import {
  DEFAULT_KEEPALIVE_MS,
  describeSources,
  planRoute,
  type RouteContext,
} from '../../../src/transport/ssh-route.js'

const HOME = '/home/dev'

/** What ssh_config says, per host name; unknown names get nothing. */
function context(configs: Record<string, Partial<SshHostConfig>>, seen: ResolveOptions[] = []): RouteContext {
  return {
    homeDir: HOME,
    localUser: 'dev',
    resolve: async (options) => {
      seen.push(options)
      return {
        host: options.host,
        identityFiles: [],
        userKnownHostsFiles: [],
        certificateFiles: [],
        sources: {},
        resolvedBy: 'parser',
        skipped: [],
        ...configs[options.host],
      }
    },
  }
}

function host(
  overrides: { ssh?: Partial<SshSettings>; user?: string; port?: number; hostname?: string } = {},
) {
  const ssh: SshSettings = {
    knownHosts: `${HOME}/.ssh/known_hosts`,
    hostKey: 'strict',
    connectTimeout: 10,
    config: true,
    explicit: [],
    ...overrides.ssh,
  }
  return {
    name: 'web1',
    kind: 'ssh',
    hostname: overrides.hostname ?? 'web1',
    user: overrides.user ?? 'dev',
    port: overrides.port ?? 22,
    deployTo: '/srv/app',
    ssh,
  } satisfies HostConfig
}

const WEB1: Partial<SshHostConfig> = {
  hostname: '10.0.0.1',
  user: 'deploy',
  port: 2222,
  identityFiles: ['/keys/web'],
  userKnownHostsFiles: ['/kh/one', '/kh/two'],
  strictHostKeyChecking: 'accept-new',
  connectTimeout: 5,
  serverAliveInterval: 15,
  hostKeyAlias: 'web-alias',
  sources: {
    hostname: { file: `${HOME}/.ssh/config`, line: 2 },
    port: { file: '/etc/ssh/ssh_config', line: 9 },
  },
}

describe('planRoute', () => {
  it('takes every setting deployer.yml leaves out from ssh_config', async () => {
    const [target] = await planRoute(host(), context({ web1: WEB1 }))
    expect(target).to.deep.include({
      label: 'web1',
      alias: 'web1',
      hostname: '10.0.0.1',
      user: 'deploy',
      port: 2222,
      identityFiles: ['/keys/web'],
      knownHostsFiles: ['/kh/one', '/kh/two'],
      hostKeyPolicy: 'accept-new',
      hostKeyAlias: 'web-alias',
      connectTimeout: 5,
      keepaliveIntervalMs: 15_000,
    })
  })

  const precedence: Array<[string, ExplicitSshSetting[], Partial<SshSettings>, Record<string, unknown>]> = [
    ['a user in deployer.yml wins', ['user'], {}, { user: 'dev' }],
    ['a port in deployer.yml wins', ['port'], {}, { port: 22 }],
    [
      'known_hosts in deployer.yml wins',
      ['knownHosts'],
      {},
      { knownHostsFiles: [`${HOME}/.ssh/known_hosts`] },
    ],
    ['host_key in deployer.yml wins', ['hostKey'], {}, { hostKeyPolicy: 'strict' }],
    [
      'connect_timeout in deployer.yml wins',
      ['connectTimeout'],
      { connectTimeout: 30 },
      { connectTimeout: 30 },
    ],
    [
      'ssh.identity means that key alone',
      ['identity'],
      { identity: '/keys/mine' },
      { identity: '/keys/mine' },
    ],
    [
      'an identity that deployer.yml did not give is not used',
      [],
      { identity: '/keys/mine' },
      { identity: undefined },
    ],
  ]
  for (const [title, explicit, ssh, expected] of precedence) {
    it(title, async () => {
      const [target] = await planRoute(host({ ssh: { ...ssh, explicit } }), context({ web1: WEB1 }))
      for (const [key, value] of Object.entries(expected))
        expect(target![key as keyof typeof target], key).to.deep.equal(value)
    })
  }

  const strictness: Array<[SshHostConfig['strictHostKeyChecking'], string]> = [
    ['yes', 'strict'],
    ['ask', 'strict'],
    ['accept-new', 'accept-new'],
    // OpenSSH's `no` would even take a changed key; deployer never does, so it only records new ones.
    ['no', 'accept-new'],
  ]
  for (const [value, policy] of strictness) {
    it(`maps StrictHostKeyChecking ${value} to ${policy}`, async () => {
      const [target] = await planRoute(host(), context({ web1: { strictHostKeyChecking: value } }))
      expect(target!.hostKeyPolicy).to.equal(policy)
    })
  }

  it("falls back to deployer's defaults and OpenSSH's default identities", async () => {
    const [target] = await planRoute(host(), context({}))
    expect(target).to.deep.include({
      hostname: 'web1',
      user: 'dev',
      port: 22,
      keepaliveIntervalMs: DEFAULT_KEEPALIVE_MS,
    })
    expect(target!.identityFiles).to.include(`${HOME}/.ssh/id_ed25519`).and.to.include(`${HOME}/.ssh/id_rsa`)
  })

  it('asks ssh_config nothing with ssh.config: false', async () => {
    const seen: ResolveOptions[] = []
    const [target] = await planRoute(host({ ssh: { config: false } }), context({ web1: WEB1 }, seen))
    expect(seen).to.deep.equal([])
    expect(target!.hostname).to.equal('web1')
  })

  it('passes only the user and port deployer.yml gives to the lookup (ssh -l, -p)', async () => {
    const seen: ResolveOptions[] = []
    await planRoute(host({ ssh: { explicit: ['user'] }, user: 'ci' }), context({}, seen))
    expect(seen[0]).to.deep.include({ host: 'web1', user: 'ci', port: undefined })
  })

  it('reads the named file with ssh.config: PATH', async () => {
    const seen: ResolveOptions[] = []
    await planRoute(host({ ssh: { config: '/repo/ssh_config' } }), context({}, seen))
    expect(seen[0]!.files).to.deep.equal({ kind: 'file', file: '/repo/ssh_config' })
  })

  it('refuses a ProxyCommand it cannot run, naming the line and the OpenSSH client', async () => {
    const configs = {
      web1: {
        proxyCommand: 'nc -X 5 -x proxy:1080 %h %p',
        sources: { proxyCommand: { file: '/cfg', line: 4 } },
      },
    }
    const error = (await planRoute(host(), context(configs)).catch(
      (caught: DeployerError) => caught,
    )) as DeployerError
    expect(error).to.be.instanceOf(DeployerError)
    expect(error.message).to.equal(
      'Host web1: ssh_config sets ProxyCommand "nc -X 5 -x proxy:1080 %h %p" (/cfg:4), which deployer\'s built-in SSH client cannot run.',
    )
    expect(error.hint).to.include('ssh.client: openssh')
    // ssh.proxy_jump in deployer.yml replaces it.
    expect(await planRoute(host({ ssh: { proxyJump: 'edge' } }), context(configs))).to.have.length(2)
  })

  describe('jump hosts', () => {
    const route = async (ssh: Partial<SshSettings>, configs: Record<string, Partial<SshHostConfig>>) =>
      (await planRoute(host({ ssh }), context(configs))).map((endpoint) => [
        endpoint.label,
        `${endpoint.user}@${endpoint.hostname}:${endpoint.port}`,
      ])

    it("follows ssh_config's ProxyJump, resolving each hop as a host of its own", async () => {
      expect(
        await route(
          {},
          {
            web1: {
              proxyJump: [
                { spec: 'edge', host: 'edge' },
                { spec: 'ops@inner:2200', host: 'inner', user: 'ops', port: 2200 },
              ],
            },
            edge: { hostname: '203.0.113.5', user: 'jump' },
            inner: { hostname: '10.0.0.9', user: 'ignored', port: 22 },
          },
        ),
      ).to.deep.equal([
        ['jump host edge (hop 1 of 2 to web1)', 'jump@203.0.113.5:22'],
        ['jump host inner (hop 2 of 2 to web1)', 'ops@10.0.0.9:2200'],
        ['web1', 'dev@web1:22'],
      ])
    })

    it("lets ssh.proxy_jump win over ssh_config's ProxyJump, and none turn it off", async () => {
      const configs = { web1: { proxyJump: [{ spec: 'edge', host: 'edge' }] } }
      expect(
        (await route({ proxyJump: 'ops@other:2022' }, configs)).map(([, address]) => address),
      ).to.deep.equal(['ops@other:2022', 'dev@web1:22'])
      expect(await route({ proxyJump: 'none' }, configs)).to.have.length(1)
    })

    it("puts the first hop's own ProxyJump in front of it, as OpenSSH does", async () => {
      const addresses = (
        await route(
          { proxyJump: 'inner' },
          { inner: { proxyJump: [{ spec: 'edge', host: 'edge' }] }, edge: { proxyJump: [] } },
        )
      ).map(([, address]) => address)
      expect(addresses).to.deep.equal(['dev@edge:22', 'dev@inner:22', 'dev@web1:22'])
    })

    it('stops a ProxyJump loop', async () => {
      const loop = {
        a: { proxyJump: [{ spec: 'b', host: 'b' }] },
        b: { proxyJump: [{ spec: 'a', host: 'a' }] },
      }
      const error = await planRoute(host({ ssh: { proxyJump: 'a' } }), context(loop)).catch(
        (caught: Error) => caught,
      )
      expect(String(error)).to.match(/ProxyJump nests more than 8 deep/)
    })

    it("gives a hop deployer.yml's key and known_hosts, but not the host's user and port", async () => {
      const endpoints = await planRoute(
        host({
          user: 'deploy',
          port: 2222,
          ssh: {
            proxyJump: 'edge',
            identity: '/keys/ci',
            explicit: ['user', 'port', 'identity', 'knownHosts'],
          },
        }),
        context({}),
      )
      expect(endpoints[0]).to.deep.include({
        user: 'dev',
        port: 22,
        identity: '/keys/ci',
        knownHostsFiles: [`${HOME}/.ssh/known_hosts`],
      })
      expect(endpoints[1]).to.deep.include({ user: 'deploy', port: 2222 })
    })
  })
})

describe('describeSources', () => {
  it('names the ssh_config lines behind the values', () => {
    expect(describeSources({ sources: WEB1.sources! })).to.equal(
      'HostName (/home/dev/.ssh/config:2), Port (/etc/ssh/ssh_config:9)',
    )
    expect(describeSources({ sources: WEB1.sources! }, ['port'])).to.equal('Port (/etc/ssh/ssh_config:9)')
    expect(describeSources({ sources: {} })).to.equal('')
  })
})
