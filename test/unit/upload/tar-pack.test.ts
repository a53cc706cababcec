import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { expect } from 'chai'
import { HostSession } from '../../../src/hosts/host-session.js'
import { LocalTransport } from '../../../src/transport/local.js'
import type { TreeEntry } from '../../../src/upload/local-tree.js'
import { SourceFileError } from '../../../src/upload/source-errors.js'
import { packTree } from '../../../src/upload/tar-pack.js'
import { localHost } from '../../support/local-host.js'

async function drain(stream: Readable): Promise<void> {
  for await (const _ of stream) {
    // Read to the end (or the error).
  }
}

function fileEntry(path: string, size: number): TreeEntry {
  return { path, type: 'file', size, mode: 0o644, mtime: 0 }
}

describe('packTree with a source that changes under it', () => {
  let root: string

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'deployer-pack-'))
    await writeFile(join(root, 'small.txt'), 'hello')
    await writeFile(join(root, 'big.bin'), Buffer.alloc(300 * 1024))
  })
  afterEach(async () => {
    await rm(root, { recursive: true, force: true })
  })

  const rows: Array<{ name: string; entry: TreeEntry; message: RegExp }> = [
    {
      name: 'a small file that grew',
      entry: fileEntry('small.txt', 3),
      message:
        /small\.txt changed while it was being uploaded \(3 bytes when the source was scanned, 5 now\)/,
    },
    {
      name: 'a large (streamed) file that shrank',
      entry: fileEntry('big.bin', 400 * 1024),
      message: /big\.bin changed while it was being uploaded/,
    },
    {
      name: 'a small file that is gone',
      entry: fileEntry('gone.txt', 3),
      message: /gone\.txt could not be read while it was being uploaded \(it was removed, ENOENT\)/,
    },
    {
      name: 'a large file that is gone',
      entry: fileEntry('gone.bin', 400 * 1024),
      message: /gone\.bin could not be read while it was being uploaded \(it was removed, ENOENT\)/,
    },
  ]
  for (const row of rows) {
    it(`fails the stream naming ${row.name}`, async () => {
      const error = await drain(packTree(root, [row.entry], [])).then(
        () => null,
        (caught: unknown) => caught,
      )
      expect(error).to.be.instanceOf(SourceFileError)
      expect((error as SourceFileError).message).to.match(row.message)
      expect((error as SourceFileError).message).to.contain(root)
      expect((error as SourceFileError).hint).to.contain('build')
    })
  }

  it('makes HostSession.upload fail with that error, not with what tar says of the cut stream', async () => {
    const deployTo = join(root, 'srv')
    await mkdir(join(deployTo, 'releases', '.1.partial'), { recursive: true })
    const session = new HostSession(localHost(deployTo), new LocalTransport())
    const archive = packTree(root, [fileEntry('big.bin', 300 * 1024), fileEntry('small.txt', 9)], [])
    const error = await session.upload(1, archive).then(
      () => null,
      (caught: unknown) => caught,
    )
    expect(error).to.be.instanceOf(SourceFileError)
    expect((error as SourceFileError).path).to.equal('small.txt')
  })
})
