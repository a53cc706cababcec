import { expect } from 'chai'
import { ExitCode } from '../../../src/errors.js'
import { failedOnBothReleases, pumaLogs, tcpPortsOf, VerifyError } from '../../../src/restart/restart-host.js'

describe('VerifyError', () => {
  it('points at the boot error when Puma did not come up on the release', () => {
    const log = '== /srv/shop/shared/log/puma.log\nRuntimeError: boom'
    const error = new VerifyError('web1', 'the phased restart', 'worker 0 keeps failing to boot', log)
    expect(error.exitCode).to.equal(ExitCode.verify)
    expect(error.stage).to.equal('restart')
    expect(error.message).to.contain('RuntimeError: boom')
    expect(error.hint).to.contain('its boot error is above')
  })

  it('never points at a boot error above when no log line could be shown', () => {
    const error = new VerifyError('web1', 'the phased restart', 'worker 0 keeps failing to boot', '')
    expect(error.hint).to.not.contain('above')
    expect(error.hint).to.contain('stdout_redirect')
  })

  it('points at health.url and health.expect when the health check failed, not at a boot error', () => {
    const error = new VerifyError('web1', 'the health check of http://127.0.0.1/', 'HTTP 503', '', 'health')
    expect(error.stage).to.equal('health')
    expect(error.hint).to.contain('health.expect').and.not.contain('boot error')
  })
})

describe('failedOnBothReleases', () => {
  const failure = new VerifyError(
    'web1',
    'the health check of http://127.0.0.1/',
    'HTTP 200, body without "ok": release=5',
    '',
    'health',
  )

  it('tells the new release failure and that the release gone back to fails the same check', () => {
    const error = failedOnBothReleases(failure, 3, 'HTTP 200, body without "ok": release=3')
    expect(error.exitCode).to.equal(ExitCode.verify)
    expect(error.host).to.equal('web1')
    expect(error.message).to.contain('release=5').and.contain('release=3')
    expect(error.message).to.contain(
      'Release 3, serving again since the rollback, fails the same health check',
    )
  })

  it('suspects the check or what the app depends on rather than the new release', () => {
    const error = failedOnBothReleases(failure, 3, 'HTTP 503')
    expect(error.hint).to.contain('Both releases fail the health check').and.contain('health.expect')
  })
})

describe('pumaLogs', () => {
  const start = '/srv/shop/shared/log/puma.deployer.log'
  const rows: { name: string; start?: string; redirect: string | null; logs: string[] }[] = [
    { name: "only deployer's start log", redirect: null, logs: [start] },
    {
      name: 'stdout_redirect from the config, relative to the current path',
      redirect: 'log/puma.log',
      logs: [start, '/srv/shop/current/log/puma.log'],
    },
    {
      name: '--redirect-stdout and --redirect-stderr in server.start',
      start:
        'bundle exec puma -C config/puma.rb --redirect-stdout /var/log/shop/out.log --redirect-stderr=log/err.log',
      redirect: null,
      logs: [start, '/var/log/shop/out.log', '/srv/shop/current/log/err.log'],
    },
    {
      name: 'quoted paths, and one file named twice only once',
      start: 'puma --redirect-stdout \'/var/log/p.log\' --redirect-stderr "/var/log/p.log"',
      redirect: '/var/log/p.log',
      logs: [start, '/var/log/p.log'],
    },
  ]
  for (const row of rows) {
    it(row.name, () => {
      expect(pumaLogs(start, row.start, row.redirect, '/srv/shop/current')).to.deep.equal(row.logs)
    })
  }
})

describe('tcpPortsOf', () => {
  it('reads the ports of tcp and ssl binds, IPv4 and IPv6, and skips unix sockets', () => {
    expect(
      tcpPortsOf([
        'tcp://127.0.0.1:3000',
        'tcp://[::]:9292',
        'ssl://0.0.0.0:9443?key=k.pem&cert=c.pem',
        'unix:///srv/shop/shared/tmp/sockets/puma.sock',
        'tcp://0.0.0.0:3000',
      ]),
    ).to.deep.equal([3000, 9292, 9443])
  })
})
