import { expect } from 'chai'
import { ExitCode } from '../../../src/errors.js'
import {
  type InitFile,
  initFiles,
  nextSteps,
  type PlannedWrite,
  planWrites,
  refusalError,
} from '../../../src/init/plan.js'
import { type InitPart, type InitRequest, resolveInitSettings } from '../../../src/init/settings.js'

const REQUEST: InitRequest = { dirName: 'shop', hosts: [], port: 9292, config: 'deployer.yml', parts: [] }
const settings = (request: Partial<InitRequest> = {}) => resolveInitSettings({ ...REQUEST, ...request })

describe('initFiles', () => {
  const cases: { parts: InitPart[]; config?: string; expected: InitFile[] }[] = [
    { parts: [], expected: [{ template: 'deployer.yml', path: 'deployer.yml' }] },
    {
      parts: [],
      config: 'deploy/production.yml',
      expected: [{ template: 'deployer.yml', path: 'deploy/production.yml' }],
    },
    {
      parts: ['puma'],
      expected: [
        { template: 'deployer.yml', path: 'deployer.yml' },
        { template: 'puma.rb', path: 'config/puma.rb' },
      ],
    },
    {
      parts: ['systemd'],
      expected: [
        { template: 'deployer.yml', path: 'deployer.yml' },
        { template: 'systemd/puma.service', path: 'config/systemd/shop-puma.service' },
        { template: 'systemd/puma.socket', path: 'config/systemd/shop-puma.socket' },
      ],
    },
    {
      parts: ['github-actions', 'puma', 'systemd'],
      expected: [
        { template: 'deployer.yml', path: 'deployer.yml' },
        { template: 'puma.rb', path: 'config/puma.rb' },
        { template: 'systemd/puma.service', path: 'config/systemd/shop-puma.service' },
        { template: 'systemd/puma.socket', path: 'config/systemd/shop-puma.socket' },
        { template: 'github/deploy.yml', path: '.github/workflows/deploy.yml' },
      ],
    },
  ]
  for (const { parts, config, expected } of cases) {
    it(`lists ${expected.length} file(s) for [${parts.join(', ')}]${config ? ` with --config ${config}` : ''}`, () => {
      expect(initFiles(settings({ parts, ...(config ? { config } : {}) }))).to.deep.equal(expected)
    })
  }
})

describe('planWrites', () => {
  const files: InitFile[] = [
    { template: 'deployer.yml', path: 'deployer.yml' },
    { template: 'puma.rb', path: 'config/puma.rb' },
  ]
  const cases: { name: string; existing: string[]; force: boolean; expected: PlannedWrite['status'][] }[] = [
    {
      name: 'creates every file in an empty directory',
      existing: [],
      force: false,
      expected: ['create', 'create'],
    },
    {
      name: 'refuses a file that exists',
      existing: ['config/puma.rb'],
      force: false,
      expected: ['create', 'refuse'],
    },
    {
      name: 'overwrites files that exist with --force',
      existing: ['deployer.yml', 'config/puma.rb'],
      force: true,
      expected: ['overwrite', 'overwrite'],
    },
    {
      name: 'creates the others with --force',
      existing: ['deployer.yml'],
      force: true,
      expected: ['overwrite', 'create'],
    },
    {
      name: 'ignores existing files it does not write',
      existing: ['Gemfile'],
      force: false,
      expected: ['create', 'create'],
    },
  ]
  for (const { name, existing, force, expected } of cases) {
    it(name, () => {
      const plan = planWrites(files, new Set(existing), force)
      expect(plan.map((file) => file.status)).to.deep.equal(expected)
      expect(plan.map((file) => file.path)).to.deep.equal(files.map((file) => file.path))
    })
  }
})

describe('refusalError', () => {
  const plan = (...statuses: PlannedWrite['status'][]): PlannedWrite[] =>
    statuses.map((status, index) => ({ template: 't', path: `f${index}`, status }))

  it('is undefined when every file may be written', () => {
    expect(refusalError(plan('create', 'overwrite'), '/app')).to.equal(undefined)
  })

  it('names every refused file, says nothing was written, and hints at --force', () => {
    const error = refusalError(plan('create', 'refuse', 'refuse'), '/app')
    expect(error?.message).to.equal(
      'deployer init would overwrite 2 files that exist in /app: f1, f2. Nothing was written.',
    )
    expect(error?.hint).to.contain('--force')
    expect(error?.exitCode).to.equal(ExitCode.usage)
  })

  it('speaks of one file in the singular', () => {
    expect(refusalError(plan('refuse'), '/app')?.message).to.contain(
      'overwrite a file that exists in /app: f0.',
    )
  })
})

describe('nextSteps', () => {
  it('asks to edit the example hosts, then check, then release', () => {
    const steps = nextSteps(settings())
    expect(steps[0]).to.contain('replace the example hosts')
    expect(steps.at(-2)).to.equal(
      'Run deployer check to test SSH, deploy_to and Puma on every host without changing anything.',
    )
    expect(steps.at(-1)).to.equal('Run deployer release for the first release.')
  })

  it('passes a non-default config path to the commands', () => {
    const steps = nextSteps(settings({ config: 'deploy/prod.yml', hosts: ['deploy@web1'] }))
    expect(steps[0]).to.equal('Review deploy/prod.yml: hosts, shared files, install and server settings.')
    expect(steps.at(-1)).to.equal('Run deployer release --config deploy/prod.yml for the first release.')
  })

  it('names the control token and where it goes', () => {
    expect(nextSteps(settings()).join('\n')).to.contain('PUMA_CONTROL_TOKEN=<token> in /etc/shop/env')
  })

  it('asks about an existing puma.rb only when it does not write one', () => {
    expect(nextSteps(settings()).join('\n')).to.contain('directory "/srv/shop/current"')
    expect(nextSteps(settings({ parts: ['puma'] })).join('\n')).to.not.contain('directory "')
  })

  it('says how to install the units only with systemd', () => {
    expect(nextSteps(settings({ parts: ['systemd'] })).join('\n')).to.contain(
      'sudo systemctl enable shop-puma.socket shop-puma.service',
    )
    expect(nextSteps(settings()).join('\n')).to.not.contain('systemctl')
  })

  it('lists the workflow secrets, and the OWNER to replace only for the default action', () => {
    const workflow = nextSteps(settings({ parts: ['github-actions'] })).join('\n')
    expect(workflow).to.contain('DEPLOY_SSH_KEY, DEPLOY_KNOWN_HOSTS and PUMA_CONTROL_TOKEN')
    expect(workflow).to.contain('Replace OWNER')
    const own = nextSteps(settings({ parts: ['github-actions'], action: 'acme/deployer@v1' })).join('\n')
    expect(own).to.not.contain('OWNER')
  })
})
