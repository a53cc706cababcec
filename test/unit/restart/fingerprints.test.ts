import { expect } from 'chai'
import { declaredRuby, lockedGemVersion, rubyMatches } from '../../../src/restart/fingerprints.js'

const lock = `GEM
  remote: https://rubygems.org/
  specs:
    nio4r (2.7.0)
    puma (6.6.1)
      nio4r (~> 2.0)
    puma-status (1.0)

PLATFORMS
  x86_64-linux

DEPENDENCIES
  puma (~> 6.6)

RUBY VERSION
   ruby 3.2.2p53

BUNDLED WITH
   2.4.10
`

describe('fingerprint parsing', () => {
  it('reads the locked Puma version, not a dependency line or a similar name', () => {
    expect(lockedGemVersion(lock, 'puma')).to.equal('6.6.1')
    expect(lockedGemVersion(lock, 'puma-status')).to.equal('1.0')
    expect(lockedGemVersion(lock, 'rack')).to.equal(null)
  })

  const rubies: [string | null, string | null, string | null, string | null][] = [
    ['3.1.2\n', null, lock, '3.1.2'],
    ['ruby-3.3.0', null, null, '3.3.0'],
    [null, 'nodejs 20.1.0\nruby 3.2.1\n', null, '3.2.1'],
    [null, null, lock, '3.2.2'],
    [null, null, null, null],
    ['  \n', null, null, null],
  ]
  for (const [rubyVersion, toolVersions, gemfileLock, expected] of rubies) {
    it(`reads the declared Ruby as ${expected}`, () => {
      expect(declaredRuby(rubyVersion, toolVersions, gemfileLock)).to.equal(expected)
    })
  }

  const matches: [string, string, boolean][] = [
    ['3.1.2', '3.1.2', true],
    ['3.1', '3.1.2', true],
    ['3.1', '3.10.0', false],
    ['3.2.0', '3.1.2', false],
  ]
  for (const [declared, running, expected] of matches) {
    it(`${running} ${expected ? 'satisfies' : 'does not satisfy'} ${declared}`, () => {
      expect(rubyMatches(declared, running)).to.equal(expected)
    })
  }
})
