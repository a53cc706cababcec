import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect } from 'chai'
import {
  firstCommandWord,
  hostFactsCommand,
  parseHostFacts,
  requiredTools,
} from '../../../src/check/host-facts.js'
import { LocalTransport } from '../../../src/transport/local.js'
import { SERVER } from './fixtures.js'

const hostileName = `shop $(touch PWNED) \`touch PWNED2\`; touch PWNED3 'q' "d" \n nl`

describe('firstCommandWord', () => {
  const table: [string, string | null][] = [
    ['bundle install', 'bundle'],
    ['  bundle   install --deployment', 'bundle'],
    ['RAILS_ENV=production BUNDLE_WITHOUT=dev bundle install', 'bundle'],
    ['exec puma -C config/puma.rb', 'puma'],
    ['env -i PATH=/usr/bin bundle exec puma', 'bundle'],
    ['nohup bin/setup', 'bin/setup'],
    ['/usr/local/bin/bundle install', '/usr/local/bin/bundle'],
    ['"bundle" install', 'bundle'],
    ['set -a; . /etc/shop/env; set +a; exec puma', 'set'],
    ['(cd app && make)', 'cd'],
    ['$BUNDLE install', null],
    ['$(which bundle) install', null],
    ['', null],
    ['FOO=1', null],
  ]
  for (const [command, word] of table) {
    it(`finds ${JSON.stringify(word)} in ${JSON.stringify(command)}`, () => {
      expect(firstCommandWord(command)).to.equal(word)
    })
  }
})

describe('requiredTools', () => {
  it('needs the base tools without install or server', () => {
    expect(requiredTools({}).map((tool) => tool.name)).to.deep.equal(['sh', 'tar', 'cp', 'xargs', 'find'])
  })

  it('adds the install program, ruby and the start program once each', () => {
    const tools = requiredTools({
      install: { command: 'bundle install', lockfiles: [] },
      server: { ...SERVER, start: 'bundle exec puma' },
    })
    expect(tools.map((tool) => [tool.name, tool.from])).to.deep.equal([
      ['sh', undefined],
      ['tar', undefined],
      ['cp', undefined],
      ['xargs', undefined],
      ['find', undefined],
      ['bundle', 'install.command'],
      ['ruby', undefined],
    ])
  })

  it('marks a program inside the release, which the host cannot have yet', () => {
    const tools = requiredTools({ install: { command: './bin/setup', lockfiles: [] } })
    expect(tools.at(-1)).to.deep.include({ name: './bin/setup', from: 'install.command', inRelease: true })
  })
})

describe('parseHostFacts', () => {
  it('reads every tagged line', () => {
    const facts = parseHostFacts(
      [
        'user\tdeploy',
        'target\t/srv',
        'target-dir',
        'sub\treleases\tno',
        'fs\t1000 4096 50 100 ext2/ext3',
        'tool\tsh\t/bin/sh',
        'tool\tbundle\t',
        'version\ttar\ttar (GNU tar) 1.34',
        'version\tcp\t',
        'noise from a login script',
      ].join('\n'),
      '/srv/shop',
    )
    expect(facts).to.deep.equal({
      user: 'deploy',
      danglingLink: false,
      target: '/srv',
      targetIsDir: true,
      targetWritable: false,
      subdirs: [{ name: 'releases', writable: false }],
      fs: { availableBytes: 4_096_000, freeInodes: 50, totalInodes: 100, type: 'ext2/ext3' },
      tools: { sh: '/bin/sh', bundle: null },
      versions: { tar: 'tar (GNU tar) 1.34', cp: null },
    })
  })

  it('takes deploy_to itself as the target when it exists', () => {
    expect(parseHostFacts('target-self\ntarget-dir\n', '/srv/shop')).to.deep.include({
      target: '/srv/shop',
      targetIsDir: true,
    })
  })

  it('leaves the filesystem unknown when stat -f printed nothing', () => {
    expect(parseHostFacts('fs\t\n', '/srv/shop').fs).to.equal(null)
  })
})

describe('hostFactsCommand (run through /bin/sh)', () => {
  const local = new LocalTransport()
  let sandbox: string

  beforeEach(async () => {
    sandbox = await mkdtemp(join(tmpdir(), 'deployer-facts-'))
  })
  afterEach(async () => {
    await rm(sandbox, { recursive: true, force: true })
  })

  async function factsOf(deployTo: string, tools: string[] = ['sh', 'tar']) {
    const result = await local.exec(hostFactsCommand(deployTo, tools))
    expect(result.code, result.stderr).to.equal(0)
    return parseHostFacts(result.stdout, deployTo)
  }

  it('reads an existing deploy_to and its subdirectories, and creates nothing', async () => {
    const deployTo = join(sandbox, hostileName)
    await mkdir(join(deployTo, 'releases'), { recursive: true })
    await mkdir(join(deployTo, 'shared'))
    const facts = await factsOf(deployTo, ['sh', 'tar', `x $(touch ${join(sandbox, 'PWNED4')})`])
    expect(facts).to.deep.include({ target: deployTo, targetIsDir: true, targetWritable: true })
    expect(facts.subdirs).to.deep.equal([
      { name: 'releases', writable: true },
      { name: 'shared', writable: true },
    ])
    expect(facts.fs?.availableBytes).to.be.greaterThan(0)
    expect(facts.tools.sh).to.match(/\/sh$/)
    expect(facts.versions.tar).to.contain('GNU tar')
    expect(await readdir(sandbox)).to.deep.equal([hostileName])
    expect((await readdir(deployTo)).sort()).to.deep.equal(['releases', 'shared'])
    expect(await readdir(process.cwd())).to.not.include('PWNED')
  })

  it('walks up to the nearest existing parent of a missing deploy_to', async () => {
    const facts = await factsOf(join(sandbox, 'srv', hostileName, 'app'))
    expect(facts).to.deep.include({ target: sandbox, targetIsDir: true, danglingLink: false })
    expect(await readdir(sandbox)).to.deep.equal([])
  })

  it('stops at a file in the way', async () => {
    await writeFile(join(sandbox, 'srv'), '')
    const facts = await factsOf(join(sandbox, 'srv', 'app'))
    expect(facts).to.deep.include({ target: join(sandbox, 'srv'), targetIsDir: false })
  })

  it('notices a deploy_to that is a symlink to nothing', async () => {
    await symlink(join(sandbox, 'gone'), join(sandbox, 'app'))
    const facts = await factsOf(join(sandbox, 'app'))
    expect(facts).to.deep.include({ danglingLink: true, target: sandbox })
  })

  it('reports a tool it cannot find as missing', async () => {
    const facts = await factsOf(sandbox, ['sh', 'deployer-no-such-tool'])
    expect(facts.tools).to.deep.equal({ sh: facts.tools.sh, 'deployer-no-such-tool': null })
  })
})
