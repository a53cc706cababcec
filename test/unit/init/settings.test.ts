import { expect } from 'chai'
import { parse } from 'yaml'
import { DeployerError, ExitCode } from '../../../src/errors.js'
import {
  DEFAULT_ACTION,
  defaultActionRef,
  defaultAppName,
  type InitRequest,
  type InitSettings,
  resolveInitSettings,
  templateValues,
  unitName,
  yamlScalar,
} from '../../../src/init/settings.js'

const REQUEST: InitRequest = { dirName: 'shop', hosts: [], port: 9292, config: 'deployer.yml', parts: [] }

function problemsOf(request: Partial<InitRequest>): string {
  try {
    resolveInitSettings({ ...REQUEST, ...request })
  } catch (error) {
    expect(error).to.be.instanceOf(DeployerError)
    expect((error as DeployerError).exitCode).to.equal(ExitCode.usage)
    return (error as DeployerError).message
  }
  throw new Error('expected a DeployerError')
}

describe('resolveInitSettings', () => {
  it('fills in defaults from the directory name, with example hosts to edit', () => {
    expect(resolveInitSettings(REQUEST)).to.deep.equal({
      app: 'shop',
      deployTo: '/srv/shop',
      hosts: ['deploy@web1.example.com', 'deploy@web2.example.com:2222'],
      exampleHosts: true,
      user: 'deploy',
      port: 9292,
      action: DEFAULT_ACTION,
      config: 'deployer.yml',
      parts: [],
    })
  })

  const cases: { name: string; request: Partial<InitRequest>; expected: Partial<InitSettings> }[] = [
    {
      name: 'keeps the hosts given, and takes the user from the first that names one',
      request: { hosts: ['local', 'app@web1:2222', 'ops@web2'] },
      expected: { hosts: ['local', 'app@web1:2222', 'ops@web2'], exampleHosts: false, user: 'app' },
    },
    {
      name: 'prefers --user to the hosts',
      request: { hosts: ['app@web1'], user: 'www' },
      expected: { user: 'www' },
    },
    {
      name: 'uses deploy when no host names a user',
      request: { hosts: ['web1', 'local'] },
      expected: { user: 'deploy' },
    },
    {
      name: 'names the example hosts after --user',
      request: { user: 'www' },
      expected: { hosts: ['www@web1.example.com', 'www@web2.example.com:2222'] },
    },
    {
      name: 'derives deploy_to from --app',
      request: { app: 'blog' },
      expected: { app: 'blog', deployTo: '/srv/blog' },
    },
    {
      name: 'keeps --deploy-to',
      request: { deployTo: '/var/www/shop-2' },
      expected: { deployTo: '/var/www/shop-2' },
    },
    {
      name: 'normalises the config path',
      request: { config: 'deploy/./prod.yml' },
      expected: { config: 'deploy/prod.yml' },
    },
    {
      name: 'keeps the parts in a fixed order',
      request: { parts: ['github-actions', 'puma'] },
      expected: { parts: ['puma', 'github-actions'] },
    },
    { name: 'accepts a local action', request: { action: './' }, expected: { action: './' } },
    {
      name: 'accepts an action in a subdirectory',
      request: { action: 'acme/tools/deployer@v1.2' },
      expected: { action: 'acme/tools/deployer@v1.2' },
    },
  ]
  for (const { name, request, expected } of cases) {
    it(name, () => {
      expect(resolveInitSettings({ ...REQUEST, ...request })).to.deep.include(expected)
    })
  }

  const problems: { name: string; request: Partial<InitRequest>; message: string }[] = [
    {
      name: 'refuses an app name with a space',
      request: { app: 'my shop' },
      message: '--app "my shop" must start with a letter or digit',
    },
    { name: 'refuses an app name starting with -', request: { app: '-x' }, message: '--app "-x"' },
    {
      name: 'refuses a relative deploy_to',
      request: { deployTo: 'srv/shop' },
      message: '--deploy-to "srv/shop" must be an absolute path.',
    },
    { name: 'refuses / as deploy_to', request: { deployTo: '/' }, message: 'must not be / itself' },
    { name: 'refuses a system directory', request: { deployTo: '/etc' }, message: 'is a system directory' },
    {
      name: 'refuses deploy_to characters that YAML, Ruby or systemd would read',
      request: { deployTo: '/srv/my shop' },
      message: '--deploy-to "/srv/my shop" may hold only letters, digits, /, ., _ and - here.',
    },
    { name: 'refuses % (a systemd specifier)', request: { deployTo: '/srv/%i' }, message: 'may hold only' },
    {
      name: 'refuses a host it cannot parse',
      request: { hosts: ['web1:port'] },
      message: '--host "web1:port" has a port that is not a number.',
    },
    {
      name: 'refuses a bad user',
      request: { user: '-root' },
      message: '--user "-root" is not a valid user name.',
    },
    {
      name: 'refuses port 0',
      request: { port: 0 },
      message: '--port 0 must be a whole number from 1 to 65535.',
    },
    {
      name: 'refuses an action without a ref',
      request: { action: 'acme/deployer' },
      message: '--action "acme/deployer" must be owner/repo@ref',
    },
    {
      name: 'refuses a config outside --dir',
      request: { config: '../deployer.yml' },
      message: 'must stay inside --dir',
    },
    {
      name: 'refuses an absolute config path',
      request: { config: '/etc/deployer.yml' },
      message: '--config "/etc/deployer.yml" may hold only',
    },
    {
      name: 'refuses a config path that is a directory',
      request: { config: 'deploy/' },
      message: 'must name a file',
    },
  ]
  for (const { name, request, message } of problems) {
    it(name, () => {
      expect(problemsOf(request)).to.contain(message)
    })
  }

  it('lists every problem in one error', () => {
    const message = problemsOf({ app: 'a b', deployTo: 'rel', user: '!' })
    expect(message).to.contain('--app').and.contain('--deploy-to').and.contain('--user')
  })
})

describe('defaultActionRef', () => {
  const cases: { repository: string | { url?: string } | undefined; expected: string | undefined }[] = [
    {
      repository: { url: 'git+https://github.com/deployer-cli/deployer.git' },
      expected: 'deployer-cli/deployer@v1.2.3',
    },
    { repository: 'https://github.com/acme/deployer', expected: 'acme/deployer@v1.2.3' },
    { repository: 'https://github.com/acme/deployer.git/', expected: 'acme/deployer@v1.2.3' },
    { repository: 'git@github.com:acme/deployer.git', expected: 'acme/deployer@v1.2.3' },
    { repository: 'ssh://git@github.com/acme/deploy.er.git', expected: 'acme/deploy.er@v1.2.3' },
    { repository: 'github:acme/deployer', expected: 'acme/deployer@v1.2.3' },
    { repository: 'acme/deployer', expected: 'acme/deployer@v1.2.3' },
    { repository: 'https://gitlab.com/acme/deployer.git', expected: undefined },
    { repository: 'https://github.com/acme', expected: undefined },
    { repository: { url: undefined }, expected: undefined },
    { repository: undefined, expected: undefined },
  ]
  for (const { repository, expected } of cases) {
    it(`${JSON.stringify(repository)} -> ${expected}`, () => {
      expect(defaultActionRef({ repository, version: '1.2.3' })).to.equal(expected)
    })
  }

  it('names no ref without a version', () => {
    expect(defaultActionRef({ repository: 'acme/deployer' })).to.equal(undefined)
  })

  it("is this package's own repository at its version tag, which init accepts", async () => {
    const { readFile } = await import('node:fs/promises')
    const pkg = JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8'))
    const ref = defaultActionRef(pkg)
    expect(ref).to.equal(`deployer-cli/deployer@v${pkg.version}`)
    expect(resolveInitSettings({ ...REQUEST, action: ref }).action).to.equal(ref)
  })
})

describe('defaultAppName', () => {
  const cases: [string, string][] = [
    ['shop', 'shop'],
    ['My Shop', 'my-shop'],
    ['shop.example.com', 'shop.example.com'],
    ['__app__', 'app__'],
    ['--', 'app'],
    ['日本', 'app'],
  ]
  for (const [dir, expected] of cases) {
    it(`makes ${JSON.stringify(dir)} into ${expected}`, () => {
      expect(defaultAppName(dir)).to.equal(expected)
    })
  }
})

describe('yamlScalar', () => {
  const cases = [
    'deploy@web1',
    '[::1]:2222',
    'true',
    'null',
    '123',
    'a: b',
    '# x',
    '- x',
    "it's",
    'x'.repeat(200),
  ]
  for (const value of cases) {
    it(`writes ${JSON.stringify(value.slice(0, 20))} so that it reads back as the same string`, () => {
      const text = yamlScalar(value)
      expect(text).to.not.contain('\n')
      expect(parse(`key: ${text}`)).to.deep.equal({ key: value })
    })
  }

  it('leaves plain host names unquoted', () => {
    expect(yamlScalar('deploy@web2.example.com:2222')).to.equal('deploy@web2.example.com:2222')
  })
})

describe('templateValues', () => {
  const settings = (request: Partial<InitRequest>) => resolveInitSettings({ ...REQUEST, ...request })

  it('writes the hosts as a YAML list, quoting where YAML needs it', () => {
    const values = templateValues(settings({ hosts: ['deploy@web1', '[::1]:2222'] }))
    expect(parse(`hosts:\n${values.hosts}\n`)).to.deep.equal({ hosts: ['deploy@web1', '[::1]:2222'] })
  })

  it('starts Puma through systemd and keeps full_restart when the units are written', () => {
    const values = templateValues(settings({ parts: ['systemd'] }))
    expect(values.start).to.equal('sudo systemctl start shop-puma.service')
    expect(values.unless_systemd).to.equal('')
  })

  it('starts Puma itself with the env file loaded, and comments out full_restart, without systemd', () => {
    const values = templateValues(settings({}))
    expect(parse(`start: ${values.start}`).start).to.equal(
      'set -a; [ ! -r /etc/shop/env ] || . /etc/shop/env; set +a; exec bundle exec puma -C config/puma.rb',
    )
    expect(values.unless_systemd).to.equal('# ')
  })

  it('passes the validated values through as they are', () => {
    const values = templateValues(settings({ app: 'blog', deployTo: '/srv/b', user: 'www', port: 3000 }))
    expect(values).to.include({
      app: 'blog',
      deploy_to: '/srv/b',
      user: 'www',
      port: '3000',
      config: 'deployer.yml',
    })
  })
})

describe('unitName', () => {
  it('names the units after the app', () => {
    expect(unitName('shop')).to.equal('shop-puma')
  })
})
