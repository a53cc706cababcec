import { createHash } from 'node:crypto'
import { createReadStream, lstatSync, readdirSync, readlinkSync } from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import { join, posix } from 'node:path'
import picomatch from 'picomatch'
import { DeployerError, ExitCode } from '../errors.js'
import { fileIdentity, type HashCache } from './hash-cache.js'
import { sourceUnreadable } from './source-errors.js'

/** One entry of the tree to upload; `path` is relative, with `/` separators. */
export interface TreeEntry {
  path: string
  type: 'file' | 'dir' | 'symlink'
  /** Permission bits (`mode & 0o7777`). */
  mode: number
  size: number
  mtime: number
  sha256?: string
  /** Symlink target, as written in the link. */
  target?: string
}

export interface LocalTree {
  root: string
  entries: TreeEntry[]
  /** A hash over every path, type, mode and content: the REVISION of a source that is not a git checkout. */
  contentHash: string
  totalBytes: number
  /** Sockets, FIFOs and devices: they cannot be uploaded and are left out, with a warning. */
  skipped: string[]
}

/**
 * Walks the source directory once (minus `exclude`), hashing every file. Symlinks are kept as links,
 * but one that points outside the tree (absolute, or climbing out with `..`) is refused: on the host it
 * would point somewhere else, or somewhere deployer must never write through. A name that is not UTF-8
 * is refused too (it has no exact form in the manifest), and so is a tree with no file left to upload.
 */
export async function scanTree(
  root: string,
  exclude: readonly string[],
  cache?: HashCache,
): Promise<LocalTree> {
  // The root may be a symlink to the build (`build -> builds/42`): it is followed, links inside are not.
  const rootStat = await stat(root).catch(() => null)
  if (!rootStat?.isDirectory()) {
    throw new DeployerError(`The source ${root} ${rootStat ? 'is not a directory' : 'does not exist'}.`, {
      exitCode: ExitCode.config,
      hint: 'Set `source:` in deployer.yml or pass `--source DIR` with the built app.',
    })
  }
  const isExcluded = excludeMatcher(exclude)
  const scanStarted = Date.now()
  const entries: TreeEntry[] = []
  const skipped: string[] = []
  const escaping: string[] = []
  const undecodable: string[] = []

  // Metadata is read synchronously: for a tree whose hashes are cached, one lstat per entry is the
  // whole cost, and the promise API doubles it. The walk yields after each directory so that the SSH
  // handshakes running meanwhile are not held up. Only files not in the cache are then hashed, many at
  // a time.
  const unhashed: { entry: TreeEntry; absolute: string }[] = []
  const quiet: { entry: TreeEntry; identity: string }[] = []
  async function walk(relativeDir: string): Promise<void> {
    await new Promise(setImmediate)
    for (const { name, raw } of readSourceDir(root, relativeDir)) {
      const relative = relativeDir ? `${relativeDir}/${name}` : name
      if (isExcluded(relative)) continue
      // Decoding replaced the bytes that are not UTF-8: the decoded path names no file to read.
      if (!Buffer.from(name, 'utf8').equals(raw)) {
        undecodable.push(relative)
        continue
      }
      const absolute = join(root, relative)
      const stat = sourceStep(root, relative, () => lstatSync(absolute))
      const base = { path: relative, mode: stat.mode & 0o7777, mtime: Math.floor(stat.mtimeMs / 1000) }
      if (stat.isDirectory()) {
        entries.push({ ...base, type: 'dir', size: 0 })
        await walk(relative)
      } else if (stat.isSymbolicLink()) {
        const target = readlinkSync(absolute)
        if (symlinkEscapes(relative, target)) escaping.push(`${relative} -> ${target}`)
        entries.push({ ...base, type: 'symlink', size: 0, target })
      } else if (stat.isFile()) {
        const identity = fileIdentity(stat)
        const entry: TreeEntry = { ...base, type: 'file', size: stat.size }
        entries.push(entry)
        entry.sha256 = cache?.lookup(relative, identity)
        if (entry.sha256 === undefined) unhashed.push({ entry, absolute })
        // A file changed within the timestamp granularity of the last write could change again with
        // the same identity ("racy git"): only files that have been quiet for a while are remembered.
        if (Math.max(stat.mtimeMs, stat.ctimeMs) < scanStarted - RACY_MS) quiet.push({ entry, identity })
      } else {
        skipped.push(relative)
      }
    }
  }
  await walk('')
  await Promise.all(
    unhashed.map(async ({ entry, absolute }) => {
      entry.sha256 = await hashLimited(absolute, entry.size).catch((error: unknown) => {
        throw sourceUnreadable(root, entry.path, error, 'scanned')
      })
    }),
  )
  for (const { entry, identity } of quiet) cache?.remember(entry.path, identity, entry.sha256 as string)
  await cache?.save()
  skipped.sort()
  escaping.sort()

  if (undecodable.length > 0) {
    throw new DeployerError(
      `The source ${root} has names that are not valid UTF-8 (the bytes that are not are shown as \uFFFD):\n  ${undecodable.slice(0, 20).join('\n  ')}`,
      {
        exitCode: ExitCode.config,
        hint: 'Rename them to UTF-8 (convmv does it), or leave them out with `exclude:` (a pattern such as `*.bak` matches them).',
      },
    )
  }
  if (escaping.length > 0) {
    throw new DeployerError(
      `The source ${root} has symlinks that point outside it:\n  ${escaping.slice(0, 20).join('\n  ')}`,
      {
        exitCode: ExitCode.config,
        hint: 'Make them relative links inside the app, or list them under `exclude:` (or use `shared:` for server-side files).',
      },
    )
  }
  if (!entries.some((entry) => entry.type === 'file')) {
    throw new DeployerError(
      `The source ${root} has no file to upload once \`exclude:\` is applied: its release would be an empty app.`,
      {
        exitCode: ExitCode.config,
        hint: 'Check `source:` (or --source) and the `exclude:` patterns in deployer.yml.',
      },
    )
  }
  return {
    root,
    entries,
    contentHash: hashTree(entries),
    totalBytes: entries.reduce((sum, entry) => sum + entry.size, 0),
    skipped,
  }
}

/** A directory's names, sorted, each with the bytes the file system holds for it. */
/** Runs a read of the source's `relative`, turning a failure into an error that names it. */
function sourceStep<T>(root: string, relative: string, step: () => T): T {
  try {
    return step()
  } catch (error) {
    throw sourceUnreadable(root, relative || '.', error, 'scanned')
  }
}

function readSourceDir(root: string, relative: string): { name: string; raw: Buffer }[] {
  return sourceStep(root, relative, () => readNames(join(root, relative)))
}

function readNames(dir: string): { name: string; raw: Buffer }[] {
  return readdirSync(dir, { encoding: 'buffer' })
    .map((raw) => ({ name: raw.toString('utf8'), raw }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
}

/**
 * `exclude` patterns follow .gitignore habits: a pattern without `/` matches a name at any depth
 * (`log`, `*.tmp`); one with `/` matches from the source root (`public/assets`). A match on a
 * directory leaves out everything below it.
 */
export function excludeMatcher(patterns: readonly string[]): (relative: string) => boolean {
  const matchers = patterns.map((pattern) => {
    const anchored = pattern.includes('/')
    const clean = pattern.replace(/^\/+/, '').replace(/\/+$/, '')
    const match = picomatch(clean, { dot: true })
    return (relative: string) =>
      anchored ? match(relative) : relative.split('/').some((name) => match(name))
  })
  return (relative) => matchers.some((matches) => matches(relative))
}

/** True when a link at `linkPath` (relative to the root) with `target` resolves outside the root. */
export function symlinkEscapes(linkPath: string, target: string): boolean {
  if (posix.isAbsolute(target)) return true
  const resolved = posix.normalize(posix.join(posix.dirname(linkPath), target))
  return resolved === '..' || resolved.startsWith('../')
}

/** Files written this recently are hashed on every scan, never taken from the cache. */
const RACY_MS = 2000

/** At most this many files are open for hashing at once (well under the usual 1024 descriptors). */
const HASH_CONCURRENCY = 64
let hashing = 0
const waiting: (() => void)[] = []

async function hashLimited(path: string, size: number): Promise<string> {
  while (hashing >= HASH_CONCURRENCY) await new Promise<void>((resolve) => waiting.push(resolve))
  hashing++
  try {
    // Small files in one read; large ones streamed, so memory stays bounded.
    if (size <= 1024 * 1024)
      return createHash('sha256')
        .update(await readFile(path))
        .digest('hex')
    return await hashFile(path)
  } finally {
    hashing--
    waiting.shift()?.()
  }
}

function hashFile(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256')
    createReadStream(path)
      .on('error', reject)
      .on('data', (chunk) => hash.update(chunk))
      .on('end', () => resolve(hash.digest('hex')))
  })
}

function hashTree(entries: readonly TreeEntry[]): string {
  const hash = createHash('sha256')
  for (const entry of entries) {
    // Only the executable bit of a mode matters for content identity; umask differences do not.
    const executable = entry.type === 'file' && (entry.mode & 0o111) !== 0 ? 'x' : '-'
    hash.update(`${entry.type}\0${entry.path}\0${executable}\0${entry.sha256 ?? entry.target ?? ''}\n`)
  }
  return hash.digest('hex')
}
