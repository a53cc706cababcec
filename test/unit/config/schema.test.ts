import { expect } from 'chai'
import { DEFAULTS, parseConfig } from '../../../src/config/load.js'

describe('schema: the table of defaults', () => {
  it('is what a config that sets nothing optional gets', () => {
    const text = [
      'app: shop',
      'deploy_to: /srv/shop',
      'hosts: [deploy@web1]',
      'install: { command: bundle install }',
      'server: { start: bundle exec puma }',
      'health: { url: "http://127.0.0.1:3000/up" }',
    ].join('\n')
    const config = parseConfig(text, '/app/deployer.yml', {}, '/home/me')
    expect(config).to.deep.include({
      exclude: DEFAULTS.exclude,
      keepReleases: DEFAULTS.keepReleases,
      strategy: DEFAULTS.strategy,
      concurrency: DEFAULTS.concurrency,
      batch: DEFAULTS.batch,
      canaryThen: DEFAULTS.canaryThen,
      onFailure: DEFAULTS.onFailure,
      shared: DEFAULTS.shared,
    })
    expect(config.hosts[0]?.port).to.equal(DEFAULTS.port)
    expect(config.ssh).to.deep.include({
      knownHosts: `/home/me/${DEFAULTS.ssh.knownHosts}`,
      hostKey: DEFAULTS.ssh.hostKey,
      connectTimeout: DEFAULTS.ssh.connectTimeout,
      config: DEFAULTS.ssh.config,
    })
    expect(config.install?.lockfiles).to.deep.equal(DEFAULTS.install.lockfiles)
    expect(config.server).to.deep.include({
      kind: DEFAULTS.server.kind,
      config: DEFAULTS.server.config,
      pidfile: DEFAULTS.server.pidfile,
      restart: DEFAULTS.server.restart,
      envFiles: DEFAULTS.server.envFiles,
    })
    expect(config.health?.timeout).to.equal(DEFAULTS.health.timeout)
  })

  it('hands out copies, so a config cannot change the defaults of the next one', () => {
    const text = 'app: shop\ndeploy_to: /srv/shop\nhosts: [local]\n'
    const config = parseConfig(text, '/app/deployer.yml', {}, '/home/me')
    config.exclude.push('more')
    expect(DEFAULTS.exclude).to.not.include('more')
  })
})
