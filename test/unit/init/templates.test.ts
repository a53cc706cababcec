// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the workflow is about GitHub's ${{ }} syntax
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { expect } from 'chai'
import { parse } from 'yaml'
import { parseConfig } from '../../../src/config/load.js'
import { initFiles } from '../../../src/init/plan.js'
import { checkRenderedConfig } from '../../../src/init/run.js'
import {
  INIT_PARTS,
  type InitRequest,
  resolveInitSettings,
  templateValues,
} from '../../../src/init/settings.js'
import { placeholdersIn, renderTemplate } from '../../../src/init/template.js'

const TEMPLATES = fileURLToPath(new URL('../../../templates/', import.meta.url))
const REQUEST: InitRequest = { dirName: 'shop', hosts: [], port: 9292, config: 'deployer.yml', parts: [] }

async function render(template: string, request: Partial<InitRequest> = {}): Promise<string> {
  const settings = resolveInitSettings({ ...REQUEST, ...request })
  return renderTemplate(await readFile(`${TEMPLATES}${template}`, 'utf8'), templateValues(settings))
}

describe('templates', () => {
  const all = resolveInitSettings({ ...REQUEST, parts: INIT_PARTS })
  for (const file of initFiles(all)) {
    it(`${file.template} uses only placeholders that have values`, async () => {
      const text = await readFile(`${TEMPLATES}${file.template}`, 'utf8')
      const names = placeholdersIn(text)
      expect(names).to.not.be.empty
      expect(names.filter((name) => !(name in templateValues(all)))).to.deep.equal([])
    })
  }
})

describe('templates/deployer.yml rendered', () => {
  const ENV = { PUMA_CONTROL_TOKEN: 'token', USER: 'me' }
  const cases: { name: string; request: Partial<InitRequest> }[] = [
    { name: 'with the defaults', request: {} },
    { name: 'with systemd', request: { parts: ['systemd'] } },
    {
      name: 'with hosts YAML would misread unquoted',
      request: { hosts: ['local', '[2001:db8::5]:2222', 'true', 'deploy@10.0.0.3:22'], user: 'null' },
    },
    { name: 'with an app name YAML would read as a boolean', request: { app: 'true', deployTo: '/srv/on' } },
  ]
  for (const { name, request } of cases) {
    it(`validates ${name}`, async () => {
      const text = await render('deployer.yml', request)
      const settings = resolveInitSettings({ ...REQUEST, ...request })
      const config = parseConfig(text, '/app/deployer.yml', ENV, '/home/me')
      expect(config.app).to.equal(settings.app)
      expect(config.deployTo).to.equal(settings.deployTo)
      expect(config.hosts.map((host) => host.name)).to.deep.equal(settings.hosts)
      // Hosts that name no user log in as ssh.user, which init fills in.
      for (const host of config.hosts.filter((h) => h.kind === 'ssh' && !h.name.includes('@')))
        expect(host.user).to.equal(settings.user)
      expect(config.install?.command).to.match(
        /bundle config set --local path vendor\/bundle && bundle install$/,
      )
      expect(() => checkRenderedConfig(text, '/app/deployer.yml', settings)).to.not.throw()
    })
  }

  it('points server at the paths the generated puma.rb uses', async () => {
    const config = parseConfig(await render('deployer.yml'), '/app/deployer.yml', ENV, '/home/me')
    expect(config.server).to.deep.include({
      config: 'config/puma.rb',
      pidfile: 'shared/tmp/pids/puma.pid',
      controlUrl: 'unix:///srv/shop/shared/tmp/sockets/pumactl.sock',
      controlToken: 'token',
      envFiles: ['/etc/shop/env'],
    })
    const puma = await render('puma.rb')
    expect(puma).to.contain('deploy_to = "/srv/shop"')
    expect(puma).to.contain('"unix://#{shared}/tmp/sockets/pumactl.sock"')
    expect(puma).to.contain('pidfile "#{shared}/tmp/pids/puma.pid"')
  })

  it('restarts through systemd only when the units are written', async () => {
    const plain = parseConfig(await render('deployer.yml'), '/app/deployer.yml', ENV, '/home/me')
    expect(plain.server?.fullRestart).to.equal(undefined)
    expect(plain.server?.start).to.contain('exec bundle exec puma -C config/puma.rb')
    const systemd = parseConfig(
      await render('deployer.yml', { parts: ['systemd'] }),
      '/app/deployer.yml',
      ENV,
      '/home/me',
    )
    expect(systemd.server?.start).to.equal('sudo systemctl start shop-puma.service')
    expect(systemd.server?.fullRestart).to.equal('sudo systemctl restart shop-puma.service')
  })

  it('leaves the health check commented out, on the same port as Puma', async () => {
    const text = await render('deployer.yml', { port: 3000 })
    expect(parseConfig(text, '/app/deployer.yml', ENV, '/home/me').health).to.equal(undefined)
    expect(text).to.contain('# url: http://127.0.0.1:3000/health')
  })

  it('documents every key it accepts', async () => {
    const text = await render('deployer.yml')
    for (const key of [
      'identity',
      'connect_timeout',
      'env_files',
      'full_restart',
      'control_url',
      'on_failure',
      'expect',
      'check',
    ]) {
      expect(text).to.match(new RegExp(`^\\s*#?\\s*${key}:`, 'm'), key)
    }
  })
})

describe('checkRenderedConfig', () => {
  it('throws, naming the problem, for a config the loader rejects', () => {
    const settings = resolveInitSettings(REQUEST)
    expect(() => checkRenderedConfig('app: shop\n', '/app/deployer.yml', settings)).to.throw(
      Error,
      /does not validate: .*deploy_to: is required/s,
    )
  })
})

describe('templates/github/deploy.yml rendered', () => {
  it('runs the deployer action with the config, the command and the SSH secrets', async () => {
    const workflow = parse(
      await render('github/deploy.yml', { config: 'deploy/prod.yml', action: 'acme/deployer@v1' }),
    )
    expect(workflow.name).to.equal('Deploy shop')
    expect(workflow.concurrency).to.deep.equal({ group: 'deploy-shop', 'cancel-in-progress': false })
    const step = workflow.jobs.deploy.steps.find((s: { uses?: string }) => s.uses === 'acme/deployer@v1')
    expect(step.with).to.deep.equal({
      config: 'deploy/prod.yml',
      command: 'release',
      'ssh-private-key': '${{ secrets.DEPLOY_SSH_KEY }}',
      'known-hosts': '${{ secrets.DEPLOY_KNOWN_HOSTS }}',
    })
    expect(step.env).to.deep.equal({ PUMA_CONTROL_TOKEN: '${{ secrets.PUMA_CONTROL_TOKEN }}' })
    const summary = workflow.jobs.deploy.steps.at(-1)
    expect(summary.env).to.deep.equal({
      RELEASE: `\${{ steps.${step.id}.outputs.release }}`,
      ROLLED_BACK: `\${{ steps.${step.id}.outputs.rolled-back }}`,
    })
  })
})
