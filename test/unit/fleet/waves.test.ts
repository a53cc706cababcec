import { expect } from 'chai'
import { planWaves, type WavePlanOptions } from '../../../src/fleet/waves.js'

describe('planWaves', () => {
  const cases: { name: string; hosts: number; options: WavePlanOptions; waves: number[][] }[] = [
    {
      name: 'puts every host in one wave for parallel',
      hosts: 5,
      options: { strategy: 'parallel', batch: 2, canaryThen: 'parallel' },
      waves: [[0, 1, 2, 3, 4]],
    },
    {
      name: 'cuts rolling into batches, the last one short',
      hosts: 5,
      options: { strategy: 'rolling', batch: 2, canaryThen: 'parallel' },
      waves: [[0, 1], [2, 3], [4]],
    },
    {
      name: 'rolls one host at a time with batch 1',
      hosts: 3,
      options: { strategy: 'rolling', batch: 1, canaryThen: 'parallel' },
      waves: [[0], [1], [2]],
    },
    {
      name: 'uses one batch when it is larger than the fleet',
      hosts: 3,
      options: { strategy: 'rolling', batch: 10, canaryThen: 'parallel' },
      waves: [[0, 1, 2]],
    },
    {
      name: 'sends the canary alone, then the rest together',
      hosts: 5,
      options: { strategy: 'canary', batch: 2, canaryThen: 'parallel' },
      waves: [[0], [1, 2, 3, 4]],
    },
    {
      name: 'sends the canary alone, then the rest in batches',
      hosts: 5,
      options: { strategy: 'canary', batch: 2, canaryThen: 'rolling' },
      waves: [[0], [1, 2], [3, 4]],
    },
    {
      name: 'has only the canary on a single host',
      hosts: 1,
      options: { strategy: 'canary', batch: 2, canaryThen: 'rolling' },
      waves: [[0]],
    },
    {
      name: 'has no waves without hosts',
      hosts: 0,
      options: { strategy: 'rolling', batch: 2, canaryThen: 'parallel' },
      waves: [],
    },
  ]
  for (const c of cases) {
    it(c.name, () => {
      expect(planWaves(c.hosts, c.options)).to.deep.equal(c.waves)
    })
  }
})
