import { once } from 'node:events'
import { createReadStream } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { pack as createPack, type Pack } from 'tar-stream'
import type { TreeEntry } from './local-tree.js'
import { SourceFileError, sourceChanged, sourceUnreadable } from './source-errors.js'

/** Files up to this size are read whole (and ahead); larger ones are streamed. */
const SMALL_FILE = 256 * 1024
const READ_AHEAD = 32
const COALESCE_BYTES = 256 * 1024

/** A file deployer writes into the release itself (RELEASE, REVISION, the manifest). */
export interface GeneratedFile {
  path: string
  content: string
  mode?: number
}

/**
 * Streams `entries` from `root` as a tar archive, followed by the generated files. Entries are written
 * one at a time (tar is sequential); a file that changes size or cannot be read while it is read fails
 * the stream with a SourceFileError naming it, rather than uploading a torn copy.
 */
export function packTree(
  root: string,
  entries: readonly TreeEntry[],
  generated: readonly GeneratedFile[],
): Readable {
  const pack = createPack()
  // Small files are read ahead, many at once, while earlier entries are written: thousands of small
  // files would otherwise cost a round of open/read/close each, one after the other.
  const reads = new Map<number, Promise<Buffer>>()
  const readAhead = (index: number) => {
    const entry = entries[index]
    if (entry?.type !== 'file' || entry.size > SMALL_FILE) return
    const read = readFile(join(root, entry.path))
    read.catch(() => {})
    reads.set(index, read)
  }
  const fill = async () => {
    for (let index = 0; index < READ_AHEAD; index++) readAhead(index)
    for (const [index, entry] of entries.entries()) {
      readAhead(index + READ_AHEAD)
      const header = {
        name: entry.path,
        mode: entry.mode,
        mtime: new Date(entry.mtime * 1000),
        uid: 0,
        gid: 0,
      }
      if (entry.type === 'dir') {
        await addEntry(pack, { ...header, type: 'directory' })
      } else if (entry.type === 'symlink') {
        await addEntry(pack, { ...header, type: 'symlink', linkname: entry.target })
      } else if (reads.has(index)) {
        const body = await (reads.get(index) as Promise<Buffer>).catch((error: unknown) => {
          throw sourceUnreadable(root, entry.path, error, 'uploaded')
        })
        reads.delete(index)
        if (body.length !== entry.size) throw sourceChanged(root, entry.path, entry.size, body.length)
        await addEntry(pack, { ...header, type: 'file', size: entry.size }, body)
      } else {
        await streamFile(pack, { ...header, type: 'file', size: entry.size }, root, entry.path)
      }
    }
    const now = new Date()
    for (const file of generated) {
      const body = Buffer.from(file.content, 'utf8')
      await addEntry(
        pack,
        { name: file.path, mode: file.mode ?? 0o644, mtime: now, type: 'file', size: body.length },
        body,
      )
    }
    pack.finalize()
  }
  fill().catch((error: unknown) => pack.destroy(error instanceof Error ? error : new Error(String(error))))
  // tar-stream's pack is a streamx stream; callers (and transports) deal in Node byte streams. Its
  // chunks are tiny (a 512-byte header per entry): each would become its own SSH packet and syscall.
  return Readable.from(coalesce(pack as AsyncIterable<Buffer>, COALESCE_BYTES), { objectMode: false })
}

/** Joins small chunks into buffers of about `size` bytes. */
async function* coalesce(source: AsyncIterable<Buffer>, size: number): AsyncGenerator<Buffer> {
  let parts: Buffer[] = []
  let length = 0
  for await (const chunk of source) {
    parts.push(chunk)
    length += chunk.length
    if (length >= size) {
      yield Buffer.concat(parts, length)
      parts = []
      length = 0
    }
  }
  if (length > 0) yield Buffer.concat(parts, length)
}

/**
 * Streams a large file into its entry, checking its size as it goes: a read error or a size other than
 * the scanned one destroys the entry (and so the archive) with an error naming the file, before
 * tar-stream's own "Size mismatch" or a bare ENOENT could reach the user.
 */
async function streamFile(
  pack: Pack,
  header: Parameters<Pack['entry']>[0] & { size: number },
  root: string,
  path: string,
): Promise<void> {
  let settle: (error?: Error | null) => void = () => {}
  const done = new Promise<void>((resolve, reject) => {
    settle = (error) => (error ? reject(error) : resolve())
  })
  // tar-stream calls back once the entry is complete, or destroyed (with the error destroying it).
  const sink = pack.entry(header, (error) => settle(error))
  sink.on('error', () => {})
  let written = 0
  try {
    for await (const chunk of createReadStream(join(root, path)) as AsyncIterable<Buffer>) {
      written += chunk.length
      if (written > header.size) throw sourceChanged(root, path, header.size)
      if (!sink.write(chunk)) await once(sink as unknown as NodeJS.EventEmitter, 'drain')
    }
    if (written !== header.size) throw sourceChanged(root, path, header.size, written)
  } catch (error) {
    const named = error instanceof SourceFileError ? error : sourceUnreadable(root, path, error, 'uploaded')
    done.catch(() => {})
    sink.destroy(named)
    throw named
  }
  sink.end(Buffer.alloc(0))
  await done
}

function addEntry(pack: Pack, header: Parameters<Pack['entry']>[0], body?: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (error?: Error | null) => (error ? reject(error) : resolve())
    if (body) pack.entry(header, body, done)
    else pack.entry(header, done)
  })
}
