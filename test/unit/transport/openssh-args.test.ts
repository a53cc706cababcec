import { expect } from 'chai'
import type { SshSettings } from '../../../src/config/types.js'
import { buildSshArgs, type OpenSshRole, sshPath } from '../../../src/transport/openssh-args.js'

const SSH: SshSettings = { knownHosts: '/home/me/.ssh/known_hosts', hostKey: 'strict', connectTimeout: 10 }
const TARGET = { user: 'deploy', hostname: 'web1.example.com', port: 22, ssh: SSH }
const SOCKET = '/tmp/deployer-ssh-abc/master'
const EXEC: OpenSshRole = { kind: 'exec', command: "echo 'hi there'" }

/** The options every run carries, in order, for the default settings. */
const COMMON = [
  '-o',
  'BatchMode=yes',
  '-o',
  'StrictHostKeyChecking=yes',
  '-o',
  'UserKnownHostsFile=/home/me/.ssh/known_hosts',
  '-o',
  'ConnectTimeout=10',
  '-o',
  'ServerAliveInterval=10',
  '-o',
  'ServerAliveCountMax=3',
  '-o',
  `ControlPath=${SOCKET}`,
]
const DESTINATION = ['-p', '22', '-l', 'deploy', '--', 'web1.example.com']

/** The value of every `-o NAME=value` in an argv. */
function options(args: string[]): Map<string, string> {
  const found = new Map<string, string>()
  args.forEach((arg, index) => {
    if (args[index - 1] !== '-o') return
    const [name, ...value] = arg.split('=')
    found.set(name!, value.join('='))
  })
  return found
}

describe('buildSshArgs', () => {
  it('runs a command as one argument after the destination, as a client of the master', () => {
    expect(buildSshArgs(TARGET, SOCKET, EXEC)).to.deep.equal([
      ...COMMON,
      '-o',
      'ControlMaster=no',
      '-o',
      'RemoteCommand=none',
      '-T',
      ...DESTINATION,
      "echo 'hi there'",
    ])
  })

  it('starts the master in the background with an idle limit and no forwardings', () => {
    expect(buildSshArgs(TARGET, SOCKET, { kind: 'master', persistSeconds: 300 })).to.deep.equal([
      ...COMMON,
      '-o',
      'ControlMaster=yes',
      '-o',
      'ControlPersist=300',
      '-o',
      'ClearAllForwardings=yes',
      '-N',
      '-f',
      ...DESTINATION,
    ])
  })

  it('asks the master with -O check and -O exit', () => {
    for (const operation of ['check', 'exit'] as const) {
      expect(buildSshArgs(TARGET, SOCKET, { kind: 'control', operation })).to.deep.equal([
        ...COMMON,
        '-O',
        operation,
        ...DESTINATION,
      ])
    }
  })

  const cases: Array<{
    what: string
    ssh: Partial<SshSettings>
    port?: number
    has: string[]
    lacks?: string[]
  }> = [
    { what: 'strict host keys by default', ssh: {}, has: ['StrictHostKeyChecking=yes'] },
    { what: 'accept-new', ssh: { hostKey: 'accept-new' }, has: ['StrictHostKeyChecking=accept-new'] },
    {
      what: 'only ssh.identity when one is set',
      ssh: { identity: '/keys/deploy' },
      has: ['IdentityFile=/keys/deploy', 'IdentitiesOnly=yes'],
    },
    {
      what: 'no identity options without ssh.identity',
      ssh: {},
      has: [],
      lacks: ['IdentityFile', 'IdentitiesOnly'],
    },
    { what: 'the connect timeout', ssh: { connectTimeout: 3 }, has: ['ConnectTimeout=3'] },
    {
      what: 'a known_hosts path with a space, quoted for ssh',
      ssh: { knownHosts: '/home/me/my keys/known_hosts' },
      has: ['UserKnownHostsFile="/home/me/my keys/known_hosts"'],
    },
    {
      what: 'a % in a path, doubled so ssh does not expand it',
      ssh: { identity: '/keys/100%/id' },
      has: ['IdentityFile=/keys/100%%/id'],
    },
  ]
  for (const { what, ssh, has, lacks = [] } of cases) {
    it(`sets ${what}`, () => {
      const args = buildSshArgs({ ...TARGET, ssh: { ...SSH, ...ssh } }, SOCKET, EXEC)
      const found = options(args)
      for (const option of has) {
        const [name, ...value] = option.split('=')
        expect(found.get(name!), name).to.equal(value.join('='))
      }
      for (const name of lacks) expect(found.has(name), name).to.equal(false)
    })
  }

  it('reads no ssh_config with config: false, a given file with a path, ssh’s own by default', () => {
    expect(
      buildSshArgs({ ...TARGET, ssh: { ...SSH, config: false } }, SOCKET, EXEC).slice(0, 2),
    ).to.deep.equal(['-F', 'none'])
    expect(
      buildSshArgs({ ...TARGET, ssh: { ...SSH, config: '/work/ssh_config' } }, SOCKET, EXEC).slice(0, 2),
    ).to.deep.equal(['-F', '/work/ssh_config'])
    expect(buildSshArgs(TARGET, SOCKET, EXEC)).to.not.include('-F')
  })

  it('passes ssh.proxy_jump as -J before the destination', () => {
    const args = buildSshArgs({ ...TARGET, ssh: { ...SSH, proxyJump: 'ops@bastion:2222' } }, SOCKET, EXEC)
    const jump = args.indexOf('-J')
    expect(args[jump + 1]).to.equal('ops@bastion:2222')
    expect(jump).to.be.lessThan(args.indexOf('--'))
  })

  it('leaves user, port and known_hosts to ssh_config when deployer.yml named none of them', () => {
    const args = buildSshArgs({ ...TARGET, ssh: { ...SSH, explicit: [] } }, SOCKET, EXEC)
    expect(args).to.not.include('-l').and.to.not.include('-p')
    expect(options(args).has('UserKnownHostsFile')).to.equal(false)
    const named = buildSshArgs({ ...TARGET, ssh: { ...SSH, explicit: ['user', 'port'] } }, SOCKET, EXEC)
    expect(named.slice(-7, -3)).to.deep.equal(['-p', '22', '-l', 'deploy'])
  })

  it('takes port and user from the host, and keeps a hostile host name after --', () => {
    const args = buildSshArgs(
      { ...TARGET, port: 2222, user: 'app', hostname: '-oProxyCommand=x' },
      SOCKET,
      EXEC,
    )
    expect(args.slice(-7)).to.deep.equal([
      '-p',
      '2222',
      '-l',
      'app',
      '--',
      '-oProxyCommand=x',
      "echo 'hi there'",
    ])
  })
})

describe('sshPath', () => {
  const cases: Array<[string, string]> = [
    ['/plain/path', '/plain/path'],
    ['/with space/file', '"/with space/file"'],
    ['/50%/file', '/50%%/file'],
    ['/%h %p', '"/%%h %%p"'],
  ]
  for (const [path, expected] of cases) {
    it(`writes ${path} as ${expected}`, () => expect(sshPath(path)).to.equal(expected))
  }
})
