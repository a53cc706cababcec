import { expect } from 'chai'
import { type Holder, planPrune } from '../../../src/plan/prune-plan.js'
import type { ReleaseInfo, ReleaseState } from '../../../src/release/states.js'

const releases = (...states: [number, ReleaseState][]): ReleaseInfo[] =>
  states.map(([number, state]) => ({ number, state }))
const sleeper: Holder = { pid: 42, command: 'sleep 600', via: 'cwd', path: '/srv/app/releases/1' }

describe('planPrune', () => {
  const cases: {
    name: string
    releases: ReleaseInfo[]
    current: number | null
    keep: number
    holders?: [number, Holder[]][]
    unseen?: Holder[]
    remove: number[]
    kept?: [number, string][]
  }[] = [
    {
      name: 'keeps the newest K good releases and removes the rest, oldest first',
      releases: releases([1, 'previous'], [2, 'previous'], [3, 'previous'], [4, 'live']),
      current: 4,
      keep: 2,
      remove: [1, 2],
    },
    {
      name: 'never removes current, even when it is the oldest',
      releases: releases([1, 'live'], [2, 'rolled-back'], [3, 'rolled-back']),
      current: 1,
      keep: 1,
      remove: [2, 3],
    },
    {
      name: 'keeps a release a live process uses as its cwd, beyond the policy',
      releases: releases([1, 'previous'], [2, 'previous'], [3, 'live']),
      current: 3,
      keep: 1,
      holders: [[1, [sleeper]]],
      remove: [2],
      kept: [
        [1, 'in-use'],
        [3, 'current'],
      ],
    },
    {
      name: 'does not count failed releases toward keep',
      releases: releases([1, 'previous'], [2, 'previous'], [3, 'failed'], [4, 'live']),
      current: 4,
      keep: 2,
      remove: [1],
      kept: [
        [2, 'within-keep'],
        [3, 'recent-failed'],
        [4, 'current'],
      ],
    },
    {
      name: 'removes failed releases older than everything kept',
      releases: releases([1, 'failed'], [2, 'previous'], [3, 'live']),
      current: 3,
      keep: 2,
      remove: [1],
    },
    {
      name: 'removes nothing when there are fewer releases than keep',
      releases: releases([1, 'previous'], [2, 'live']),
      current: 2,
      keep: 5,
      remove: [],
    },
    {
      name: 'removes nothing while a process it could not inspect runs, keeping each as unproven',
      releases: releases([1, 'previous'], [2, 'failed'], [3, 'previous'], [4, 'live']),
      current: 4,
      keep: 2,
      unseen: [{ pid: 7, command: 'puma (user www-data)', via: 'unseen', path: '?' }],
      remove: [],
      kept: [
        [1, 'unproven'],
        [2, 'unproven'],
        [3, 'within-keep'],
        [4, 'current'],
      ],
    },
    {
      name: 'keeps the newest good releases when current is missing',
      releases: releases([1, 'previous'], [2, 'previous'], [3, 'previous']),
      current: null,
      keep: 2,
      remove: [1],
    },
  ]
  for (const testCase of cases) {
    it(testCase.name, () => {
      const plan = planPrune(
        testCase.releases,
        testCase.current,
        testCase.keep,
        new Map(testCase.holders ?? []),
        testCase.unseen,
      )
      expect(plan.remove).to.deep.equal(testCase.remove)
      if (testCase.kept)
        expect(plan.kept.map((entry) => [entry.number, entry.reason])).to.deep.equal(testCase.kept)
      expect(plan.remove).to.not.include(testCase.current)
    })
  }

  it('reports who holds a release kept against the policy', () => {
    const plan = planPrune(releases([1, 'previous'], [2, 'live']), 2, 1, new Map([[1, [sleeper]]]))
    expect(plan.kept[0]?.holders).to.deep.equal([sleeper])
  })

  for (const keep of [0, -1, 1.5, Number.NaN]) {
    it(`refuses keep=${keep}`, () => {
      expect(() => planPrune(releases([1, 'live']), 1, keep, new Map())).to.throw(
        /keep must be a positive integer/,
      )
    })
  }
})
