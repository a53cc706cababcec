import { expect } from 'chai'
import { changedLockfiles, decideInstallStep } from '../../../src/install/reuse.js'
import type { PreviousEntry } from '../../../src/upload/delta-plan.js'
import type { TreeEntry } from '../../../src/upload/local-tree.js'

const file = (path: string, sha256: string): TreeEntry => ({
  path,
  type: 'file',
  mode: 0o644,
  size: 10,
  mtime: 0,
  sha256,
})
const old = (path: string, sha256: string): PreviousEntry => ({
  path,
  type: 'file',
  mode: 0o644,
  size: 10,
  sha256,
})

describe('changedLockfiles', () => {
  const cases: {
    name: string
    now: TreeEntry[]
    previous: PreviousEntry[] | null
    lockfiles: string[]
    changed: string[]
  }[] = [
    {
      name: 'nothing when every lockfile has the same content',
      now: [file('Gemfile.lock', 'a'), file('app.rb', 'x')],
      previous: [old('Gemfile.lock', 'a'), old('app.rb', 'y')],
      lockfiles: ['Gemfile.lock'],
      changed: [],
    },
    {
      name: 'a lockfile whose content changed',
      now: [file('Gemfile.lock', 'b'), file('package-lock.json', 'p')],
      previous: [old('Gemfile.lock', 'a'), old('package-lock.json', 'p')],
      lockfiles: ['Gemfile.lock', 'package-lock.json'],
      changed: ['Gemfile.lock'],
    },
    {
      name: 'a lockfile that appeared',
      now: [file('Gemfile.lock', 'a')],
      previous: [],
      lockfiles: ['Gemfile.lock'],
      changed: ['Gemfile.lock'],
    },
    {
      name: 'a lockfile that went away',
      now: [],
      previous: [old('Gemfile.lock', 'a')],
      lockfiles: ['Gemfile.lock'],
      changed: ['Gemfile.lock'],
    },
    {
      name: 'nothing for a lockfile absent on both sides',
      now: [],
      previous: [],
      lockfiles: ['Gemfile.lock'],
      changed: [],
    },
    {
      name: 'every lockfile when there is no previous release',
      now: [file('Gemfile.lock', 'a')],
      previous: null,
      lockfiles: ['Gemfile.lock'],
      changed: ['Gemfile.lock'],
    },
    {
      name: 'a lockfile replaced by a symlink',
      now: [{ path: 'Gemfile.lock', type: 'symlink', mode: 0o777, size: 0, mtime: 0, target: 'x' }],
      previous: [old('Gemfile.lock', 'a')],
      lockfiles: ['Gemfile.lock'],
      changed: ['Gemfile.lock'],
    },
  ]
  for (const c of cases) {
    it(`reports ${c.name}`, () => {
      expect(changedLockfiles(c.now, c.previous, c.lockfiles)).to.deep.equal(c.changed)
    })
  }
})

describe('decideInstallStep', () => {
  const cases: {
    name: string
    input: Parameters<typeof decideInstallStep>[0]
    run: 'install' | 'check'
    reason: string
  }[] = [
    {
      name: 'checks when the vendor dir was reused and no lockfile changed',
      input: { check: 'bundle check', vendorSeeded: true, changedLockfiles: [] },
      run: 'check',
      reason: 'lockfiles unchanged',
    },
    {
      name: 'installs without a check command',
      input: { vendorSeeded: true, changedLockfiles: [] },
      run: 'install',
      reason: 'no install.check configured',
    },
    {
      name: 'installs when there was no vendor dir to reuse',
      input: { check: 'bundle check', vendorSeeded: false, changedLockfiles: [] },
      run: 'install',
      reason: 'no vendor dir to reuse',
    },
    {
      name: 'installs when a lockfile changed, naming it',
      input: { check: 'bundle check', vendorSeeded: true, changedLockfiles: ['Gemfile.lock'] },
      run: 'install',
      reason: 'Gemfile.lock changed',
    },
  ]
  for (const c of cases) {
    it(c.name, () => {
      expect(decideInstallStep(c.input)).to.deep.equal({ run: c.run, reason: c.reason })
    })
  }
})
