import { expect } from 'chai'
import { failpoint, failpointMatches } from '../../../src/fault/failpoint.js'

describe('failpointMatches', () => {
  const cases: { spec: string | undefined; host: string; matches: boolean }[] = [
    { spec: undefined, host: 'web1', matches: false },
    { spec: '', host: 'web1', matches: false },
    { spec: 'upload', host: 'web1', matches: true },
    { spec: 'upload@web1', host: 'web1', matches: true },
    { spec: 'upload@web2', host: 'web1', matches: false },
    { spec: 'install, upload@web1', host: 'web1', matches: true },
    { spec: 'uploads', host: 'web1', matches: false },
  ]
  for (const c of cases) {
    it(`${c.matches ? 'stops' : 'does not stop'} at upload on ${c.host} for ${JSON.stringify(c.spec)}`, () => {
      expect(failpointMatches(c.spec, 'upload', c.host)).to.equal(c.matches)
    })
  }

  it('waits at a matching point until the run is interrupted', async () => {
    const controller = new AbortController()
    let passed = false
    const waiting = failpoint('verify', 'web1', controller.signal, { DEPLOYER_FAILPOINT: 'verify' }).then(
      () => {
        passed = true
      },
    )
    await new Promise(setImmediate)
    expect(passed).to.equal(false)
    controller.abort('SIGINT')
    await waiting
    expect(passed).to.equal(true)
  })
})
