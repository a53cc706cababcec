import { expect } from 'chai'
import type { ServerSettings } from '../../../src/config/types.js'
import { layoutFor } from '../../../src/release/layout.js'
import { PumaPaths } from '../../../src/restart/puma-paths.js'

const server = (settings: Partial<ServerSettings>): ServerSettings =>
  ({
    kind: 'puma',
    config: 'config/puma.rb',
    pidfile: 'shared/tmp/pids/puma.pid',
    restart: 'auto',
    envFiles: [],
    ...settings,
  }) as ServerSettings

describe('PumaPaths', () => {
  const layout = layoutFor('/srv/shop')

  const pidfiles: [string, string][] = [
    ['shared/tmp/pids/puma.pid', '/srv/shop/shared/tmp/pids/puma.pid'],
    ['/run/puma/shop.pid', '/run/puma/shop.pid'],
  ]
  for (const [pidfile, expected] of pidfiles) {
    it(`resolves the pidfile ${pidfile} to ${expected}`, () => {
      expect(new PumaPaths(layout, server({ pidfile })).pidfile).to.equal(expected)
    })
  }

  const controlUrls: [string | undefined, string | undefined][] = [
    [undefined, undefined],
    ['unix://shared/tmp/sockets/pumactl.sock', 'unix:///srv/shop/shared/tmp/sockets/pumactl.sock'],
    ['unix:///run/pumactl.sock', 'unix:///run/pumactl.sock'],
    ['unix://@pumactl', 'unix://@pumactl'],
    ['tcp://127.0.0.1:9293', 'tcp://127.0.0.1:9293'],
  ]
  for (const [controlUrl, expected] of controlUrls) {
    it(`resolves the control URL ${controlUrl} to ${expected}`, () => {
      const settings = server(controlUrl === undefined ? {} : { controlUrl })
      expect(new PumaPaths(layout, settings).controlUrl).to.equal(expected)
    })
  }

  it('resolves env files of both kinds against deploy_to', () => {
    const paths = new PumaPaths(
      layout,
      server({ envFiles: ['shared/.env', '/etc/shop.env'], pumaEnvFiles: ['.env.puma'] }),
    )
    expect(paths.envFiles).to.deep.equal(['/srv/shop/shared/.env', '/etc/shop.env'])
    expect(paths.pumaEnvFiles).to.deep.equal(['/srv/shop/.env.puma'])
  })

  it("lists deployer's start log, stdout_redirect and server.start's redirects as the logs to show", () => {
    const paths = new PumaPaths(layout, server({ start: 'bundle exec puma --redirect-stderr log/err.log' }))
    expect(paths.logs('log/puma.log')).to.deep.equal([
      '/srv/shop/shared/log/puma.deployer.log',
      '/srv/shop/current/log/puma.log',
      '/srv/shop/current/log/err.log',
    ])
  })
})
