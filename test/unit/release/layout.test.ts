import { expect } from 'chai'
import {
  isInside,
  layoutFor,
  partialPath,
  releaseFromTarget,
  releasePath,
} from '../../../src/release/layout.js'

describe('layout', () => {
  it('puts releases, partials and bookkeeping under deploy_to', () => {
    const layout = layoutFor('/srv/shop')
    expect(releasePath(layout, 12)).to.equal('/srv/shop/releases/12')
    expect(partialPath(layout, 12)).to.equal('/srv/shop/releases/.12.partial')
    expect(layout.lock).to.equal('/srv/shop/.deployer/lock')
  })

  for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
    it(`refuses release number ${bad} before it can reach a shell`, () => {
      expect(() => releasePath(layoutFor('/srv/shop'), bad)).to.throw(/Invalid release number/)
    })
  }

  const targets: [string | undefined, number | null][] = [
    ['releases/3', 3],
    ['/srv/shop/releases/41', 41],
    ['releases/3/', 3],
    ['releases/.3.partial', null],
    ['/elsewhere', null],
    [undefined, null],
  ]
  for (const [target, expected] of targets) {
    it(`reads current -> ${target} as release ${expected}`, () => {
      expect(releaseFromTarget(target)).to.equal(expected)
    })
  }
})

describe('isInside', () => {
  const cases: [string, string, boolean][] = [
    ['/srv/shop', '/srv/shop/releases/1', true],
    ['/srv/shop', '/srv/shop', false],
    ['/srv/shop', '/srv/shop/', false],
    ['/srv/shop', '/srv/shopping/releases/1', false],
    ['/srv/shop', '/srv/shop/../etc', false],
    ['/srv/shop', '/srv/shop/releases/../../etc', false],
    ['/srv/shop', '/etc/passwd', false],
    ['/srv/shop/', '/srv/shop/x', true],
    ['relative', 'relative/x', false],
  ]
  for (const [root, path, expected] of cases) {
    it(`${path} is ${expected ? '' : 'not '}inside ${root}`, () => {
      expect(isInside(root, path)).to.equal(expected)
    })
  }
})
