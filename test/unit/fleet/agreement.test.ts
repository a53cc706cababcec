import { expect } from 'chai'
import { checkAgreement, type HostReleases } from '../../../src/fleet/agreement.js'

const host = (name: string, current: number | null, releases: number[]): HostReleases => ({
  host: name,
  current,
  releases,
})

describe('checkAgreement', () => {
  const cases: { name: string; hosts: HostReleases[]; problems: string[]; fresh?: string[] }[] = [
    {
      name: 'agrees when every host has the same current and releases',
      hosts: [host('a', 3, [1, 2, 3]), host('b', 3, [1, 2, 3]), host('c', 3, [1, 2, 3])],
      problems: [],
    },
    {
      name: 'ignores releases older than current, which prune may keep on one host only',
      hosts: [host('a', 5, [3, 4, 5]), host('b', 5, [1, 4, 5]), host('c', 5, [5])],
      problems: [],
    },
    {
      name: 'lets hosts with nothing deployed join',
      hosts: [host('a', 2, [1, 2]), host('new', null, []), host('b', 2, [1, 2])],
      problems: [],
      fresh: ['new'],
    },
    {
      name: 'names the host on another current',
      hosts: [host('a', 4, [3, 4]), host('b', 3, [3, 4]), host('c', 4, [3, 4])],
      problems: ['b: current is 3, not 4'],
    },
    {
      name: 'names the host that missed a release',
      hosts: [host('a', 4, [3, 4]), host('b', 3, [3]), host('c', 4, [3, 4])],
      problems: ['b: current is 3, not 4; missing release 4'],
    },
    {
      name: 'names a release only one host has, above current',
      hosts: [host('a', 4, [4]), host('b', 4, [4, 5]), host('c', 4, [4])],
      problems: ['b: has release 5 the others do not'],
    },
    {
      name: 'names a host with releases but no current',
      hosts: [host('a', 2, [1, 2]), host('b', null, [1, 2]), host('c', 2, [1, 2])],
      problems: ['b: current is not set, not 2'],
    },
    {
      name: 'agrees with itself on a single host',
      hosts: [host('a', 9, [9])],
      problems: [],
    },
  ]
  for (const c of cases) {
    it(c.name, () => {
      const agreement = checkAgreement(c.hosts)
      expect(agreement.problems).to.deep.equal(c.problems)
      expect(agreement.agree).to.equal(c.problems.length === 0)
      expect(agreement.fresh).to.deep.equal(c.fresh ?? [])
    })
  }
})
