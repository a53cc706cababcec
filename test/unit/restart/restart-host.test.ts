import { expect } from 'chai'
import { ExitCode } from '../../../src/errors.js'
import { failedOnBothReleases, VerifyError } from '../../../src/restart/restart-host.js'

describe('VerifyError', () => {
  it('points at the boot error when Puma did not come up on the release', () => {
    const error = new VerifyError('web1', 'the phased restart', 'worker 0 keeps failing to boot', '')
    expect(error.exitCode).to.equal(ExitCode.verify)
    expect(error.stage).to.equal('restart')
    expect(error.hint).to.contain('its boot error is above')
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
