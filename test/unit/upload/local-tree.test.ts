import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect } from 'chai'
import { type DeployerError, ExitCode } from '../../../src/errors.js'
import { excludeMatcher, scanTree, symlinkEscapes } from '../../../src/upload/local-tree.js'
import { rejectionOf } from '../../support/rejection.js'

describe('excludeMatcher', () => {
  const cases: [string[], string, boolean][] = [
    [['log'], 'log', true],
    [['log'], 'log/production.log', true],
    [['log'], 'app/log', true],
    [['*.tmp'], 'a/b/c.tmp', true],
    [['public/assets'], 'public/assets', true],
    [['public/assets'], 'vendor/public/assets', false],
    [['/RELEASE'], 'RELEASE', true],
    [['/RELEASE'], 'app/RELEASE', false],
    [['.git'], '.git', true],
    [['.git'], '.github', false],
  ]
  for (const [patterns, path, expected] of cases) {
    it(`${patterns.join(',')} ${expected ? 'excludes' : 'keeps'} ${path}`, () => {
      expect(excludeMatcher(patterns)(path)).to.equal(expected)
    })
  }
})

describe('symlinkEscapes', () => {
  const cases: [string, string, boolean][] = [
    ['a', 'b', false],
    ['dir/link', '../file', false],
    ['dir/link', '../../file', true],
    ['link', '/etc/passwd', true],
    ['link', '..', true],
    ['a/b/link', './c', false],
  ]
  for (const [link, target, expected] of cases) {
    it(`${link} -> ${target} ${expected ? 'escapes' : 'stays inside'}`, () =>
      expect(symlinkEscapes(link, target)).to.equal(expected))
  }
})

describe('scanTree', () => {
  let root: string
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'deployer-tree-'))
  })
  afterEach(async () => {
    await rm(root, { recursive: true, force: true })
  })

  it('lists files with hashes, keeps inner symlinks and leaves out excluded paths', async () => {
    await mkdir(join(root, 'app'))
    await mkdir(join(root, 'log'))
    await writeFile(join(root, 'app', 'a.rb'), 'puts 1\n')
    await writeFile(join(root, 'log', 'x.log'), 'noise')
    await symlink('app/a.rb', join(root, 'link.rb'))
    const tree = await scanTree(root, ['log'])
    expect(tree.entries.map((entry) => `${entry.type}:${entry.path}`)).to.deep.equal([
      'dir:app',
      'file:app/a.rb',
      'symlink:link.rb',
    ])
    expect(tree.entries[1]?.sha256).to.match(/^[0-9a-f]{64}$/)
    expect(tree.totalBytes).to.equal(7)
  })

  it('gives the same content hash for the same content and a new one after a change', async () => {
    await writeFile(join(root, 'a'), '1')
    const first = await scanTree(root, [])
    expect((await scanTree(root, [])).contentHash).to.equal(first.contentHash)
    await writeFile(join(root, 'a'), '2')
    expect((await scanTree(root, [])).contentHash).to.not.equal(first.contentHash)
  })

  it('refuses symlinks that point outside the source, listing them', async () => {
    await symlink('/etc/passwd', join(root, 'passwd'))
    await symlink('../outside', join(root, 'up'))
    let error: Error | undefined
    try {
      await scanTree(root, [])
    } catch (caught) {
      error = caught as Error
    }
    expect(error?.message).to.contain('passwd -> /etc/passwd').and.contain('up -> ../outside')
  })

  it('refuses a source that does not exist or is not a directory', async () => {
    await writeFile(join(root, 'file'), 'x')
    const missing = await rejectionOf<DeployerError>(scanTree(join(root, 'missing'), []))
    expect(missing.message).to.equal(`The source ${join(root, 'missing')} does not exist.`)
    expect(missing.exitCode).to.equal(ExitCode.config)
    const file = await rejectionOf<DeployerError>(scanTree(join(root, 'file'), []))
    expect(file.message).to.equal(`The source ${join(root, 'file')} is not a directory.`)
  })

  it('follows a source that is a symlink to the build directory', async () => {
    await mkdir(join(root, 'build-42'))
    await writeFile(join(root, 'build-42', 'config.ru'), 'run App\n')
    await symlink('build-42', join(root, 'build'))
    const tree = await scanTree(join(root, 'build'), [])
    expect(tree.entries.map((entry) => entry.path)).to.deep.equal(['config.ru'])
  })

  it('refuses names that are not UTF-8, unless they are excluded', async () => {
    await writeFile(join(root, 'ok.rb'), 'x')
    await writeFile(
      Buffer.concat([Buffer.from(`${root}/caf`), Buffer.from([0xe9]), Buffer.from('.txt')]),
      'x',
    )
    const error = await rejectionOf<DeployerError>(scanTree(root, []))
    expect(error.message).to.contain('not valid UTF-8').and.contain('caf\uFFFD.txt')
    expect(error.exitCode).to.equal(ExitCode.config)
    expect((await scanTree(root, ['caf*'])).entries.map((entry) => entry.path)).to.deep.equal(['ok.rb'])
  })

  it('refuses a tree with no file left once exclude is applied', async () => {
    await mkdir(join(root, 'log'))
    await writeFile(join(root, 'log', 'x.log'), 'noise')
    const error = await rejectionOf<DeployerError>(scanTree(root, ['*.log']))
    expect(error.message).to.contain('has no file to upload')
    expect(error.exitCode).to.equal(ExitCode.config)
  })
})

describe('scanTree with a hash cache', () => {
  let root: string
  let cacheHome: string
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'deployer-tree-'))
    cacheHome = await mkdtemp(join(tmpdir(), 'deployer-cache-'))
  })
  afterEach(async () => {
    await rm(root, { recursive: true, force: true })
    await rm(cacheHome, { recursive: true, force: true })
  })

  it('never serves a stale hash for a file rewritten with the same size right after a scan', async () => {
    const { HashCache } = await import('../../../src/upload/hash-cache.js')
    await writeFile(join(root, 'a'), 'one')
    const first = await scanTree(root, [], await HashCache.open(root, { XDG_CACHE_HOME: cacheHome }))
    await writeFile(join(root, 'a'), 'two')
    const second = await scanTree(root, [], await HashCache.open(root, { XDG_CACHE_HOME: cacheHome }))
    expect(second.entries[0]?.sha256).to.not.equal(first.entries[0]?.sha256)
    expect(second.contentHash).to.not.equal(first.contentHash)
  })
})
