import { expect } from 'chai'
import { type PreviousEntry, planDelta } from '../../../src/upload/delta-plan.js'
import type { TreeEntry } from '../../../src/upload/local-tree.js'

const file = (path: string, sha256: string, mode = 0o644, size = 10): TreeEntry => ({
  path,
  type: 'file',
  mode,
  size,
  mtime: 0,
  sha256,
})
const previous = (entry: TreeEntry): PreviousEntry => {
  const { mtime: _mtime, ...rest } = entry
  return rest
}

describe('planDelta', () => {
  const a = file('app/a.rb', 'aaa')
  const b = file('app/b.rb', 'bbb')
  const dir: TreeEntry = { path: 'app', type: 'dir', mode: 0o755, size: 0, mtime: 0 }
  const link: TreeEntry = { path: 'l', type: 'symlink', mode: 0o777, size: 0, mtime: 0, target: 'app/a.rb' }

  it('uploads everything when there is no previous release', () => {
    const plan = planDelta([dir, a, b], null, null)
    expect(plan.link).to.deep.equal([])
    expect(plan.upload.map((entry) => entry.path)).to.deep.equal(['app', 'app/a.rb', 'app/b.rb'])
    expect(plan.from).to.equal(null)
  })

  const cases: { name: string; now: TreeEntry; before: TreeEntry | null; linked: boolean }[] = [
    { name: 'links an unchanged file', now: a, before: a, linked: true },
    {
      name: 'sends a changed file (a new inode)',
      now: file('app/a.rb', 'changed'),
      before: a,
      linked: false,
    },
    {
      name: 'sends a file whose mode changed',
      now: file('app/a.rb', 'aaa', 0o755),
      before: a,
      linked: false,
    },
    { name: 'sends a new file', now: file('new.rb', 'nnn'), before: null, linked: false },
    { name: 'sends a file that replaces a symlink', now: file('l', 'x'), before: link, linked: false },
    { name: 'always sends symlinks (cheap, and never shared)', now: link, before: link, linked: false },
    { name: 'always sends directories', now: dir, before: dir, linked: false },
  ]
  for (const row of cases) {
    it(row.name, () => {
      const plan = planDelta([row.now], row.before ? [previous(row.before)] : [], 7)
      expect(plan.link.includes(row.now.path)).to.equal(row.linked)
      expect(plan.upload.some((entry) => entry.path === row.now.path)).to.equal(!row.linked)
      expect(plan.from).to.equal(7)
    })
  }

  it('leaves removed files out and counts bytes on each side', () => {
    const plan = planDelta([a, file('c.rb', 'ccc', 0o644, 5)], [previous(a), previous(b)], 3)
    expect(plan.link).to.deep.equal(['app/a.rb'])
    expect(plan.upload.map((entry) => entry.path)).to.deep.equal(['c.rb'])
    expect(plan.linkedBytes).to.equal(10)
    expect(plan.uploadBytes).to.equal(5)
  })
})
