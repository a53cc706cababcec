import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { expect } from 'chai'
import {
  expandPath,
  fromSshG,
  parseConfigLines,
  parseProxyJump,
  parseSshConfigFiles,
  parseSshGOutput,
  type ReadConfigFile,
  type ResolveOptions,
  resolveSshConfig,
} from '../../../src/transport/ssh-config.js'

const run = promisify(execFile)
const HOME = '/home/dev'

/** A ReadConfigFile over an in-memory tree of files. */
function files(tree: Record<string, string>): ReadConfigFile {
  return async (file) => tree[file]
}

function options(host: string, extra: Partial<ResolveOptions> = {}): ResolveOptions {
  return { host, files: { kind: 'default' }, homeDir: HOME, localUser: 'dev', env: {}, ...extra }
}

describe('ssh-config', () => {
  describe('parseConfigLines', () => {
    const cases: Array<[string, string, string[]]> = [
      ['HostName 10.0.0.1', 'hostname', ['10.0.0.1']],
      ['  Port=2222', 'port', ['2222']],
      ['IdentityFile "~/my key"', 'identityfile', ['~/my key']],
      ['UserKnownHostsFile a b', 'userknownhostsfile', ['a', 'b']],
      ['Host web* !web9', 'host', ['web*', '!web9']],
      ['Match host x,y user "z q"', 'match', ['host', 'x,y', 'user', 'z q']],
      ['ProxyJump a,b  # two bastions', 'proxyjump', ['a,b']],
    ]
    for (const [line, keyword, args] of cases) {
      it(`reads ${JSON.stringify(line)}`, () => {
        expect(parseConfigLines(`# comment\n\n${line}\n`, '/f')).to.deep.equal([
          { keyword, args, file: '/f', line: 3 },
        ])
      })
    }
  })

  describe('parseProxyJump', () => {
    const cases: Array<[string, unknown]> = [
      ['bastion', [{ spec: 'bastion', host: 'bastion' }]],
      ['deploy@bastion:2200', [{ spec: 'deploy@bastion:2200', host: 'bastion', user: 'deploy', port: 2200 }]],
      [
        'ssh://ops@b1:22,b2',
        [
          { spec: 'ssh://ops@b1:22', host: 'b1', user: 'ops', port: 22 },
          { spec: 'b2', host: 'b2' },
        ],
      ],
      ['[::1]:2022', [{ spec: '[::1]:2022', host: '::1', port: 2022 }]],
      ['none', []],
    ]
    for (const [value, hops] of cases) {
      it(`parses ${value}`, () => expect(parseProxyJump(value)).to.deep.equal(hops))
    }
    for (const bad of ['a,,b', 'b:0', 'b:http', '@b']) {
      it(`refuses ${bad}`, () => expect(() => parseProxyJump(bad)).to.throw(/ProxyJump hop/))
    }
  })

  describe('expandPath', () => {
    const tokens = {
      host: 'web1',
      hostname: '10.0.0.1',
      user: 'deploy',
      port: '2222',
      homeDir: HOME,
      localUser: 'dev',
      env: { KEYS: '/keys' },
    }
    const cases: Array<[string, string]> = [
      ['~/.ssh/id_ed25519', `${HOME}/.ssh/id_ed25519`],
      ['%d/.ssh/%r@%h:%p', `${HOME}/.ssh/deploy@10.0.0.1:2222`],
      ['~/.ssh/%n-%u-%%', `${HOME}/.ssh/web1-dev-%`],
      ['${KEYS}/deploy', '/keys/deploy'],
      ['${UNSET}/deploy', '${UNSET}/deploy'],
      ['/abs/path', '/abs/path'],
    ]
    for (const [value, expected] of cases) {
      it(`expands ${value}`, () => expect(expandPath(value, tokens)).to.equal(expected))
    }
  })

  describe('parseSshConfigFiles', () => {
    const userConfig = `${HOME}/.ssh/config`
    it('takes the first value obtained for each keyword, as ssh does', async () => {
      const resolved = await parseSshConfigFiles(
        options('web1'),
        files({
          [userConfig]: 'Host web1\n  HostName 10.0.0.1\n  User deploy\nHost *\n  User nobody\n  Port 2222\n',
        }),
      )
      expect(resolved).to.include({ hostname: '10.0.0.1', user: 'deploy', port: 2222, resolvedBy: 'parser' })
      expect(resolved.sources).to.deep.include({
        hostname: { file: userConfig, line: 2 },
        user: { file: userConfig, line: 3 },
        port: { file: userConfig, line: 6 },
      })
    })

    it('accumulates IdentityFile and CertificateFile lines in order', async () => {
      const resolved = await parseSshConfigFiles(
        options('web1'),
        files({
          [userConfig]:
            'Host web*\n  IdentityFile ~/.ssh/%h_key\n  CertificateFile ~/.ssh/%h_key-cert.pub\nHost *\n  IdentityFile ~/.ssh/fallback\n',
        }),
      )
      expect(resolved.identityFiles).to.deep.equal([`${HOME}/.ssh/web1_key`, `${HOME}/.ssh/fallback`])
      expect(resolved.certificateFiles).to.deep.equal([`${HOME}/.ssh/web1_key-cert.pub`])
      expect(resolved.sources.identityFiles).to.deep.equal({ file: userConfig, line: 2 })
    })

    const precedence: Array<[string, Partial<ResolveOptions>, string, Record<string, unknown>]> = [
      ['a negated pattern excludes a host', {}, 'Host web* !web1\n  User other\n', { user: undefined }],
      ['deployer.yml user wins over User', { user: 'ci' }, 'Host web1\n  User deploy\n', { user: undefined }],
      ['deployer.yml port wins over Port', { port: 2200 }, 'Host web1\n  Port 22\n', { port: undefined }],
      [
        'Match user sees the deployer.yml user',
        { user: 'ci' },
        'Match user ci\n  Port 2201\n',
        { port: 2201 },
      ],
      [
        'Match host sees the HostName set before it',
        {},
        'Host web1\n  HostName 10.0.0.1\nMatch host 10.0.0.*\n  Port 2202\n',
        { port: 2202 },
      ],
      [
        'Match originalhost sees the alias',
        {},
        'Host web1\n  HostName 10.0.0.1\nMatch originalhost web1\n  Port 2203\n',
        { port: 2203 },
      ],
      ['Match all applies to every host', {}, 'Match all\n  ConnectTimeout 7\n', { connectTimeout: 7 }],
      ['a negated Match criterion', {}, 'Match !host web1\n  Port 2204\n', { port: undefined }],
      [
        'Match exec is never run by the parser',
        {},
        'Match exec "touch /tmp/x"\n  Port 2205\n',
        { port: undefined },
      ],
      [
        'ProxyJump none turns a jump off',
        {},
        'Host web1\n  ProxyJump none\nHost *\n  ProxyJump b\n',
        { proxyJump: [] },
      ],
      [
        'StrictHostKeyChecking off means no',
        {},
        'Host *\n  StrictHostKeyChecking off\n',
        { strictHostKeyChecking: 'no' },
      ],
      ['IdentitiesOnly yes', {}, 'Host *\n  IdentitiesOnly yes\n', { identitiesOnly: true }],
      [
        'HostKeyAlias and ServerAliveInterval',
        {},
        'Host web1\n  HostKeyAlias shared\n  ServerAliveInterval 15\n',
        { hostKeyAlias: 'shared', serverAliveInterval: 15 },
      ],
      [
        'HostName %h.example.com',
        {},
        'Host web1\n  HostName %h.example.com\n',
        { hostname: 'web1.example.com' },
      ],
      ['ProxyCommand, as written', {}, 'Host web1\n  ProxyCommand nc %h %p\n', { proxyCommand: 'nc %h %p' }],
      [
        'ProxyCommand none is no command',
        {},
        'Host web1\n  ProxyCommand none\n',
        { proxyCommand: undefined },
      ],
    ]
    for (const [title, extra, text, expected] of precedence) {
      it(title, async () => {
        const resolved = await parseSshConfigFiles(options('web1', extra), files({ [userConfig]: text }))
        for (const [key, value] of Object.entries(expected)) {
          expect(resolved[key as keyof typeof resolved], key).to.deep.equal(value)
        }
      })
    }

    it('reads a relative Include from ~/.ssh, in place, under the Host it sits in', async () => {
      const resolved = await parseSshConfigFiles(
        options('web1'),
        files({
          [userConfig]:
            'Host web1\n  Include hosts/web.conf\n  Port 2222\nHost db1\n  Include hosts/db.conf\n',
          [`${HOME}/.ssh/hosts/web.conf`]: 'User web\n',
          [`${HOME}/.ssh/hosts/db.conf`]: 'Port 2300\n',
        }),
      )
      expect(resolved).to.include({ user: 'web', port: 2222 })
      expect(resolved.sources.user).to.deep.equal({ file: `${HOME}/.ssh/hosts/web.conf`, line: 1 })
    })

    it('records the Match exec line it skipped', async () => {
      const resolved = await parseSshConfigFiles(
        options('web1'),
        files({ [userConfig]: '\nMatch exec true\n' }),
      )
      expect(resolved.skipped).to.deep.equal([{ file: userConfig, line: 2 }])
    })

    it('reads the user file before the system file', async () => {
      const resolved = await parseSshConfigFiles(
        options('web1'),
        files({
          [userConfig]: 'Host web1\n  Port 2222\n',
          '/etc/ssh/ssh_config': 'Host *\n  Port 22\n  User sys\n',
        }),
      )
      expect(resolved).to.include({ port: 2222, user: 'sys' })
      expect(resolved.sources.user).to.deep.equal({ file: '/etc/ssh/ssh_config', line: 3 })
    })

    it('reads only the named file with ssh.config: PATH (no system file)', async () => {
      const resolved = await parseSshConfigFiles(
        options('web1', { files: { kind: 'file', file: '/cfg/ssh' } }),
        files({ '/cfg/ssh': 'Host web1\n  Port 2222\n', '/etc/ssh/ssh_config': 'Host *\n  User sys\n' }),
      )
      expect(resolved.port).to.equal(2222)
      expect(resolved.user).to.equal(undefined)
    })

    it('refuses a named file that does not exist', async () => {
      const error = await parseSshConfigFiles(
        options('web1', { files: { kind: 'file', file: '/cfg/missing' } }),
        files({}),
      ).catch((caught: Error) => caught)
      expect(String(error)).to.match(/\/cfg\/missing \(ssh.config in deployer.yml\) does not exist/)
    })
  })

  describe('with real files and the real ssh -G', () => {
    let dir: string
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'deployer-ssh-config-'))
      await mkdir(join(dir, 'conf.d'))
      await writeFile(
        join(dir, 'config'),
        [
          // ssh resolves a relative Include against the passwd home's .ssh, not $HOME: use an absolute one.
          `Include ${join(dir, 'conf.d')}/*.conf`,
          'Host web1',
          '  HostName 127.0.0.1',
          '  IdentityFile ~/.ssh/web1_key',
          '  ProxyJump bastion',
          'Host bastion',
          '  HostName 10.0.0.2',
          '  User ops',
          'Host *',
          '  ConnectTimeout 5',
          '',
        ].join('\n'),
      )
      await writeFile(join(dir, 'conf.d', 'a.conf'), 'Host web1\n  Port 2222\n')
      await writeFile(join(dir, 'conf.d', 'b.conf'), 'Match originalhost web1\n  User deploy\n')
    })
    after(() => rm(dir, { recursive: true, force: true }))

    const resolveWith = (resolver: 'ssh -G' | 'parser') =>
      resolveSshConfig({
        host: 'web1',
        files: { kind: 'file', file: join(dir, 'config') },
        homeDir: dir,
        localUser: 'dev',
        env: { ...process.env, HOME: dir },
        resolver,
      })

    it('gives the same settings from the parser as from ssh -G, Include and Match included', async () => {
      const [viaSsh, viaParser] = await Promise.all([resolveWith('ssh -G'), resolveWith('parser')])
      for (const resolved of [viaSsh, viaParser]) {
        expect(resolved).to.include({ hostname: '127.0.0.1', user: 'deploy', port: 2222, connectTimeout: 5 })
        expect(resolved.identityFiles).to.deep.equal([join(dir, '.ssh', 'web1_key')])
        expect(resolved.proxyJump).to.deep.equal([{ spec: 'bastion', host: 'bastion' }])
      }
      expect(viaParser.sources.port).to.deep.equal({ file: join(dir, 'conf.d', 'a.conf'), line: 2 })
    })

    it('names the lines ssh -G used where the parser agrees', async () => {
      const resolved = await resolveWith('ssh -G')
      expect(resolved.resolvedBy).to.equal('ssh -G')
      expect(resolved.sources.user).to.deep.equal({ file: join(dir, 'conf.d', 'b.conf'), line: 2 })
      expect(resolved.sources.hostname).to.deep.equal({ file: join(dir, 'config'), line: 3 })
    })

    it('asks ssh -G only when a file sets something deployer uses or cannot evaluate', async () => {
      const cases: Array<[string, string, string]> = [
        ['nothing relevant', 'Host *\n  SendEnv LANG\n  HashKnownHosts yes\n', 'parser'],
        ['a HostName', 'Host web9\n  HostName 10.0.0.9\n', 'ssh -G'],
        ['CanonicalizeHostname', 'Host *\n  CanonicalizeHostname yes\n', 'ssh -G'],
        ['Match exec', 'Match exec "true"\n  Port 2222\n', 'ssh -G'],
      ]
      for (const [title, text, expected] of cases) {
        const file = join(dir, `auto-${expected.replace(/\W/g, '')}-${title.length}`)
        await writeFile(file, text)
        const resolved = await resolveSshConfig({ host: 'web9', files: { kind: 'file', file }, homeDir: dir })
        expect(resolved.resolvedBy, title).to.equal(expected)
      }
    })

    it('reports the line ssh rejects', async () => {
      await writeFile(join(dir, 'bad'), 'Host x\n  NoSuchOption yes\n')
      const error = await resolveSshConfig({
        host: 'x',
        files: { kind: 'file', file: join(dir, 'bad') },
        resolver: 'ssh -G',
      }).catch((caught: Error) => caught)
      expect(String(error)).to.match(/line 2: Bad configuration option: nosuchoption/)
    })

    it('agrees with ssh -G about the defaults it leaves out', async () => {
      const { stdout } = await run('ssh', ['-G', '-F', '/dev/null', 'web1'])
      const baseline = parseSshGOutput(stdout)
      const resolved = fromSshG({ host: 'web1', homeDir: dir }, baseline, baseline)
      expect(resolved).to.deep.include({ identityFiles: [], userKnownHostsFiles: [], certificateFiles: [] })
      expect(resolved.hostname).to.equal(undefined)
      expect(resolved.strictHostKeyChecking).to.equal(undefined)
    })
  })
})
