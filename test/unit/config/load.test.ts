// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these tests are about the ${VAR} syntax written in YAML
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { expect } from 'chai'
import {
  deployToProblem,
  expandEnv,
  loadConfig,
  parseConfig,
  parseHostSpec,
  selectHosts,
} from '../../../src/config/load.js'
import type { DeployConfig, SshSettings } from '../../../src/config/types.js'
import { ConfigError, DeployerError, ExitCode } from '../../../src/errors.js'

const FILE = '/app/deployer.yml'
const HOME = '/home/me'
const ENV = { USER: 'me' }

const yaml = (...lines: string[]) => `${lines.join('\n')}\n`
const MINIMAL = ['app: shop', 'deploy_to: /srv/shop', 'hosts: [deploy@web1]']

function parse(text: string, env: NodeJS.ProcessEnv = ENV): DeployConfig {
  return parseConfig(text, FILE, env, HOME)
}

function configError(text: string, env: NodeJS.ProcessEnv = ENV): ConfigError {
  try {
    parse(text, env)
  } catch (error) {
    expect(error).to.be.instanceOf(ConfigError)
    return error as ConfigError
  }
  throw new Error('expected a ConfigError')
}

const problems = (text: string, env: NodeJS.ProcessEnv = ENV) => configError(text, env).problems

const DEFAULT_SSH: SshSettings = {
  knownHosts: '/home/me/.ssh/known_hosts',
  hostKey: 'strict',
  connectTimeout: 10,
}

describe('parseConfig', () => {
  it('fills every default into a minimal config', () => {
    expect(parse(yaml(...MINIMAL))).to.deep.equal({
      file: FILE,
      app: 'shop',
      source: '/app',
      exclude: ['.git', 'log', 'tmp', 'node_modules'],
      deployTo: '/srv/shop',
      keepReleases: 5,
      hosts: [
        {
          name: 'deploy@web1',
          kind: 'ssh',
          user: 'deploy',
          hostname: 'web1',
          port: 22,
          deployTo: '/srv/shop',
          ssh: DEFAULT_SSH,
        },
      ],
      strategy: 'parallel',
      concurrency: 10,
      batch: 1,
      canaryThen: 'parallel',
      onFailure: 'rollback',
      ssh: DEFAULT_SSH,
      shared: { files: [], dirs: [] },
    } satisfies DeployConfig)
  })

  it('reads the full example from DESIGN.md', () => {
    const text = yaml(
      'app: shop',
      'source: .',
      'exclude: [.git, log, tmp, node_modules]',
      'deploy_to: /srv/shop',
      'keep_releases: 5',
      'hosts:',
      '  - deploy@web1.example.com',
      '  - deploy@web2.example.com:2222',
      '  - { name: web3, ssh: deploy@10.0.0.3, deploy_to: /srv/shop-blue }',
      'strategy: parallel',
      'concurrency: 10',
      'batch: 2',
      'on_failure: rollback',
      'ssh:',
      '  identity: ~/.ssh/id_ed25519',
      '  known_hosts: ~/.ssh/known_hosts',
      '  host_key: strict',
      'shared:',
      '  files: [.env]',
      '  dirs: [log, tmp/pids, tmp/sockets]',
      'install:',
      '  command: bundle install',
      '  lockfiles: [Gemfile.lock]',
      '  vendor: vendor/bundle',
      '  check: bundle check',
      'server:',
      '  kind: puma',
      '  config: config/puma.rb',
      '  pidfile: shared/tmp/pids/puma.pid',
      '  control_url: unix:///srv/shop/shared/tmp/sockets/pumactl.sock',
      '  control_token: ${PUMA_CONTROL_TOKEN}',
      '  restart: auto',
      '  start: bundle exec puma -C config/puma.rb',
      '  full_restart: sudo systemctl restart shop',
      '  env_files: [/etc/shop/env]',
      'health:',
      '  url: http://127.0.0.1:9292/health',
      '  expect: "{release}"',
      '  timeout: 60s',
    )
    const ssh: SshSettings = { ...DEFAULT_SSH, identity: '/home/me/.ssh/id_ed25519' }
    const host = { kind: 'ssh' as const, user: 'deploy', port: 22, deployTo: '/srv/shop', ssh }
    expect(parse(text, { ...ENV, PUMA_CONTROL_TOKEN: 'tok' })).to.deep.equal({
      file: FILE,
      app: 'shop',
      source: '/app',
      exclude: ['.git', 'log', 'tmp', 'node_modules'],
      deployTo: '/srv/shop',
      keepReleases: 5,
      hosts: [
        { ...host, name: 'deploy@web1.example.com', hostname: 'web1.example.com' },
        { ...host, name: 'deploy@web2.example.com:2222', hostname: 'web2.example.com', port: 2222 },
        { ...host, name: 'web3', hostname: '10.0.0.3', deployTo: '/srv/shop-blue' },
      ],
      strategy: 'parallel',
      concurrency: 10,
      batch: 2,
      canaryThen: 'parallel',
      onFailure: 'rollback',
      ssh,
      shared: { files: ['.env'], dirs: ['log', 'tmp/pids', 'tmp/sockets'] },
      install: {
        command: 'bundle install',
        lockfiles: ['Gemfile.lock'],
        vendor: 'vendor/bundle',
        check: 'bundle check',
      },
      server: {
        kind: 'puma',
        config: 'config/puma.rb',
        pidfile: 'shared/tmp/pids/puma.pid',
        controlUrl: 'unix:///srv/shop/shared/tmp/sockets/pumactl.sock',
        controlToken: 'tok',
        restart: 'auto',
        start: 'bundle exec puma -C config/puma.rb',
        fullRestart: 'sudo systemctl restart shop',
        envFiles: ['/etc/shop/env'],
        pumaEnvFiles: [],
      },
      health: { url: 'http://127.0.0.1:9292/health', expect: '{release}', timeout: 60 },
    } satisfies DeployConfig)
  })

  it('fills the defaults of each optional section', () => {
    const config = parse(
      yaml(
        ...MINIMAL,
        'install: { command: make }',
        'server: {}',
        'health: { url: "https://shop.example/up" }',
      ),
    )
    expect(config.install).to.deep.equal({ command: 'make', lockfiles: ['Gemfile.lock'] })
    expect(config.server).to.deep.equal({
      kind: 'puma',
      config: 'config/puma.rb',
      pidfile: 'shared/tmp/pids/puma.pid',
      restart: 'auto',
      envFiles: [],
      pumaEnvFiles: [],
    })
    expect(config.health).to.deep.equal({ url: 'https://shop.example/up', timeout: 60 })
  })

  it('resolves local paths against the config directory and ~ against the home directory', () => {
    const config = parse(
      yaml(...MINIMAL, 'source: ../build/shop', 'ssh: { identity: "~", known_hosts: keys/known }'),
    )
    expect(config.source).to.equal('/build/shop')
    expect(config.ssh.identity).to.equal('/home/me')
    expect(config.ssh.knownHosts).to.equal('/app/keys/known')
    expect(parse(yaml(...MINIMAL, 'source: ~/src/shop')).source).to.equal('/home/me/src/shop')
  })

  it('reads env files loaded by the process manager and by puma.rb, and restart_timeout', () => {
    const config = parse(
      yaml(
        ...MINIMAL,
        'server:',
        '  restart_timeout: 2m',
        '  env_files: [/etc/shop/env, { path: shared/.env, loaded_by: puma }, { path: /etc/shop/more }]',
      ),
    )
    expect(config.server?.envFiles).to.deep.equal(['/etc/shop/env', '/etc/shop/more'])
    expect(config.server?.pumaEnvFiles).to.deep.equal(['shared/.env'])
    expect(config.server?.restartTimeout).to.equal(120)
  })

  it('refuses an env file loader it does not know, naming the choices', () => {
    expect(() =>
      parse(yaml(...MINIMAL, 'server:', '  env_files: [{ path: /etc/env, loaded_by: systemd }]')),
    ).to.throw(/loaded_by.*process_manager.*puma|process_manager, puma/s)
  })

  it('reads durations as seconds', () => {
    const cases: Array<[string, number]> = [
      ['60', 60],
      ['60s', 60],
      ['2m', 120],
      ['1.5m', 90],
      ['1h', 3600],
      ['"45"', 45],
      ['0.5', 0.5],
    ]
    for (const [written, seconds] of cases) {
      const config = parse(yaml(...MINIMAL, `health: { url: "http://x/", timeout: ${written} }`))
      expect(config.health?.timeout, written).to.equal(seconds)
    }
  })

  it('stores relative paths normalised', () => {
    const config = parse(yaml(...MINIMAL, 'shared: { dirs: [./log, tmp/pids/] }'))
    expect(config.shared.dirs).to.deep.equal(['log', 'tmp/pids'])
  })

  it('keeps numbers in string fields exactly as written', () => {
    const config = parse(
      yaml(
        'app: 0123',
        'deploy_to: /srv/0123',
        'hosts: [local]',
        'health: { url: "http://x/", expect: 200 }',
      ),
    )
    expect(config.app).to.equal('0123')
    expect(config.health?.expect).to.equal('200')
  })

  describe('reports each problem with its file, line and column', () => {
    const cases: Array<{ name: string; lines: string[]; problem: string }> = [
      {
        name: 'an unknown key, with a suggestion',
        lines: [...MINIMAL, 'keep_release: 3'],
        problem: '/app/deployer.yml:4:1: keep_release: unknown key; did you mean keep_releases?',
      },
      {
        name: 'a camelCase key',
        lines: [...MINIMAL, 'onFailure: stop'],
        problem: '/app/deployer.yml:4:1: onFailure: unknown key; did you mean on_failure?',
      },
      {
        name: 'a section key at the top level',
        lines: [...MINIMAL, 'known_hosts: ~/.ssh/kh'],
        problem:
          '/app/deployer.yml:4:1: known_hosts: unknown key at the top level; did you mean ssh.known_hosts (under ssh:)?',
      },
      {
        name: 'an unknown key with nothing close',
        lines: [...MINIMAL, 'health:', '  url: http://x/', '  colour: red'],
        problem: '/app/deployer.yml:6:3: health.colour: unknown key; expected one of url, expect, timeout',
      },
      {
        name: 'a missing required key',
        lines: ['app: shop', 'hosts: [local]'],
        problem: '/app/deployer.yml:1:1: deploy_to: is required',
      },
      {
        name: 'a required key without a value',
        lines: ['app: shop', 'deploy_to:', 'hosts: [local]'],
        problem: '/app/deployer.yml:2:1: deploy_to: needs a value',
      },
      {
        name: 'a string where a number belongs',
        lines: [...MINIMAL, 'keep_releases: five'],
        problem: '/app/deployer.yml:4:16: keep_releases: must be a whole number, not a string',
      },
      {
        name: 'a number below the minimum',
        lines: [...MINIMAL, 'keep_releases: 0'],
        problem: '/app/deployer.yml:4:16: keep_releases: must be at least 1, not 0',
      },
      {
        name: 'a fraction',
        lines: [...MINIMAL, 'concurrency: 2.5'],
        problem: '/app/deployer.yml:4:14: concurrency: must be a whole number, not 2.5',
      },
      {
        name: 'a negative batch',
        lines: [...MINIMAL, 'batch: -1'],
        problem: '/app/deployer.yml:4:8: batch: must be at least 1, not -1',
      },
      {
        name: 'a mapping where a string belongs',
        lines: ['app: { name: shop }', 'deploy_to: /srv/shop', 'hosts: [local]'],
        problem: '/app/deployer.yml:1:6: app: must be a string, not a mapping',
      },
      {
        name: 'a boolean where a string belongs',
        lines: [...MINIMAL, 'install: { command: true }'],
        problem:
          '/app/deployer.yml:4:21: install.command: must be a string, not true (quote it to mean the word)',
      },
      {
        name: 'a string where a list belongs',
        lines: [...MINIMAL, 'exclude: .git'],
        problem:
          '/app/deployer.yml:4:10: exclude: must be a list, not a string (write [a, b] or one "- item" per line)',
      },
      {
        name: 'a list where a mapping belongs',
        lines: [...MINIMAL, 'ssh: [strict]'],
        problem:
          '/app/deployer.yml:4:6: ssh: must be a mapping with keys such as user, identity, known_hosts',
      },
      {
        name: 'a strategy that is not one of the choices',
        lines: [...MINIMAL, 'strategy: paralel'],
        problem:
          '/app/deployer.yml:4:11: strategy: must be one of parallel, rolling, canary, not "paralel"; did you mean parallel?',
      },
      {
        name: 'an on_failure that is not one of the choices',
        lines: [...MINIMAL, 'on_failure: retry'],
        problem: '/app/deployer.yml:4:13: on_failure: must be one of rollback, stop, not "retry"',
      },
      {
        name: 'a host_key policy that is not one of the choices',
        lines: [...MINIMAL, 'ssh:', '  host_key: yes-please'],
        problem: '/app/deployer.yml:5:13: ssh.host_key: must be one of strict, accept-new, not "yes-please"',
      },
      {
        name: 'a restart that is not one of the choices',
        lines: [...MINIMAL, 'server:', '  restart: rolling'],
        problem:
          '/app/deployer.yml:5:12: server.restart: must be one of auto, phased, hot, full, none, not "rolling"',
      },
      {
        name: 'a server kind other than puma',
        lines: [...MINIMAL, 'server: { kind: unicorn }'],
        problem: '/app/deployer.yml:4:17: server.kind: must be one of puma, not "unicorn"',
      },
      {
        name: 'a duration without a unit we know',
        lines: [...MINIMAL, 'health:', '  url: http://x/', '  timeout: 5 minutes'],
        problem:
          '/app/deployer.yml:6:12: health.timeout: must be a duration above 0, such as 60s, 2m or a number of seconds, not "5 minutes"',
      },
      {
        name: 'a zero duration',
        lines: [...MINIMAL, 'ssh: { connect_timeout: 0 }'],
        problem:
          '/app/deployer.yml:4:25: ssh.connect_timeout: must be a duration above 0, such as 60s, 2m or a number of seconds, not 0',
      },
      {
        name: 'a health URL that is not http',
        lines: [...MINIMAL, 'health: { url: "ftp://x/" }'],
        problem: '/app/deployer.yml:4:16: health.url: "ftp://x/" must be an http:// or https:// URL',
      },
      {
        name: 'a health section without a URL',
        lines: [...MINIMAL, 'health:', '  expect: ok'],
        problem: '/app/deployer.yml:5:3: health.url: is required',
      },
      {
        name: 'an install section without a command',
        lines: [...MINIMAL, 'install:', '  vendor: vendor/bundle'],
        problem: '/app/deployer.yml:5:3: install.command: is required',
      },
      {
        name: 'a shared dir that climbs out of the release',
        lines: [...MINIMAL, 'shared:', '  dirs: [log, ../logs]'],
        problem: '/app/deployer.yml:5:15: shared.dirs[1]: "../logs" must not contain .. segments',
      },
      {
        name: 'an absolute shared file',
        lines: [...MINIMAL, 'shared: { files: [/etc/shop.env] }'],
        problem:
          '/app/deployer.yml:4:19: shared.files[0]: "/etc/shop.env" must be a relative path, not an absolute one',
      },
      {
        name: 'an absolute exclude',
        lines: [...MINIMAL, 'exclude:', '  - .git', '  - /tmp'],
        problem: '/app/deployer.yml:6:5: exclude[1]: "/tmp" must be a relative path, not an absolute one',
      },
      {
        name: 'a lockfile outside the release',
        lines: [...MINIMAL, 'install: { command: make, lockfiles: [../Gemfile.lock] }'],
        problem:
          '/app/deployer.yml:4:39: install.lockfiles[0]: "../Gemfile.lock" must not contain .. segments',
      },
      {
        name: 'a check without a vendor dir to check',
        lines: [...MINIMAL, 'install: { command: make, check: make -q }'],
        problem:
          '/app/deployer.yml:4:34: install.check: needs install.vendor: only reused dependencies are checked',
      },
      {
        name: 'a vendor dir that is the release itself',
        lines: [...MINIMAL, 'install: { command: make, vendor: ./ }'],
        problem: '/app/deployer.yml:4:35: install.vendor: "./" must name something inside the release',
      },
      {
        name: 'a pidfile that climbs out of deploy_to',
        lines: [...MINIMAL, 'server: { pidfile: ../puma.pid }'],
        problem: '/app/deployer.yml:4:20: server.pidfile: "../puma.pid" must not contain .. segments',
      },
      {
        name: 'a control URL of the wrong kind',
        lines: [...MINIMAL, 'server: { control_url: "http://127.0.0.1:9293" }'],
        problem:
          '/app/deployer.yml:4:24: server.control_url: "http://127.0.0.1:9293" must be a Puma control URL: unix://PATH, tcp://HOST:PORT or ssl://…',
      },
      {
        name: 'an app name with a space',
        lines: ['app: my shop', 'deploy_to: /srv/shop', 'hosts: [local]'],
        problem:
          '/app/deployer.yml:1:6: app: "my shop" must start with a letter or digit and hold only letters, digits, ., _ and -',
      },
      {
        name: 'an empty string',
        lines: ['app: ""', 'deploy_to: /srv/shop', 'hosts: [local]'],
        problem: '/app/deployer.yml:1:6: app: must not be empty',
      },
      {
        name: 'a ~user path',
        lines: [...MINIMAL, 'source: ~deploy/shop'],
        problem:
          '/app/deployer.yml:4:9: source: "~deploy/shop": only ~ and ~/ are expanded; write the full path',
      },
      {
        name: 'an empty host list',
        lines: ['app: shop', 'deploy_to: /srv/shop', 'hosts: []'],
        problem: '/app/deployer.yml:3:8: hosts: must list at least one host',
      },
      {
        name: 'hosts that are not a list',
        lines: ['app: shop', 'deploy_to: /srv/shop', 'hosts: web1'],
        problem:
          '/app/deployer.yml:3:8: hosts: must be a list of hosts: user@host[:port], local, or { name, ssh } mappings',
      },
      {
        name: 'a bad host spec',
        lines: ['app: shop', 'deploy_to: /srv/shop', 'hosts:', '  - deploy@web1:70000'],
        problem: '/app/deployer.yml:4:5: hosts[0]: "deploy@web1:70000" has a port outside 1-65535',
      },
      {
        name: 'a host mapping without a name',
        lines: ['app: shop', 'deploy_to: /srv/shop', 'hosts:', '  - { ssh: deploy@web1 }'],
        problem: '/app/deployer.yml:4:5: hosts[0].name: is required',
      },
      {
        name: 'a host mapping with an unknown key',
        lines: [
          'app: shop',
          'deploy_to: /srv/shop',
          'hosts:',
          '  - { name: web1, ssh: a@web1, deployTo: /srv/x }',
        ],
        problem: '/app/deployer.yml:4:32: hosts[0].deployTo: unknown key; did you mean deploy_to?',
      },
      {
        name: 'a host mapping that names its user twice',
        lines: ['app: shop', 'deploy_to: /srv/shop', 'hosts:', '  - { name: web1, ssh: a@web1, user: b }'],
        problem: '/app/deployer.yml:4:38: hosts[0].user: conflicts with the user in "a@web1"',
      },
      {
        name: 'a host mapping with a port out of range',
        lines: ['app: shop', 'deploy_to: /srv/shop', 'hosts:', '  - { name: web1, ssh: a@web1, port: 0 }'],
        problem: '/app/deployer.yml:4:38: hosts[0].port: must be between 1 and 65535, not 0',
      },
      {
        name: 'a port on a local host',
        lines: ['app: shop', 'deploy_to: /srv/shop', 'hosts:', '  - { name: here, ssh: local, port: 22 }'],
        problem: '/app/deployer.yml:4:37: hosts[0].port: does not apply to a local host',
      },
      {
        name: 'a host without any user',
        lines: ['app: shop', 'deploy_to: /srv/shop', 'hosts: [web1]'],
        problem:
          '/app/deployer.yml:3:9: hosts[0]: has no user to connect as: write user@host, set ssh.user, or set USER in the environment',
      },
      {
        name: 'an invalid ssh.user',
        lines: [...MINIMAL, 'ssh: { user: -oProxyCommand }'],
        problem: '/app/deployer.yml:4:14: ssh.user: "-oProxyCommand" is not a valid user name',
      },
      {
        name: 'a YAML syntax error',
        lines: ['app: shop', 'deploy_to: /srv/shop', 'hosts: [local', 'strategy: parallel'],
        problem:
          '/app/deployer.yml:4:1: YAML syntax: Flow sequence in block collection must be sufficiently indented and end with a ]',
      },
      {
        name: 'a key given twice',
        lines: [...MINIMAL, 'app: other'],
        problem: '/app/deployer.yml:4:1: YAML syntax: Map keys must be unique',
      },
      {
        name: 'two documents',
        lines: [...MINIMAL, '---', 'app: other'],
        problem:
          '/app/deployer.yml:4:1: holds more than one YAML document (a second ---); deployer.yml must be a single document',
      },
      {
        name: 'an empty file',
        lines: ['# nothing yet'],
        problem: '/app/deployer.yml:1:1: the file is empty: it needs at least app, deploy_to and hosts',
      },
      {
        name: 'a file that is a list',
        lines: ['- app: shop'],
        problem:
          '/app/deployer.yml:1:1: the top level must be a mapping with keys such as app, source, exclude',
      },
    ]
    for (const { name, lines, problem } of cases) {
      it(name, () => {
        expect(problems(yaml(...lines), { USER: undefined })).to.deep.equal([problem])
      })
    }
  })

  it('reports every problem at once, in file order', () => {
    const error = configError(
      yaml(
        'app: shop',
        'deploy_to: /etc',
        'keep_release: 3',
        'hosts:',
        '  - deploy@web1:0',
        'strategy: rolling',
        'batch: none',
        'health:',
        '  timeout: 2m',
      ),
    )
    expect(error.problems).to.deep.equal([
      '/app/deployer.yml:2:12: deploy_to: "/etc" is a system directory: use a directory of its own, such as /srv/APP',
      '/app/deployer.yml:3:1: keep_release: unknown key; did you mean keep_releases?',
      '/app/deployer.yml:5:5: hosts[0]: "deploy@web1:0" has a port outside 1-65535',
      '/app/deployer.yml:7:8: batch: must be a whole number, not a string',
      '/app/deployer.yml:9:3: health.url: is required',
    ])
    expect(error.message).to.match(/^\/app\/deployer\.yml has 5 problems:\n {2}\/app\/deployer\.yml:2:12: /)
    expect(error.exitCode).to.equal(ExitCode.config)
  })

  describe('${VAR} expansion', () => {
    it('fills strings, defaults and numbers from the environment', () => {
      const config = parse(
        yaml(
          'app: ${APP}',
          'deploy_to: /srv/${APP}',
          'hosts: ["${DEPLOY_USER:-deploy}@${HOST}"]',
          'concurrency: ${CONCURRENCY}',
          'server:',
          '  control_token: ${TOKEN}',
          '  start: PORT=$${PORT:-3000} bundle exec puma',
        ),
        { ...ENV, APP: 'shop', HOST: 'web1', CONCURRENCY: '4', TOKEN: 's3cret', DEPLOY_USER: '' },
      )
      expect(config.app).to.equal('shop')
      expect(config.deployTo).to.equal('/srv/shop')
      expect(config.hosts[0]).to.include({ name: 'deploy@web1', user: 'deploy', hostname: 'web1' })
      expect(config.concurrency).to.equal(4)
      expect(config.server?.controlToken).to.equal('s3cret')
      expect(config.server?.start).to.equal('PORT=${PORT:-3000} bundle exec puma')
    })

    it('reports an unset variable with its name and key', () => {
      expect(problems(yaml(...MINIMAL, 'server:', '  control_token: ${PUMA_CONTROL_TOKEN}'))).to.deep.equal([
        '/app/deployer.yml:5:18: server.control_token: ${PUMA_CONTROL_TOKEN} is not set: set it in the environment or write ${PUMA_CONTROL_TOKEN:-default}',
      ])
    })

    it('reports a malformed ${', () => {
      expect(problems(yaml(...MINIMAL, 'server: { start: "echo ${1}" }'))).to.deep.equal([
        '/app/deployer.yml:4:18: server.start: has a ${ that is not ${NAME} or ${NAME:-default} (write $${ for a literal ${)',
      ])
    })

    it('reports a variable that expands to nothing', () => {
      expect(
        problems(yaml(...MINIMAL, 'server: { control_token: "${TOKEN}" }'), { ...ENV, TOKEN: '' }),
      ).to.deep.equal(['/app/deployer.yml:4:26: server.control_token: is empty once ${...} is expanded'])
    })

    it('expands without touching $VAR or a literal $${', () => {
      const cases: Array<[string, string]> = [
        ['plain', 'plain'],
        ['${A}', 'a'],
        ['x${A}y${A}', 'xaya'],
        ['${MISSING:-fallback}', 'fallback'],
        ['${EMPTY:-fallback}', 'fallback'],
        ['${A:-fallback}', 'a'],
        ['$A and $${A}', '$A and ${A}'],
      ]
      for (const [text, value] of cases) {
        expect(expandEnv(text, { A: 'a', EMPTY: '' }), text).to.include({ value })
      }
    })

    it('keeps the install commands and the health URL as written when the environment filled them in', () => {
      const config = parse(
        yaml(
          ...MINIMAL,
          'install: { command: "bundle install --token ${TOKEN}", vendor: vendor/bundle, check: "test ${TOKEN}" }',
          'health: { url: "http://127.0.0.1:9292/up?token=${TOKEN}" }',
        ),
        { ...ENV, TOKEN: 's3cret' },
      )
      expect(config.install).to.include({
        command: 'bundle install --token s3cret',
        commandAsWritten: 'bundle install --token ${TOKEN}',
        check: 'test s3cret',
        checkAsWritten: 'test ${TOKEN}',
      })
      expect(config.health).to.include({
        url: 'http://127.0.0.1:9292/up?token=s3cret',
        urlAsWritten: 'http://127.0.0.1:9292/up?token=${TOKEN}',
      })
      const plain = parse(yaml(...MINIMAL, 'install: { command: make }', 'health: { url: "http://h/up" }'))
      expect(plain.install).to.not.have.any.keys('commandAsWritten', 'checkAsWritten')
      expect(plain.health).to.not.have.any.keys('urlAsWritten')
    })

    it('never shows a value that came from the environment', () => {
      const secret = 'hunter 2/../x'
      const env = { ...ENV, SECRET: secret }
      const error = configError(
        yaml(
          'app: ${SECRET}',
          'deploy_to: ${SECRET}',
          'keep_releases: ${SECRET}',
          'hosts: ["${SECRET}", { name: web9, ssh: "${SECRET}", deploy_to: "/srv/${SECRET}" }]',
          'strategy: ${SECRET}',
          'exclude: ["${SECRET}"]',
          'ssh: { user: "${SECRET}", connect_timeout: "${SECRET}" }',
          'server: { control_url: "${SECRET}", pidfile: "${SECRET}" }',
          'health: { url: "${SECRET}", timeout: "${SECRET}" }',
        ),
        env,
      )
      expect(error.problems).to.have.length.greaterThan(12)
      for (const text of [error.message, error.hint ?? '', ...error.problems]) {
        expect(text).not.to.include('hunter')
      }
      expect(error.problems[0]).to.equal(
        '/app/deployer.yml:1:6: app: "${SECRET}" (expanded) must start with a letter or digit and hold only letters, digits, ., _ and -',
      )
    })
  })

  describe('deploy_to safety', () => {
    const bad: Array<[string, string]> = [
      ['/', 'must not be / itself'],
      ['//', 'must not be / itself'],
      ['', 'must not be empty'],
      ['srv/shop', 'must be an absolute path'],
      ['./srv', 'must be an absolute path'],
      ['/srv/../etc', 'must not contain .. segments'],
      ['/srv/shop/..', 'must not contain .. segments'],
      ['/etc', 'is a system directory: use a directory of its own, such as /srv/APP'],
      ['/var', 'is a system directory: use a directory of its own, such as /srv/APP'],
      ['/home', 'is a system directory: use a directory of its own, such as /srv/APP'],
      ['/tmp', 'is a system directory: use a directory of its own, such as /srv/APP'],
      ['/usr', 'is a system directory: use a directory of its own, such as /srv/APP'],
      ['/srv/shop\n', 'must not contain control characters such as newlines'],
      ['/srv/shop\nrm -rf /', 'must not contain control characters such as newlines'],
      ['/srv/sh\0op', 'must not contain control characters such as newlines'],
      ['/srv/shop/', 'must be normalised: no //, no /./ and no trailing /'],
      ['/srv//shop', 'must be normalised: no //, no /./ and no trailing /'],
      ['/srv/./shop', 'must be normalised: no //, no /./ and no trailing /'],
      ['/etc/', 'must be normalised: no //, no /./ and no trailing /'],
    ]
    for (const [deployTo, problem] of bad) {
      it(`rejects ${JSON.stringify(deployTo)}`, () => {
        expect(deployToProblem(deployTo)).to.equal(problem)
      })
    }

    for (const deployTo of [
      '/srv/shop',
      '/var/www/shop',
      '/home/deploy/shop',
      '/tmp/deployer-test',
      '/opt/my app',
    ]) {
      it(`accepts ${JSON.stringify(deployTo)}`, () => {
        expect(deployToProblem(deployTo)).to.equal(undefined)
      })
    }

    it('reports the problem at the key and suggests the normalised path', () => {
      expect(problems(yaml('app: shop', 'deploy_to: /srv//shop/', 'hosts: [local]'))).to.deep.equal([
        '/app/deployer.yml:2:12: deploy_to: "/srv//shop/" must be normalised: no //, no /./ and no trailing /; write /srv/shop',
      ])
      expect(problems(yaml('app: shop', 'deploy_to: "/srv/shop\\nx"', 'hosts: [local]'))).to.deep.equal([
        '/app/deployer.yml:2:12: deploy_to: "/srv/shop\\nx" must not contain control characters such as newlines',
      ])
      expect(problems(yaml('app: shop', "deploy_to: ''", 'hosts: [local]'))).to.deep.equal([
        '/app/deployer.yml:2:12: deploy_to: must not be empty',
      ])
    })

    it('applies the same rule to per-host overrides', () => {
      const text = yaml(
        'app: shop',
        'deploy_to: /srv/shop',
        'hosts:',
        '  - { name: web1, ssh: a@web1, deploy_to: / }',
      )
      expect(problems(text)).to.deep.equal([
        '/app/deployer.yml:4:43: hosts[0].deploy_to: "/" must not be / itself',
      ])
    })
  })

  describe('hosts', () => {
    it('reads strings, local and mappings with overrides and defaults', () => {
      const config = parse(
        yaml(
          'app: shop',
          'deploy_to: /srv/shop',
          'ssh: { user: deploy, host_key: accept-new }',
          'hosts:',
          '  - web1',
          '  - ops@web2:2222',
          '  - local',
          '  - "[::1]:2200"',
          '  - { name: web3.example.com }',
          '  - { name: blue, ssh: 10.0.0.3, user: admin, port: 2022, deploy_to: /srv/shop-blue }',
          '  - { name: here, ssh: local, deploy_to: /srv/shop-local }',
        ),
      )
      const ssh = { ...DEFAULT_SSH, hostKey: 'accept-new' }
      expect(config.hosts).to.deep.equal([
        { name: 'web1', kind: 'ssh', user: 'deploy', hostname: 'web1', port: 22, deployTo: '/srv/shop', ssh },
        {
          name: 'ops@web2:2222',
          kind: 'ssh',
          user: 'ops',
          hostname: 'web2',
          port: 2222,
          deployTo: '/srv/shop',
          ssh,
        },
        { name: 'local', kind: 'local', port: 22, deployTo: '/srv/shop', ssh },
        {
          name: '[::1]:2200',
          kind: 'ssh',
          user: 'deploy',
          hostname: '::1',
          port: 2200,
          deployTo: '/srv/shop',
          ssh,
        },
        {
          name: 'web3.example.com',
          kind: 'ssh',
          user: 'deploy',
          hostname: 'web3.example.com',
          port: 22,
          deployTo: '/srv/shop',
          ssh,
        },
        {
          name: 'blue',
          kind: 'ssh',
          user: 'admin',
          hostname: '10.0.0.3',
          port: 2022,
          deployTo: '/srv/shop-blue',
          ssh,
        },
        { name: 'here', kind: 'local', port: 22, deployTo: '/srv/shop-local', ssh },
      ])
    })

    it('does not show a duplicate name that came from the environment', () => {
      const text = yaml(
        'app: shop',
        'deploy_to: /srv/shop',
        'hosts: ["${HOST}", { name: "${HOST}", ssh: a@b }]',
      )
      expect(problems(text, { ...ENV, HOST: 'secret-host' })).to.deep.equal([
        '/app/deployer.yml:3:20: hosts[1]: the name "${HOST}" (expanded) is also used by hosts[0]; names must be unique',
      ])
    })

    it('takes the user from USER when neither the host nor ssh.user names one', () => {
      expect(parse(yaml('app: shop', 'deploy_to: /srv/shop', 'hosts: [web1]')).hosts[0]?.user).to.equal('me')
    })

    it('reports duplicate names and two entries for one place', () => {
      const text = yaml(
        'app: shop',
        'deploy_to: /srv/shop',
        'hosts:',
        '  - deploy@web1',
        '  - { name: deploy@web1, ssh: deploy@web9 }',
        '  - { name: other, ssh: ops@WEB1 }',
        '  - { name: fine, ssh: ops@web1, deploy_to: /srv/shop-blue }',
      )
      expect(problems(text)).to.deep.equal([
        '/app/deployer.yml:5:5: hosts[1]: the name "deploy@web1" is also used by hosts[0]; names must be unique',
        '/app/deployer.yml:6:5: hosts[2]: deploys to the same machine and deploy_to as hosts[0]',
      ])
    })
  })
})

describe('parseHostSpec', () => {
  const good: Array<[string, ReturnType<typeof parseHostSpec>]> = [
    ['local', { ok: true, spec: { kind: 'local' } }],
    ['web1', { ok: true, spec: { kind: 'ssh', hostname: 'web1' } }],
    ['web1.example.com:2222', { ok: true, spec: { kind: 'ssh', hostname: 'web1.example.com', port: 2222 } }],
    ['deploy@web1', { ok: true, spec: { kind: 'ssh', user: 'deploy', hostname: 'web1' } }],
    [
      'deploy@10.0.0.3:22',
      { ok: true, spec: { kind: 'ssh', user: 'deploy', hostname: '10.0.0.3', port: 22 } },
    ],
    ['[::1]:22', { ok: true, spec: { kind: 'ssh', hostname: '::1', port: 22 } }],
    ['[::1]', { ok: true, spec: { kind: 'ssh', hostname: '::1' } }],
    [
      'deploy@[2001:db8::5]:65535',
      { ok: true, spec: { kind: 'ssh', user: 'deploy', hostname: '2001:db8::5', port: 65535 } },
    ],
    ['fe80::1', { ok: true, spec: { kind: 'ssh', hostname: 'fe80::1' } }],
    ['[fe80::1%eth0]:22', { ok: true, spec: { kind: 'ssh', hostname: 'fe80::1%eth0', port: 22 } }],
    ['localhost', { ok: true, spec: { kind: 'ssh', hostname: 'localhost' } }],
  ]
  for (const [spec, result] of good) {
    it(`reads ${spec}`, () => {
      expect(parseHostSpec(spec)).to.deep.equal(result)
    })
  }

  const bad: Array<[string, string]> = [
    ['', 'is empty'],
    ['web1:0', 'has a port outside 1-65535'],
    ['web1:65536', 'has a port outside 1-65535'],
    ['web1:ssh', 'has a port that is not a number'],
    ['web1:', 'has a port that is not a number'],
    ['web1:-1', 'has a port that is not a number'],
    ['@web1', 'has nothing before the @: write user@host'],
    ['deploy@', 'has no host name'],
    [':22', 'has no host name'],
    ['-oProxyCommand=x', 'has an invalid host name'],
    ['-x@web1', 'has an invalid user name before the @'],
    ['a@b@c', 'has an invalid host name'],
    ['web 1', 'must not contain spaces or control characters'],
    ['web1\n', 'must not contain spaces or control characters'],
    ['[::1', 'opens an IPv6 address with [ but never closes it'],
    ['[::1]22', 'must have nothing but :port after the ]'],
    ['[web1]:22', 'has an invalid IPv6 address between [ and ]'],
    ['[::1]:99999', 'has a port outside 1-65535'],
    ['web1:22:33', 'is not a valid address: write IPv6 addresses as [addr]:port'],
  ]
  for (const [spec, problem] of bad) {
    it(`rejects ${JSON.stringify(spec)}`, () => {
      expect(parseHostSpec(spec)).to.deep.equal({ ok: false, problem })
    })
  }
})

describe('selectHosts', () => {
  const config = parse(
    yaml(
      'app: shop',
      'deploy_to: /srv/shop',
      'hosts: [deploy@web1, deploy@web2, { name: web3, ssh: deploy@10.0.0.3 }]',
    ),
  )
  const names = (hosts: { name: string }[]) => hosts.map((host) => host.name)

  it('selects every host when no name is given', () => {
    expect(names(selectHosts(config, []))).to.deep.equal(['deploy@web1', 'deploy@web2', 'web3'])
  })

  it('selects by name or host name, in config order', () => {
    expect(names(selectHosts(config, ['web3', 'web1']))).to.deep.equal(['deploy@web1', 'web3'])
    expect(names(selectHosts(config, ['deploy@web2', '10.0.0.3']))).to.deep.equal(['deploy@web2', 'web3'])
  })

  it('names the unknown hosts and lists the known ones', () => {
    expect(() => selectHosts(config, ['web1', 'web9', 'db']))
      .to.throw(
        DeployerError,
        '/app/deployer.yml has no host named "web9", "db"; its hosts are deploy@web1, deploy@web2, web3.',
      )
      .with.property('exitCode', ExitCode.usage)
  })
})

describe('loadConfig', () => {
  let dir: string
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'deployer-config-'))
  })
  after(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('reads a file relative to cwd and resolves source against its directory', async () => {
    await writeFile(path.join(dir, 'deployer.yml'), yaml(...MINIMAL, 'source: app'))
    const config = await loadConfig('deployer.yml', { cwd: dir, env: { USER: 'me', HOME: '/home/me' } })
    expect(config.file).to.equal(path.join(dir, 'deployer.yml'))
    expect(config.source).to.equal(path.join(dir, 'app'))
    expect(config.ssh.knownHosts).to.equal('/home/me/.ssh/known_hosts')
  })

  it('reports a missing file with the config exit code', async () => {
    try {
      await loadConfig('nope.yml', { cwd: dir, env: {} })
      expect.fail('expected an error')
    } catch (error) {
      expect(error).to.be.instanceOf(DeployerError)
      expect((error as DeployerError).message).to.equal(
        `There is no config file at ${path.join(dir, 'nope.yml')}.`,
      )
      expect((error as DeployerError).exitCode).to.equal(ExitCode.config)
    }
  })
})
