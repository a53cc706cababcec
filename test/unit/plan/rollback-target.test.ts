import { expect } from 'chai'
import { DeployerError } from '../../../src/errors.js'
import { chooseRollbackTarget } from '../../../src/plan/rollback-target.js'
import type { ReleaseInfo, ReleaseState } from '../../../src/release/states.js'

const releases = (...states: [number, ReleaseState][]): ReleaseInfo[] =>
  states.map(([number, state]) => ({ number, state }))

describe('chooseRollbackTarget', () => {
  const good: {
    name: string
    releases: ReleaseInfo[]
    current: number | null
    to?: number
    expected: number
  }[] = [
    {
      name: 'goes to the previous release',
      releases: releases([1, 'previous'], [2, 'live']),
      current: 2,
      expected: 1,
    },
    {
      name: 'skips failed releases',
      releases: releases([1, 'previous'], [2, 'failed'], [3, 'live']),
      current: 3,
      expected: 1,
    },
    {
      name: 'skips releases already rolled back',
      releases: releases([1, 'previous'], [2, 'rolled-back'], [3, 'live'], [4, 'rolled-back']),
      current: 3,
      expected: 1,
    },
    {
      name: 'ignores newer releases without --to',
      releases: releases([1, 'previous'], [2, 'live'], [3, 'rolled-back']),
      current: 2,
      expected: 1,
    },
    {
      name: 'rolls forward with --to',
      releases: releases([1, 'live'], [2, 'rolled-back']),
      current: 1,
      to: 2,
      expected: 2,
    },
    {
      name: 'accepts --to an older good release',
      releases: releases([1, 'previous'], [2, 'previous'], [3, 'live']),
      current: 3,
      to: 1,
      expected: 1,
    },
  ]
  for (const testCase of good) {
    it(testCase.name, () => {
      expect(chooseRollbackTarget('web1', testCase.releases, testCase.current, testCase.to)).to.equal(
        testCase.expected,
      )
    })
  }

  const bad: {
    name: string
    releases: ReleaseInfo[]
    current: number | null
    to?: number
    message: RegExp
  }[] = [
    {
      name: 'refuses --to a release that does not exist',
      releases: releases([1, 'live']),
      current: 1,
      to: 7,
      message: /release 7 does not exist/,
    },
    {
      name: 'refuses --to a failed release',
      releases: releases([1, 'live'], [2, 'failed']),
      current: 1,
      to: 2,
      message: /marked failed/,
    },
    {
      name: 'refuses --to the current release',
      releases: releases([1, 'live']),
      current: 1,
      to: 1,
      message: /already current/,
    },
    {
      name: 'refuses when there is no current',
      releases: releases([1, 'previous']),
      current: null,
      message: /nothing to roll back/,
    },
    {
      name: 'refuses when no good release is older',
      releases: releases([1, 'failed'], [2, 'live']),
      current: 2,
      message: /no good release older/,
    },
  ]
  for (const testCase of bad) {
    it(testCase.name, () => {
      const attempt = () => chooseRollbackTarget('web1', testCase.releases, testCase.current, testCase.to)
      expect(attempt).to.throw(DeployerError, testCase.message)
      expect(attempt).to.throw(/^Host web1: /)
    })
  }
})
