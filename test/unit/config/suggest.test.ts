import { expect } from 'chai'
import { didYouMean, levenshtein } from '../../../src/config/suggest.js'

describe('levenshtein', () => {
  const cases: Array<[string, string, number]> = [
    ['', '', 0],
    ['', 'abc', 3],
    ['abc', '', 3],
    ['keep_release', 'keep_releases', 1],
    ['kitten', 'sitting', 3],
    ['flaw', 'lawn', 2],
    ['same', 'same', 0],
  ]
  for (const [a, b, distance] of cases) {
    it(`measures ${JSON.stringify(a)} → ${JSON.stringify(b)} as ${distance}`, () => {
      expect(levenshtein(a, b)).to.equal(distance)
      expect(levenshtein(b, a)).to.equal(distance)
    })
  }
})

describe('didYouMean', () => {
  const keys = [
    'app',
    'source',
    'deploy_to',
    'keep_releases',
    'hosts',
    'strategy',
    'on_failure',
    'known_hosts',
  ]
  const cases: Array<[string, string | undefined]> = [
    ['keep_release', 'keep_releases'],
    ['keepReleases', 'keep_releases'],
    ['keep-releases', 'keep_releases'],
    ['Deploy_To', 'deploy_to'],
    ['host', 'hosts'],
    ['stratgey', 'strategy'],
    ['colour', undefined],
    ['x', undefined],
  ]
  for (const [word, suggestion] of cases) {
    it(`suggests ${suggestion ?? 'nothing'} for ${word}`, () => {
      expect(didYouMean(word, keys)).to.equal(suggestion)
    })
  }
})
