import { expect } from 'chai'
import { type NumberingReport, nextReleaseNumber } from '../../../src/release/release-number.js'

describe('nextReleaseNumber', () => {
  const cases: { name: string; reports: NumberingReport[]; expected: number }[] = [
    { name: 'starts at 1 on fresh hosts', reports: [{ host: 'a', seen: [], sequence: null }], expected: 1 },
    {
      name: 'follows the highest published release',
      reports: [{ host: 'a', seen: [1, 2, 3], sequence: 3 }],
      expected: 4,
    },
    {
      name: 'takes the highest across hosts, so every host gets the same number',
      reports: [
        { host: 'a', seen: [1, 2], sequence: 2 },
        { host: 'b', seen: [4], sequence: 4 },
        { host: 'c', seen: [], sequence: null },
      ],
      expected: 5,
    },
    {
      name: 'never reuses a number whose release was pruned or discarded',
      reports: [{ host: 'a', seen: [3], sequence: 7 }],
      expected: 8,
    },
    {
      name: 'counts partial releases left by a killed run',
      reports: [{ host: 'a', seen: [2, 9], sequence: 2 }],
      expected: 10,
    },
    { name: 'handles no hosts', reports: [], expected: 1 },
  ]
  for (const { name, reports, expected } of cases) {
    it(name, () => {
      expect(nextReleaseNumber(reports)).to.equal(expected)
    })
  }
})
